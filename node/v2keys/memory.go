package v2keys

import (
	"context"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"etcdctl-wizard/node/backend"
	"etcdctl-wizard/node/mvcc"
)

// MemoryBackend is a Backend without raft: one MVCC store on a local
// database, writes applied at once. For tests of the API and of discovery
// clients.
type MemoryBackend struct {
	mu        sync.Mutex // orders writes
	b         *backend.Backend
	kv        *mvcc.Store
	listeners []func([]*mvccpb.Event)
	resets    []func(int64)
	lmu       sync.Mutex
}

// NewMemoryBackend opens (creating) the database at path.
func NewMemoryBackend(path string) (*MemoryBackend, error) {
	b, err := backend.Open(path, backend.Options{BatchInterval: time.Second})
	if err != nil {
		return nil, err
	}
	kv, err := mvcc.New(b)
	if err != nil {
		b.Close()
		return nil, err
	}
	m := &MemoryBackend{b: b, kv: kv}
	kv.OnWrite = func(evs []*mvccpb.Event) {
		m.lmu.Lock()
		ls := m.listeners
		m.lmu.Unlock()
		for _, fn := range ls {
			fn(evs)
		}
	}
	return m, nil
}

// Close closes the database.
func (m *MemoryBackend) Close() error { return m.b.Close() }

func (m *MemoryBackend) Range(_ context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return m.kv.Range(r)
}

func (m *MemoryBackend) Txn(_ context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	resp, err := m.kv.Txn(mvcc.Index{}, r)
	if err == nil && resp.Header == nil {
		resp.Header = &pb.ResponseHeader{}
	}
	if err == nil && resp.Header.Revision == 0 {
		resp.Header.Revision = m.kv.Rev()
	}
	return resp, err
}

func (m *MemoryBackend) Rev() int64 { return m.kv.Rev() }

func (m *MemoryBackend) AddWriteListener(fn func([]*mvccpb.Event)) {
	m.lmu.Lock()
	m.listeners = append(m.listeners, fn)
	m.lmu.Unlock()
}

func (m *MemoryBackend) AddResetListener(fn func(rev int64)) {
	m.lmu.Lock()
	m.resets = append(m.resets, fn)
	m.lmu.Unlock()
}

// Reset tells the listeners the store was replaced, as a snapshot install
// does on a member.
func (m *MemoryBackend) Reset() {
	m.lmu.Lock()
	rs := m.resets
	m.lmu.Unlock()
	for _, fn := range rs {
		fn(m.kv.Rev())
	}
}
