package server

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	"go.uber.org/zap"
)

// readIndexer serves linearizable reads with raft's ReadIndex: requests that
// arrive while one round is in flight share the next round, so one
// heartbeat round trip confirms leadership for a whole batch of reads.
type readIndexer struct {
	s      *Server
	mu     sync.Mutex
	next   *readRound
	kick   chan struct{}
	states chan raft.ReadState
}

type readRound struct {
	done chan struct{}
	err  error
}

func newReadRound() *readRound { return &readRound{done: make(chan struct{})} }

func newReadIndexer(s *Server) *readIndexer {
	return &readIndexer{s: s, next: newReadRound(), kick: make(chan struct{}, 1), states: make(chan raft.ReadState, 64)}
}

// errReadTimeout means no leader confirmed the read in time.
var errReadTimeout = errors.New("etcdserver: request timed out")

// wait blocks until a read that starts now may be served from the local
// store without missing any write acknowledged before it.
func (r *readIndexer) wait(ctx context.Context) error {
	r.mu.Lock()
	round := r.next
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	select {
	case <-round.done:
		return round.err
	case <-ctx.Done():
		return ctx.Err()
	case <-r.s.stopc:
		return ErrStopped
	}
}

func (r *readIndexer) deliver(rs raft.ReadState) {
	select {
	case r.states <- rs:
	default:
		// The loop is not waiting for this one any more (timed out).
	}
}

func (r *readIndexer) run() {
	var seq uint64
	for {
		select {
		case <-r.kick:
		case <-r.s.stopc:
			return
		}
		r.mu.Lock()
		round := r.next
		r.next = newReadRound()
		r.mu.Unlock()
		seq++
		round.err = r.confirm(seq)
		close(round.done)
	}
}

// confirm runs one ReadIndex round and waits until the returned index is
// applied locally.
func (r *readIndexer) confirm(seq uint64) error {
	s := r.s
	rctx := make([]byte, 16)
	binary.BigEndian.PutUint64(rctx, s.id)
	binary.BigEndian.PutUint64(rctx[8:], seq)
	timeout := time.NewTimer(s.requestTimeout())
	defer timeout.Stop()
	retry := time.NewTicker(time.Duration(s.cfg.ElectionMs) * time.Millisecond / 2)
	defer retry.Stop()
	send := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
		defer cancel()
		return s.node.ReadIndex(ctx, rctx)
	}
	if err := send(); err != nil {
		return err
	}
	for {
		select {
		case rs := <-r.states:
			if string(rs.RequestCtx) != string(rctx) {
				continue // an answer to an earlier, abandoned round
			}
			select {
			case <-s.applyWait.wait(rs.Index):
				return nil
			case <-timeout.C:
				return errReadTimeout
			case <-s.stopc:
				return ErrStopped
			}
		case <-retry.C:
			// Raft drops a read index request when there is no leader:
			// ask again rather than wait for the whole timeout.
			if err := send(); err != nil {
				s.lg.Debug("read index retry failed", zap.Error(err))
			}
		case <-timeout.C:
			return errReadTimeout
		case <-s.stopc:
			return ErrStopped
		}
	}
}
