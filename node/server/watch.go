package server

import (
	"go.etcd.io/etcd/api/v3/mvccpb"

	"etcdctl-wizard/node/backend"
	"etcdctl-wizard/node/watch"
)

// watchSource reads history from whichever store is current (a snapshot from
// the leader replaces it).
type watchSource struct{ s *Server }

func (w watchSource) History(key, end []byte, from, to int64, prevKV bool) ([]*mvccpb.Event, int64, error) {
	w.s.kvMu.RLock()
	defer w.s.kvMu.RUnlock()
	if w.s.backend == nil {
		return nil, 0, backend.ErrClosed
	}
	return w.s.kv.History(key, end, from, to, prevKV)
}

func (w watchSource) CompactRev() int64 {
	w.s.kvMu.RLock()
	defer w.s.kvMu.RUnlock()
	return w.s.kv.CompactRev()
}

// initWatch creates the watch hub at the store's revision and subscribes it
// to writes and snapshot installs. It runs in New, before the raft loop can
// apply anything.
func (s *Server) initWatch() {
	s.watches = watch.NewHub(watchSource{s}, s.kv.Rev(), watch.Options{Logger: s.lg})
	s.AddWriteListener(s.watches.OnWrite)
	s.AddResetListener(s.watches.Reset)
}

// Watches is the member's watch hub, for the Watch gRPC service.
func (s *Server) Watches() *watch.Hub { return s.watches }
