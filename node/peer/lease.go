package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
)

// Lease keep-alives and time-to-live requests do not go through raft: only
// the leader knows the leases' deadlines. Like etcd, a follower forwards them
// to the leader's peer port, one protobuf message per POST, on paths named as
// in etcd: /leases (a LeaseKeepAliveRequest, answered with a
// LeaseKeepAliveResponse) and /leases/internal (a LeaseTimeToLiveRequest,
// answered with a LeaseTimeToLiveResponse). A lease the leader does not know
// is answered 404.
const (
	LeasePath         = "/leases"
	LeaseInternalPath = "/leases/internal"
)

// maxLeaseRequestBytes bounds a forwarded lease request (a few varints).
const maxLeaseRequestBytes = 64 << 10

// ErrLeaseNotFound is the leader's answer for a lease it does not know.
var ErrLeaseNotFound = errors.New("lease not found")

// Leases is what the leader's peer port needs to serve forwarded lease
// requests. Return ErrLeaseNotFound for an unknown lease; any other error is
// answered 503 and the follower tries again (e.g. the member is no longer,
// or not yet, the leader).
type Leases interface {
	RenewLease(ctx context.Context, id int64) (ttl int64, err error)
	LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
}

func (t *Transport) serveLeaseRenew(w http.ResponseWriter, r *http.Request) {
	var req pb.LeaseKeepAliveRequest
	if !t.readLeaseRequest(w, r, &req) {
		return
	}
	ttl, err := t.cfg.Leases.RenewLease(r.Context(), req.ID)
	if err != nil {
		t.writeLeaseError(w, err)
		return
	}
	t.writeLeaseAnswer(w, &pb.LeaseKeepAliveResponse{ID: req.ID, TTL: ttl})
}

func (t *Transport) serveLeaseTimeToLive(w http.ResponseWriter, r *http.Request) {
	var req pb.LeaseTimeToLiveRequest
	if !t.readLeaseRequest(w, r, &req) {
		return
	}
	resp, err := t.cfg.Leases.LeaseTimeToLive(r.Context(), &req)
	if err != nil {
		t.writeLeaseError(w, err)
		return
	}
	t.writeLeaseAnswer(w, resp)
}

func (t *Transport) readLeaseRequest(w http.ResponseWriter, r *http.Request, m proto.Message) bool {
	if _, ok := t.checkRequest(w, r); !ok {
		return false
	}
	if t.cfg.Leases == nil {
		http.Error(w, "leases are not served here", http.StatusServiceUnavailable)
		return false
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxLeaseRequestBytes))
	if err == nil {
		err = proto.Unmarshal(b, m)
	}
	if err != nil {
		http.Error(w, "bad lease request: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func (t *Transport) writeLeaseError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrLeaseNotFound) {
		http.Error(w, ErrLeaseNotFound.Error(), http.StatusNotFound)
		return
	}
	http.Error(w, err.Error(), http.StatusServiceUnavailable)
}

func (t *Transport) writeLeaseAnswer(w http.ResponseWriter, m proto.Message) {
	b, err := proto.Marshal(m)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/protobuf")
	w.Write(b)
}

// RenewLease forwards a keep-alive of lease id to the member at peerURL (the
// leader) and returns the TTL it renewed the lease with, or ErrLeaseNotFound.
func RenewLease(ctx context.Context, client *http.Client, peerURL string, clusterID, from uint64, id int64) (int64, error) {
	var resp pb.LeaseKeepAliveResponse
	if err := postLease(ctx, client, peerURL, LeasePath, clusterID, from, &pb.LeaseKeepAliveRequest{ID: id}, &resp); err != nil {
		return -1, err
	}
	return resp.TTL, nil
}

// LeaseTimeToLive forwards a time-to-live request to the member at peerURL
// (the leader), or returns ErrLeaseNotFound.
func LeaseTimeToLive(ctx context.Context, client *http.Client, peerURL string, clusterID, from uint64, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	var resp pb.LeaseTimeToLiveResponse
	if err := postLease(ctx, client, peerURL, LeaseInternalPath, clusterID, from, r, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func postLease(ctx context.Context, client *http.Client, peerURL, path string, clusterID, from uint64, req, resp proto.Message) error {
	body, err := proto.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := newForwardRequest(ctx, peerURL, clusterID, from, bytes.NewReader(body), path)
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/protobuf")
	hresp, err := client.Do(hr)
	if err != nil {
		return err
	}
	defer hresp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hresp.Body, maxLeaseRequestBytes))
	switch {
	case err != nil:
		return err
	case hresp.StatusCode == http.StatusNotFound && strings.TrimSpace(string(b)) == ErrLeaseNotFound.Error():
		// Told apart from the 404 of a peer port without these paths.
		return ErrLeaseNotFound
	case hresp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s answered %d: %s", path, hresp.StatusCode, strings.TrimSpace(string(b)))
	}
	return proto.Unmarshal(b, resp)
}
