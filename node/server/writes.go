package server

import (
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Hooks for services layered on the key space (the v2 keys API of
// node/v2keys): the current revision and the events of every applied write.

// AddWriteListener registers fn to receive the events of every applied
// write transaction, in revision order, from the apply loop: fn must be quick
// and must not block. A database replaced by a snapshot from the leader
// produces no events for the writes it contains.
func (s *Server) AddWriteListener(fn func(events []*mvccpb.Event)) {
	s.writeMu.Lock()
	s.writeListeners = append(s.writeListeners, fn)
	s.writeMu.Unlock()
}

func (s *Server) emitWrite(events []*mvccpb.Event) {
	s.writeMu.Lock()
	ls := s.writeListeners
	s.writeMu.Unlock()
	for _, fn := range ls {
		fn(events)
	}
}

// AddResetListener registers fn to learn that the key space was replaced by
// a snapshot from the leader (rev is its revision): the events of the writes
// it contains were never delivered. fn runs with the store locked and must
// not call back into the server.
func (s *Server) AddResetListener(fn func(rev int64)) {
	s.writeMu.Lock()
	s.resetListeners = append(s.resetListeners, fn)
	s.writeMu.Unlock()
}

func (s *Server) emitReset(rev int64) {
	s.writeMu.Lock()
	ls := s.resetListeners
	s.writeMu.Unlock()
	for _, fn := range ls {
		fn(rev)
	}
}

// Rev is the current revision of the key space.
func (s *Server) Rev() int64 {
	s.kvMu.RLock()
	defer s.kvMu.RUnlock()
	return s.kv.Rev()
}

// AppliedIndex is the raft index of the last applied entry.
func (s *Server) AppliedIndex() uint64 { return s.appliedIndex.Load() }

// AdvertiseClientURLs are the member's --advertise-client-urls.
func (s *Server) AdvertiseClientURLs() []string {
	out := make([]string, len(s.cfg.AdvertiseClientURLs))
	for i := range s.cfg.AdvertiseClientURLs {
		out[i] = s.cfg.AdvertiseClientURLs[i].String()
	}
	return out
}
