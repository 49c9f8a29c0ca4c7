package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"etcdctl-wizard/node/auth"
	"etcdctl-wizard/node/backend"
	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/lease"
	"etcdctl-wizard/node/mvcc"
	"etcdctl-wizard/node/peer"
	"etcdctl-wizard/node/snap"
	"etcdctl-wizard/node/wal"
	"etcdctl-wizard/node/watch"
)

// Options are the knobs of a member beyond its etcd configuration.
type Options struct {
	Logger *zap.Logger
	// Resolve turns host:port into ip:port for the advertise URL check;
	// nil uses the system resolver.
	Resolve config.Resolver
	// PeerTLS dials other members over https; nil dials only http.
	PeerTLS *tls.Config
	// Fatal is called when the member must stop with an error the operator
	// has to act on (e.g. a conflicting cluster ID). It must not return.
	Fatal func(msg string)
	// BackendBatchInterval overrides how often the backend commits.
	BackendBatchInterval time.Duration
}

// walMetadata is stored at the head of the WAL: who this member is.
type walMetadata struct {
	NodeID    uint64 `json:"nodeID"`
	ClusterID uint64 `json:"clusterID"`
}

// Server is one etcd-node member.
type Server struct {
	cfg *config.Config
	lg  *zap.Logger
	opt Options

	id        uint64
	clusterID atomic.Uint64

	node        raft.Node
	storage     *raft.MemoryStorage
	wal         *wal.WAL
	snapshotter *snap.Snapshotter
	transport   *peer.Transport
	cluster     *membership
	metrics     *Metrics

	// kvMu guards the backend and store pointers, which a snapshot from the
	// leader replaces; readers hold it shared.
	kvMu    sync.RWMutex
	backend *backend.Backend
	kv      *mvcc.Store
	// lessor outlives backend swaps: it is rebuilt from each new backend.
	lessor *lease.Lessor
	// auth too; its simple tokens are this member's, kept in memory.
	auth *auth.Store
	// leaseClient forwards keep-alives to the leader's peer port over
	// reused connections (one request per keep-alive).
	leaseClient *http.Client

	// Raft state the loop publishes for readers.
	lead         atomic.Uint64
	term         atomic.Uint64
	committed    atomic.Uint64
	appliedIndex atomic.Uint64
	appliedTerm  uint64 // loop-owned
	snapIndex    uint64 // loop-owned
	confState    *raftpb.ConfState

	waits     *waitRegistry
	applyWait *indexWaiter
	reqIDs    *idGenerator
	reads     *readIndexer

	snapMu    sync.Mutex
	snapFiles map[uint64]string // outgoing snapshot db copies, by index

	writeMu        sync.Mutex
	writeListeners []func(events []*mvccpb.Event) // see AddWriteListener
	resetListeners []func(rev int64)              // see AddResetListener
	watches        *watch.Hub                     // see initWatch

	fresh          bool          // bootstrapping a new cluster (no WAL, state new)
	bootstrapPeers []uint64      // the members of a new cluster, this one included
	readyc         chan struct{} // closed once published and ready for clients
	stopc          chan struct{}
	donec          chan struct{}
	stopOnce       sync.Once
	removedc       chan struct{}
	fatalOnce      sync.Once
	errc           chan error
}

// ErrStopped is returned to requests that arrive while the member stops.
var ErrStopped = errors.New("etcdserver: server stopped")

// New bootstraps a member from its configuration: restart from an existing
// WAL, join an existing cluster, or start a new one. It runs every
// bootstrap check before it returns; it opens no client listener.
func New(ctx context.Context, cfg *config.Config, opt Options) (*Server, error) {
	if opt.Logger == nil {
		opt.Logger = zap.NewNop()
	}
	if opt.Fatal == nil {
		opt.Fatal = func(msg string) { opt.Logger.Fatal(msg) }
	}
	s := &Server{
		cfg: cfg, lg: opt.Logger, opt: opt,
		metrics:   newMetrics(),
		cluster:   newMembership(),
		waits:     newWaitRegistry(),
		applyWait: newIndexWaiter(),
		snapFiles: map[uint64]string{},
		readyc:    make(chan struct{}),
		stopc:     make(chan struct{}),
		donec:     make(chan struct{}),
		removedc:  make(chan struct{}),
		errc:      make(chan error, 1),
	}
	if err := os.MkdirAll(cfg.SnapPath(), 0o700); err != nil {
		return nil, fmt.Errorf("cannot create data dir %s: %w", cfg.DataDir, err)
	}
	if err := checkDirWritable(cfg.DataDir); err != nil {
		return nil, err
	}
	s.snapshotter = snap.New(cfg.SnapPath())
	s.newLessor()
	s.newAuthStore()
	s.leaseClient = &http.Client{Transport: &http.Transport{TLSClientConfig: opt.PeerTLS, MaxIdleConnsPerHost: 64}}

	var err error
	switch {
	case wal.Exist(cfg.WALPath()):
		err = s.restart()
	case cfg.InitialClusterState == "existing":
		err = s.joinExisting(ctx)
	default:
		err = s.bootstrapNew(ctx)
	}
	if err != nil {
		s.closeStorage()
		return nil, err
	}
	s.reqIDs = newIDGenerator(s.id, time.Now())
	s.registerServerGauges()
	s.reads = newReadIndexer(s)
	s.initWatch()
	return s, nil
}

func checkDirWritable(dir string) error {
	f, err := os.CreateTemp(dir, ".touch")
	if err != nil {
		return fmt.Errorf("data dir %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func (s *Server) dbPath() string { return filepath.Join(s.cfg.SnapPath(), "db") }

func (s *Server) openBackend() error {
	b, err := backend.Open(s.dbPath(), backend.Options{
		BatchInterval: s.opt.BackendBatchInterval,
		OnCommit:      func(d time.Duration) { s.metrics.backendCommit.Observe(d.Seconds()) },
	})
	if err != nil {
		return err
	}
	kv, err := mvcc.New(b)
	if err != nil {
		b.Close()
		return err
	}
	kv.OnWrite = s.emitWrite
	if err := s.recoverLeases(b, kv); err != nil {
		b.Close()
		return err
	}
	if err := s.auth.Load(b); err != nil {
		b.Close()
		return fmt.Errorf("rebuilding the auth store: %w", err)
	}
	s.backend, s.kv = b, kv
	s.emitReset(kv.Rev())
	s.cluster.setStore(b)
	return nil
}

// peerClient is for one-off requests to other members' peer ports (GET
// /members before raft runs, a forwarded promote). Its connections are not
// kept: a fresh transport per call would otherwise keep each one open,
// with its goroutines, for as long as the peer does.
func (s *Server) peerClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{TLSClientConfig: s.opt.PeerTLS, DisableKeepAlives: true}}
}

func (s *Server) walOptions() wal.Options {
	return wal.Options{OnFsync: func(d time.Duration) { s.metrics.walFsync.Observe(d.Seconds()) }}
}

// clusterVersion is what the peer port's /version reports.
func (s *Server) clusterVersion() string {
	if s.ServesClusterVersion() {
		return versionCluster()
	}
	return "not_decided"
}

func (s *Server) raftConfig() *raft.Config {
	ticks := int(s.cfg.ElectionMs / s.cfg.HeartbeatMs)
	return &raft.Config{
		ID:              s.id,
		ElectionTick:    ticks,
		HeartbeatTick:   1,
		Storage:         s.storage,
		MaxSizePerMsg:   1 << 20,
		MaxInflightMsgs: 4096 / 8,
		// A guard against unbounded memory when followers are slow.
		MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum:               true,
		PreVote:                   s.cfg.PreVote,
		Logger:                    newRaftLogger(s.lg),
	}
}

func (s *Server) newTransport() {
	s.transport = peer.New(peer.Config{
		LocalID:        s.id,
		ClusterID:      s.clusterID.Load(),
		Raft:           (*raftAdapter)(s),
		Logger:         s.lg,
		TLS:            s.opt.PeerTLS,
		Members:        s.peerMembers,
		ServerVersion:  versionServer(),
		ClusterVersion: s.clusterVersion,
		SnapshotSource: s.snapshotSource,
		SnapshotSink:   s.snapshotSink,
		Leases:         (*leasePeer)(s),
		OnClusterIDMismatch: func(local, remote uint64) {
			s.fatal(config.ConflictingClusterIDMessage(local, remote))
		},
		OnRemoved: func() { s.signalRemoved() },
	})
}

// bootstrapNew starts a member of a new static cluster.
func (s *Server) bootstrapNew(ctx context.Context) error {
	resolve := s.opt.Resolve
	if resolve == nil {
		resolve = SystemResolver
	}
	b, err := config.CheckNewCluster(ctx, s.cfg, resolve)
	if err != nil {
		return err
	}
	s.id = b.LocalID
	s.clusterID.Store(b.ClusterID)
	if err := s.checkPeersAgree(ctx, b); err != nil {
		return err
	}
	if err := s.openBackend(); err != nil {
		return err
	}
	meta, _ := json.Marshal(walMetadata{NodeID: s.id, ClusterID: b.ClusterID})
	if s.wal, err = wal.CreateWith(s.cfg.WALPath(), meta, s.walOptions()); err != nil {
		return err
	}
	s.storage = raft.NewMemoryStorage()
	var peers []raft.Peer
	for _, name := range b.Members.Names() {
		m := &Member{ID: b.IDs[name], PeerURLs: config.URLStrings(b.Members[name])}
		if name == s.cfg.Name {
			m.Name = name
		}
		ctxJSON, _ := json.Marshal(m)
		peers = append(peers, raft.Peer{ID: m.ID, Context: ctxJSON})
	}
	s.newTransport()
	s.fresh = true
	for _, name := range b.Members.Names() {
		s.bootstrapPeers = append(s.bootstrapPeers, b.IDs[name])
	}
	s.node = raft.StartNode(s.raftConfig(), peers)
	for _, name := range b.Members.Names() {
		if id := b.IDs[name]; id != s.id {
			s.transport.AddPeer(id, config.URLStrings(b.Members[name]))
		}
	}
	s.lg.Info("starting a new member of a new cluster",
		zap.String("local-member-id", config.IDString(s.id)), zap.String("cluster-id", config.IDString(b.ClusterID)))
	return nil
}

// checkPeersAgree asks the other members named in --initial-cluster for
// their cluster ID before this member starts raft: a member started with a
// different initial cluster or token would otherwise corrupt nothing but
// retry forever (upstream); etcd-node stops with the guide's error instead.
// It also refuses to bootstrap a member that the cluster already started.
func (s *Server) checkPeersAgree(ctx context.Context, b *config.Bootstrap) error {
	for _, name := range b.Members.Names() {
		if name == s.cfg.Name {
			continue
		}
		for _, u := range config.URLStrings(b.Members[name]) {
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			cid, members, err := peer.FetchMembers(pctx, s.peerClient(time.Second), []string{u})
			cancel()
			if err != nil {
				continue // not up yet: the normal case while a cluster forms
			}
			if cid != b.ClusterID {
				return &config.CheckError{Code: config.CodeConflictingClusterID, Member: s.cfg.Name, Field: "initial-cluster",
					Msg: config.ConflictingClusterIDMessage(b.ClusterID, cid)}
			}
			for _, m := range members {
				if m.ID == s.id && len(m.ClientURLs) > 0 {
					return fmt.Errorf("member %s has already been bootstrapped", config.IDString(s.id))
				}
			}
		}
	}
	return nil
}

// joinExisting starts a member that was added with `member add`.
func (s *Server) joinExisting(ctx context.Context) error {
	members, err := config.CheckJoinExisting(s.cfg)
	if err != nil {
		return err
	}
	var others []string
	for _, name := range members.Names() {
		if name != s.cfg.Name {
			others = append(others, config.URLStrings(members[name])...)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cid, remote, err := peer.FetchMembers(fctx, s.peerClient(10*time.Second), others)
	cancel()
	if err != nil {
		return fmt.Errorf("cannot fetch cluster info from peer urls: %w", err)
	}
	if len(remote) == 0 {
		return errors.New("failed to get raft cluster member(s) from the given URLs")
	}
	if len(remote) != len(members) {
		return fmt.Errorf("error validating peerURLs %s: member count is unequal", members.String())
	}
	local := config.URLStrings(members[s.cfg.Name])
	for _, m := range remote {
		if sameStrings(m.PeerURLs, local) {
			s.id = m.ID
		}
	}
	if s.id == 0 {
		return fmt.Errorf("error validating peerURLs %s: no existing member has the peer URLs %v of %s (add it first with 'etcdctl member add')", members.String(), local, s.cfg.Name)
	}
	s.clusterID.Store(cid)
	if err := s.openBackend(); err != nil {
		return err
	}
	// The membership itself is rebuilt from the log or a snapshot the
	// leader sends, like on any member; the remote list only tells the
	// transport where the others are.
	meta, _ := json.Marshal(walMetadata{NodeID: s.id, ClusterID: cid})
	if s.wal, err = wal.CreateWith(s.cfg.WALPath(), meta, s.walOptions()); err != nil {
		return err
	}
	s.storage = raft.NewMemoryStorage()
	s.newTransport()
	s.node = raft.RestartNode(s.raftConfig())
	for _, m := range remote {
		if m.ID != s.id {
			s.transport.AddPeer(m.ID, m.PeerURLs)
		}
	}
	s.lg.Info("joining an existing cluster", zap.String("local-member-id", config.IDString(s.id)), zap.String("cluster-id", config.IDString(cid)))
	return nil
}

// restart resumes a member from its WAL and snapshot; --initial-cluster*
// flags are ignored, as etcd does.
func (s *Server) restart() error {
	if s.cfg.UsesDiscovery() {
		s.lg.Warn(fmt.Sprintf("discovery token ignored since a cluster has already been initialized. Valid log found at %s", s.cfg.DataDir))
	}
	r, err := wal.LoadRaftStorage(s.cfg.WALPath(), s.cfg.SnapPath(), s.walOptions())
	if err != nil {
		return err
	}
	s.wal, s.storage = r.WAL, r.Storage
	if r.Repair != nil {
		s.lg.Warn("repaired a torn write at the end of the WAL", zap.String("detail", r.Repair.String()))
	}
	var meta walMetadata
	if err := json.Unmarshal(r.Metadata, &meta); err != nil || meta.NodeID == 0 {
		return fmt.Errorf("WAL in %s has unreadable metadata; the data dir is damaged", s.cfg.WALPath())
	}
	s.id = meta.NodeID
	s.clusterID.Store(meta.ClusterID)
	if snapshot := r.Snapshot; snapshot != nil {
		md := snapshot.GetMetadata()
		if err := s.installPendingSnapshotDB(md.GetIndex()); err != nil {
			return err
		}
		if err := s.cluster.restoreSnapshot(snapshot.GetData()); err != nil {
			return err
		}
		s.snapIndex = md.GetIndex()
		s.confState = md.GetConfState()
		s.appliedIndex.Store(s.snapIndex)
		s.appliedTerm = md.GetTerm()
	}
	if err := s.openBackend(); err != nil {
		return err
	}
	s.newTransport()
	s.node = raft.RestartNode(s.raftConfig())
	for _, m := range s.cluster.list() {
		if m.ID != s.id {
			s.transport.AddPeer(m.ID, m.PeerURLs)
		}
	}
	ci, _ := s.backend.ConsistentIndex()
	s.lg.Info("restarting member", zap.String("local-member-id", config.IDString(s.id)),
		zap.String("cluster-id", config.IDString(meta.ClusterID)), zap.Uint64("commit-index", r.HardState.GetCommit()),
		zap.Uint64("consistent-index", ci), zap.Uint64("snapshot-index", s.snapIndex))
	return nil
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x := map[string]bool{}
	for _, s := range a {
		x[s] = true
	}
	for _, s := range b {
		if !x[s] {
			return false
		}
	}
	return true
}

// Start runs the raft loop and publishes the member's name and client URLs
// through raft; Ready is closed once that is committed.
func (s *Server) Start() {
	go s.advanceElectionTicks()
	go s.run()
	go s.reads.run()
	go s.watches.Run(s.stopc)
	go s.expireLeases()
	go s.publish()
}

// advanceElectionTicks brings the first election of a brand-new cluster
// forward (etcd's --initial-election-tick-advance): raft waits a random 1-2
// election timeouts before its first campaign, but in a cluster that has
// never had a leader there is nobody to disrupt. As in etcd, the ticks are
// advanced only once enough peers are connected for a campaign to win (a
// quorum); a member whose peers are not up yet keeps the normal timeout, so
// an early campaign does not fail and push the election further out.
// Restarted and joining members never advance: they must hear from the
// current leader first.
func (s *Server) advanceElectionTicks() {
	if !s.cfg.InitialElectionTickAdvance || !s.fresh {
		return
	}
	tick := time.Duration(s.cfg.HeartbeatMs) * time.Millisecond
	ticks := int(s.cfg.ElectionMs / s.cfg.HeartbeatMs)
	need := len(s.bootstrapPeers)/2 + 1 - 1 // a quorum of all members, less this one
	start := time.Now()
	poll := time.NewTicker(tick / 10)
	defer poll.Stop()
	for s.activePeers() < need {
		if time.Since(start) >= time.Duration(s.cfg.ElectionMs)*time.Millisecond {
			return
		}
		select {
		case <-poll.C:
		case <-s.stopc:
			return
		}
	}
	advance := ticks - 1 - int(time.Since(start)/tick)
	for i := 0; i < advance; i++ {
		s.node.Tick()
	}
	s.lg.Info("advanced ticks of a new cluster's first election", zap.Int("ticks", advance))
}

// activePeers counts the bootstrap peers the transport is connected to.
func (s *Server) activePeers() int {
	n := 0
	for _, id := range s.bootstrapPeers {
		if id != s.id && !s.transport.ActiveSince(id).IsZero() {
			n++
		}
	}
	return n
}

// Ready is closed once the member has published itself and may serve clients.
func (s *Server) Ready() <-chan struct{} { return s.readyc }

// Removed is closed when the cluster removed this member.
func (s *Server) Removed() <-chan struct{} { return s.removedc }

// Done is closed once the raft loop has stopped.
func (s *Server) Done() <-chan struct{} { return s.donec }

// PeerHandler serves the peer port.
func (s *Server) PeerHandler() http.Handler { return s.transport.Handler() }

// ID is the local member ID.
func (s *Server) ID() uint64 { return s.id }

// ClusterID is the cluster's ID.
func (s *Server) ClusterID() uint64 { return s.clusterID.Load() }

// Leader is the current leader's ID, 0 when there is none.
func (s *Server) Leader() uint64 { return s.lead.Load() }

// Term is the current raft term.
func (s *Server) Term() uint64 { return s.term.Load() }

// Metrics is the member's Prometheus registry.
func (s *Server) Metrics() *Metrics { return s.metrics }

func (s *Server) publish() {
	attr := &Member{ID: s.id, Name: s.cfg.Name, ClientURLs: config.URLStrings(s.cfg.AdvertiseClientURLs)}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), s.requestTimeout())
		err := s.proposeMemberAttr(ctx, attr)
		cancel()
		if err == nil {
			s.lg.Info("published local member to cluster through raft", zap.String("local-member-id", config.IDString(s.id)),
				zap.String("local-member-name", s.cfg.Name), zap.Strings("local-member-client-urls", attr.ClientURLs),
				zap.String("cluster-id", config.IDString(s.ClusterID())))
			close(s.readyc)
			return
		}
		select {
		case <-s.stopc:
			return
		default:
		}
		s.lg.Warn("failed to publish local member to cluster through raft; retrying", zap.Error(err))
	}
}

func (s *Server) requestTimeout() time.Duration {
	return 5*time.Second + 2*time.Duration(s.cfg.ElectionMs)*time.Millisecond
}

// fatal reports an unrecoverable condition once.
func (s *Server) fatal(msg string) {
	s.fatalOnce.Do(func() { s.opt.Fatal(msg) })
}

func (s *Server) signalRemoved() {
	select {
	case <-s.removedc:
	default:
		close(s.removedc)
	}
}

// Stop ends the member gracefully: it stops taking new work, finishes the
// entry being applied, and closes the WAL and the backend.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		close(s.stopc)
		<-s.donec
		s.transport.Stop()
		s.node.Stop()
		s.leaseClient.CloseIdleConnections()
		s.closeStorage()
	})
}

func (s *Server) closeStorage() {
	if s.wal != nil {
		if err := s.wal.Close(); err != nil {
			s.lg.Warn("closing the WAL", zap.Error(err))
		}
	}
	s.kvMu.Lock()
	defer s.kvMu.Unlock()
	if s.backend != nil {
		if err := s.backend.Close(); err != nil {
			s.lg.Warn("closing the backend", zap.Error(err))
		}
		s.backend = nil
	}
}
