package peer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// A follower cannot promote a learner: raft configuration changes are the
// leader's to propose, and only the leader knows whether the learner has
// caught up. Like etcd, a follower forwards the request to the leader's
// peer port (POST /members/promote/<id hex>) and passes the answer on.

// PromoteError is the leader's refusal of a forwarded promote: its HTTP
// status and its message (the text of the etcd error, e.g. "etcdserver:
// can only promote a learner member which is in sync with leader").
type PromoteError struct {
	Status  int
	Message string
}

func (e *PromoteError) Error() string {
	return fmt.Sprintf("promote answered %d: %s", e.Status, e.Message)
}

// servePromote runs a promote forwarded by another member.
func (t *Transport) servePromote(w http.ResponseWriter, r *http.Request) {
	if _, ok := t.checkRequest(w, r); !ok {
		return
	}
	id, err := strconv.ParseUint(r.PathValue("id"), 16, 64)
	if err != nil || id == 0 {
		http.Error(w, "bad member ID "+strconv.Quote(r.PathValue("id")), http.StatusBadRequest)
		return
	}
	if err := t.cfg.Raft.PromoteMember(r.Context(), id); err != nil {
		status := http.StatusInternalServerError
		var pe *PromoteError
		if errors.As(err, &pe) {
			status = pe.Status
		}
		t.lg.Info("refused a forwarded promote", zap.String("member-id", idString(id)), zap.Error(err))
		http.Error(w, errorText(err), status)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// errorText is the message of err without the PromoteError wrapping.
func errorText(err error) string {
	var pe *PromoteError
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

// PromoteMember asks the member at peerURL (the leader) to promote the
// learner id. from and clusterID identify the asking member, as on every
// peer request. A refusal is a *PromoteError.
func PromoteMember(ctx context.Context, client *http.Client, peerURL string, clusterID, from, id uint64) error {
	req, err := newForwardRequest(ctx, peerURL, clusterID, from, nil, "members", "promote", idString(id))
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return &PromoteError{Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
}
