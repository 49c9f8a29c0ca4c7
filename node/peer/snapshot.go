package peer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// sendSnapshot streams m and the db file to the peer and reports the outcome
// to raft, which pauses replication to the peer until then.
func (p *peer) sendSnapshot(m *raftpb.Message) {
	err := p.postSnapshot(m)
	if p.ctx.Err() != nil {
		return // the peer was removed or the transport stopped: nobody listens
	}
	r := p.t.cfg.Raft
	if err != nil {
		p.lg.Warn("failed to send snapshot", zap.Uint64("snapshot-index", m.GetSnapshot().GetMetadata().GetIndex()), zap.Error(err))
		p.t.reportUnreachable(p.id)
		r.ReportSnapshot(p.id, raft.SnapshotFailure)
		return
	}
	p.lg.Info("sent snapshot", zap.Uint64("snapshot-index", m.GetSnapshot().GetMetadata().GetIndex()))
	r.ReportSnapshot(p.id, raft.SnapshotFinish)
}

func (p *peer) postSnapshot(m *raftpb.Message) error {
	if p.t.cfg.SnapshotSource == nil {
		return errors.New("no snapshot source configured")
	}
	u, err := p.pickURL()
	if err != nil {
		return err
	}
	db, size, err := p.t.cfg.SnapshotSource(m)
	if err != nil {
		return fmt.Errorf("cannot open snapshot data: %w", err)
	}
	defer db.Close()

	head, err := appendFrame(nil, m)
	if err != nil {
		return err
	}
	wire := unknownSize
	if size >= 0 {
		wire = uint64(size)
	}
	head = binary.BigEndian.AppendUint64(head, wire)
	var body io.Reader = io.MultiReader(bytes.NewReader(head), db)
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, u.JoinPath("raft", "snapshot").String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = -1 // chunked: the size is only a promise of the source
	if size >= 0 {
		req.ContentLength = int64(len(head)) + size
	}
	p.setIdentity(req.Header)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := p.t.snapHTTP.Do(req)
	if err != nil {
		p.urlFailed(u)
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return p.rejected(resp)
	}
	return nil
}
