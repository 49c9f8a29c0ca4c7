// Package peer is the raft peer transport of etcd-node: it carries raft
// messages between members over the peer port and serves the parts of
// etcd's peer HTTP surface that tools and joining members use
// (GET /members, GET /version).
//
// Wire protocol (our own; not compatible with upstream rafthttp):
//   - Each member dials every peer twice, one stream per lane: "msgapp"
//     (MsgApp only, the bulk of the traffic) and "message" (everything
//     else), so heartbeats and votes never queue behind large appends.
//   - A stream starts as `POST /raft/stream/<lane>` with `Upgrade:
//     etcd-node-raft/1`. The receiver checks the identity headers and then
//     answers 101 and takes over the TCP (or TLS) connection; from then on
//     the sender writes frames: a 4-byte big-endian length followed by a
//     protobuf-marshalled raftpb.Message. Whatever is queued is encoded into
//     one buffer and written with a single write call.
//   - A zero-length frame is a ping; the receiver answers with one byte, so
//     both ends notice a dead peer within a few keepalive intervals.
//   - MsgSnap travels alone as `POST /raft/snapshot` whose body is
//     frame(message) + 8-byte db length + db bytes.
//
// Every request carries X-Etcd-Cluster-ID, X-Server-From and
// X-Server-Version; a mismatched cluster ID is answered 412 and a removed
// sender 403, as etcd does.
package peer

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Raft is the part of the raft node the transport drives.
type Raft interface {
	// Process delivers an incoming message to raft.
	Process(ctx context.Context, m *raftpb.Message) error
	// IsIDRemoved reports whether id was removed from the cluster; such a
	// sender is answered 403.
	IsIDRemoved(id uint64) bool
	// ReportUnreachable tells raft that a message to id was lost.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft how sending a snapshot to id ended.
	ReportSnapshot(id uint64, status raft.SnapshotStatus)
	// PromoteMember promotes the learner id for a member that forwarded
	// the request (see promote.go); it does not forward again. A
	// *PromoteError sets the answer's status.
	PromoteMember(ctx context.Context, id uint64) error
}

// MemberInfo is one element of the GET /members answer, shaped like
// etcd's membership.Member JSON.
type MemberInfo struct {
	ID         uint64   `json:"id"`
	PeerURLs   []string `json:"peerURLs"`
	Name       string   `json:"name"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner"`
}

// Config configures a Transport. Only LocalID and Raft are required.
type Config struct {
	LocalID   uint64
	ClusterID uint64 // may be set later with SetClusterID; 0 means unknown
	Raft      Raft
	Logger    *zap.Logger
	// TLS is used to dial https peer URLs; nil dials only http URLs.
	TLS *tls.Config
	// DialTimeout bounds TCP connect + TLS handshake + stream handshake
	// (default 3s).
	DialTimeout time.Duration

	// SnapshotSource opens the db file to send with a MsgSnap and returns
	// its size (or -1 when unknown).
	SnapshotSource func(m *raftpb.Message) (io.ReadCloser, int64, error)
	// SnapshotSink stores the db bytes of an incoming MsgSnap; it must read
	// r to EOF. Process is called with m after it returns nil.
	SnapshotSink func(m *raftpb.Message, r io.Reader) error

	// OnRemoved is called (once) when a peer answered 403: this member was
	// removed from the cluster. OnClusterIDMismatch is called (once) when a
	// peer answered 412 with a different cluster ID. Both run on a transport
	// goroutine: they must not call Stop synchronously.
	OnRemoved           func()
	OnClusterIDMismatch func(local, remote uint64)

	// Members feeds GET /members.
	Members func() []MemberInfo
	// Leases serves keep-alives and time-to-live requests that followers
	// forward to the leader (see lease.go); nil answers them 503.
	Leases Leases
	// ServerVersion is sent as X-Server-Version and served by GET /version
	// (default "3.7.3"); ClusterVersion is served by GET /version
	// (default "not_decided").
	ServerVersion  string
	ClusterVersion func() string

	// QueueSize is the per-peer, per-lane send queue length (default 4096).
	QueueSize int
	// KeepAliveInterval is how often an open stream is pinged (default 2s);
	// a stream with no sign of life for 5 intervals is closed.
	KeepAliveInterval time.Duration
}

const (
	defaultDialTimeout   = 3 * time.Second
	defaultQueueSize     = 4096
	defaultKeepAlive     = 2 * time.Second
	defaultServerVersion = "3.7.3"
	minBackoff           = 50 * time.Millisecond
	maxBackoff           = time.Second
)

// Transport sends raft messages to peers and receives theirs.
type Transport struct {
	cfg       Config
	lg        *zap.Logger
	clusterID atomic.Uint64
	ctx       context.Context
	cancel    context.CancelFunc
	dialer    net.Dialer
	snapHTTP  *http.Client
	handler   http.Handler

	mu      sync.RWMutex
	stopped bool
	peers   map[uint64]*peer
	inbound map[net.Conn]uint64 // hijacked stream connections → sender ID
	wg      sync.WaitGroup      // every goroutine the transport starts or hosts

	unreachMu sync.Mutex
	unreach   map[uint64]struct{}
	unreachC  chan struct{}

	removedOnce  sync.Once
	mismatchOnce sync.Once
}

// New builds a transport; it starts sending once peers are added.
func New(cfg Config) *Transport {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = defaultDialTimeout
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = defaultQueueSize
	}
	if cfg.KeepAliveInterval <= 0 {
		cfg.KeepAliveInterval = defaultKeepAlive
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = defaultServerVersion
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		cfg:      cfg,
		lg:       cfg.Logger.With(zap.String("local-member-id", idString(cfg.LocalID))),
		ctx:      ctx,
		cancel:   cancel,
		dialer:   net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 15 * time.Second},
		peers:    make(map[uint64]*peer),
		inbound:  make(map[net.Conn]uint64),
		unreach:  make(map[uint64]struct{}),
		unreachC: make(chan struct{}, 1),
	}
	t.clusterID.Store(cfg.ClusterID)
	t.snapHTTP = &http.Client{Transport: &http.Transport{
		DialContext:         t.dialer.DialContext,
		TLSClientConfig:     cloneTLS(cfg.TLS),
		TLSHandshakeTimeout: cfg.DialTimeout,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Minute,
	}}
	t.handler = t.newHandler()
	t.wg.Add(1)
	go t.runReporter()
	return t
}

// SetClusterID sets the cluster ID once it is known (a joining member
// learns it from GET /members).
func (t *Transport) SetClusterID(id uint64) { t.clusterID.Store(id) }

// ClusterID returns the cluster ID in use.
func (t *Transport) ClusterID() uint64 { return t.clusterID.Load() }

// AddPeer starts streams to a new peer. Adding a known peer does nothing.
func (t *Transport) AddPeer(id uint64, urls []string) {
	if id == t.cfg.LocalID || id == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if _, ok := t.peers[id]; ok {
		return
	}
	p := newPeer(t, id, t.parseURLs(id, urls))
	t.peers[id] = p
	p.start()
	t.lg.Info("added peer", zap.String("remote-peer-id", idString(id)), zap.Strings("remote-peer-urls", urls))
}

// RemovePeer stops the streams to id and drops its inbound connections.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p := t.peers[id]
	delete(t.peers, id)
	for c, from := range t.inbound {
		if from == id {
			c.Close()
		}
	}
	t.mu.Unlock()
	if p != nil {
		p.cancel()
		t.lg.Info("removed peer", zap.String("remote-peer-id", idString(id)))
	}
}

// UpdatePeer replaces the URLs of a known peer; the next connection
// attempt uses them.
func (t *Transport) UpdatePeer(id uint64, urls []string) {
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	if p == nil {
		return
	}
	p.setURLs(t.parseURLs(id, urls))
	t.lg.Info("updated peer", zap.String("remote-peer-id", idString(id)), zap.Strings("remote-peer-urls", urls))
}

// ActiveSince returns when a stream to id last became connected, or the
// zero time when none is.
func (t *Transport) ActiveSince(id uint64) time.Time {
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	if p == nil {
		return time.Time{}
	}
	return p.activeSince()
}

// Send queues messages for their peers. It never blocks: a message that
// does not fit its queue is dropped and raft is told the peer is
// unreachable (from another goroutine, so raft locks held by the caller
// cannot deadlock).
func (t *Transport) Send(msgs []*raftpb.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.stopped {
		return
	}
	for _, m := range msgs {
		to := m.GetTo()
		p := t.peers[to]
		if p == nil {
			t.lg.Debug("dropped message to unknown peer", zap.String("remote-peer-id", idString(to)), zap.Stringer("type", m.GetType()))
			continue
		}
		p.send(m)
	}
}

// Stop closes every connection and waits for the transport's goroutines.
func (t *Transport) Stop() {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return
	}
	t.stopped = true
	t.cancel()
	for c := range t.inbound {
		c.Close()
	}
	t.peers = map[uint64]*peer{}
	t.mu.Unlock()
	t.wg.Wait()
	t.snapHTTP.CloseIdleConnections()
}

// goTracked runs f on a goroutine that Stop waits for. The caller holds
// t.mu (read or write) and has seen !t.stopped, so Stop cannot be waiting
// on the group yet.
func (t *Transport) goTracked(f func()) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
}

// reportUnreachable records that a message to id was lost; the reporter
// goroutine tells raft, once per burst of losses.
func (t *Transport) reportUnreachable(id uint64) {
	t.unreachMu.Lock()
	t.unreach[id] = struct{}{}
	t.unreachMu.Unlock()
	select {
	case t.unreachC <- struct{}{}:
	default:
	}
}

func (t *Transport) runReporter() {
	defer t.wg.Done()
	pending := make(map[uint64]struct{})
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-t.unreachC:
		}
		t.unreachMu.Lock()
		pending, t.unreach = t.unreach, pending
		t.unreachMu.Unlock()
		for id := range pending {
			if t.ctx.Err() != nil {
				return
			}
			t.cfg.Raft.ReportUnreachable(id)
		}
		clear(pending)
	}
}

func (t *Transport) memberRemoved() {
	t.removedOnce.Do(func() {
		t.lg.Warn("the member has been permanently removed from the cluster")
		if t.cfg.OnRemoved != nil {
			t.cfg.OnRemoved()
		}
	})
}

func (t *Transport) clusterIDMismatch(remote uint64) {
	local := t.clusterID.Load()
	t.mismatchOnce.Do(func() {
		if t.cfg.OnClusterIDMismatch != nil {
			t.cfg.OnClusterIDMismatch(local, remote)
		}
	})
}

// parseURLs keeps the usable peer URLs; bad ones are logged, not fatal,
// because a later UpdatePeer may fix them.
func (t *Transport) parseURLs(id uint64, raw []string) []*url.URL {
	var out []*url.URL
	for _, s := range raw {
		u, err := url.Parse(s)
		if err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			out = append(out, u)
			continue
		}
		t.lg.Warn("ignoring invalid peer URL", zap.String("remote-peer-id", idString(id)), zap.String("url", s))
	}
	return out
}

func cloneTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	return c.Clone()
}

// idString formats a member or cluster ID the way etcd prints them.
func idString(id uint64) string { return strconv.FormatUint(id, 16) }
