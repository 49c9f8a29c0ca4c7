package peer

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	// net/http lingers 500 ms on a connection whose request body was not
	// read (a refused upload) before closing it; that goroutine belongs to
	// the test's server and ends by itself.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*conn).closeWriteAndWait"))
}

type snapReport struct {
	id     uint64
	status raft.SnapshotStatus
}

// fakeRaft records what the transport hands to raft.
type fakeRaft struct {
	mu          sync.Mutex
	msgs        []*raftpb.Message
	removed     map[uint64]bool
	unreachable map[uint64]int
	snaps       []snapReport
	onProcess   func(m *raftpb.Message) // optional hook, called unlocked
	promote     func(id uint64) error   // optional hook for PromoteMember
}

func newFakeRaft() *fakeRaft {
	return &fakeRaft{removed: map[uint64]bool{}, unreachable: map[uint64]int{}}
}

func (f *fakeRaft) Process(ctx context.Context, m *raftpb.Message) error {
	if f.onProcess != nil {
		f.onProcess(m)
		return ctx.Err()
	}
	f.mu.Lock()
	f.msgs = append(f.msgs, m)
	f.mu.Unlock()
	return nil
}

func (f *fakeRaft) IsIDRemoved(id uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.removed[id]
}

func (f *fakeRaft) ReportUnreachable(id uint64) {
	f.mu.Lock()
	f.unreachable[id]++
	f.mu.Unlock()
}

func (f *fakeRaft) ReportSnapshot(id uint64, status raft.SnapshotStatus) {
	f.mu.Lock()
	f.snaps = append(f.snaps, snapReport{id, status})
	f.mu.Unlock()
}

func (f *fakeRaft) PromoteMember(_ context.Context, id uint64) error {
	if f.promote != nil {
		return f.promote(id)
	}
	return errors.New("no promote hook")
}

func (f *fakeRaft) setRemoved(id uint64) {
	f.mu.Lock()
	f.removed[id] = true
	f.mu.Unlock()
}

func (f *fakeRaft) received() []*raftpb.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*raftpb.Message(nil), f.msgs...)
}

func (f *fakeRaft) unreachableCount(id uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unreachable[id]
}

func (f *fakeRaft) snapReports() []snapReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]snapReport(nil), f.snaps...)
}

// node is a transport served on a real loopback listener.
type node struct {
	id   uint64
	raft *fakeRaft
	tr   *Transport
	srv  *http.Server
	url  string
	done chan struct{}
}

// startNode serves a transport on addr ("127.0.0.1:0" for any port).
func startNode(t testing.TB, id, clusterID uint64, addr string, opts ...func(*Config)) *node {
	t.Helper()
	var ln net.Listener
	// A restarted node reuses its port; the old socket may linger briefly.
	waitFor(t, "listen on "+addr, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	return serveNode(t, id, clusterID, ln, "http://"+ln.Addr().String(), nil, opts...)
}

// serveNode serves a transport on ln, behind wrap when it is not nil.
func serveNode(t testing.TB, id, clusterID uint64, ln net.Listener, url string, wrap func(http.Handler) http.Handler, opts ...func(*Config)) *node {
	t.Helper()
	fr := newFakeRaft()
	cfg := Config{LocalID: id, ClusterID: clusterID, Raft: fr, Logger: testLogger(t), DialTimeout: 2 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	n := &node{id: id, raft: fr, tr: New(cfg), url: url, done: make(chan struct{})}
	n.srv = &http.Server{Handler: n.tr.Handler()}
	if wrap != nil {
		n.srv.Handler = wrap(n.srv.Handler)
	}
	go func() {
		defer close(n.done)
		if err := n.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(n.stop)
	return n
}

var stopMu sync.Mutex

func (n *node) stop() {
	stopMu.Lock()
	defer stopMu.Unlock()
	select {
	case <-n.done:
		return
	default:
	}
	n.srv.Close()
	n.tr.Stop()
	<-n.done
}

func testLogger(t testing.TB) *zap.Logger {
	if testing.Verbose() {
		return zaptest.NewLogger(t)
	}
	return zap.NewNop()
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func msg(typ raftpb.MessageType, from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{
		Type:  typ.Enum(),
		From:  proto.Uint64(from),
		To:    proto.Uint64(to),
		Term:  proto.Uint64(1),
		Index: proto.Uint64(index),
	}
}

// connect adds every node as a peer of every other one.
func connect(nodes ...*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.tr.AddPeer(b.id, []string{b.url})
			}
		}
	}
}
