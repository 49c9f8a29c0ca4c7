package api

import (
	"context"
	"io"
	"math"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"etcdctl-wizard/node/lease"
	"etcdctl-wizard/node/server"
	"etcdctl-wizard/node/watch"
)

// Options are the client API's limits and periods from etcd's flags.
type Options struct {
	// MaxRequestBytes is --max-request-bytes.
	MaxRequestBytes int
	// WatchProgressNotifyInterval is --watch-progress-notify-interval.
	WatchProgressNotifyInterval time.Duration
}

// NewGRPCServer registers the etcd v3 services of member s.
func NewGRPCServer(s *server.Server, o Options, opts ...grpc.ServerOption) *grpc.Server {
	maxRequestBytes := o.MaxRequestBytes
	opts = append(opts,
		grpc.MaxRecvMsgSize(maxRequestBytes+512*1024),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		grpc.ChainUnaryInterceptor(requireLeader(s), unaryToken),
		grpc.ChainStreamInterceptor(streamToken),
	)
	g := grpc.NewServer(opts...)
	pb.RegisterKVServer(g, &kvServer{s: s})
	pb.RegisterClusterServer(g, &clusterServer{s: s})
	pb.RegisterMaintenanceServer(g, &maintenanceServer{s: s})
	pb.RegisterWatchServer(g, watch.NewServer(s.Watches(), watch.ServerOptions{
		Header: func(rev int64) *pb.ResponseHeader { return s.Header(&pb.ResponseHeader{Revision: rev}) },
		Refuse: func() error {
			if s.IsLearner() {
				return rpctypes.ErrGRPCNotSupportedForLearner
			}
			return nil
		},
		Leader:           s.Leader,
		MaxRequestBytes:  maxRequestBytes,
		ProgressInterval: o.WatchProgressNotifyInterval,
		Permit:           s.WatchPermitted,
	}))
	pb.RegisterLeaseServer(g, lease.NewServer(s, lease.ServerOptions{
		Header: func() *pb.ResponseHeader { return s.Header(nil) },
		Refuse: func() error {
			if s.IsLearner() {
				return rpctypes.ErrGRPCNotSupportedForLearner
			}
			return nil
		},
		Leader: s.Leader,
	}))
	pb.RegisterAuthServer(g, &authServer{s: s})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	return g
}

// requireLeader answers "no leader" at once to clients that ask for one
// with the hasleader metadata, as etcd's interceptor does.
func requireLeader(s *server.Server) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(rpctypes.MetadataRequireLeaderKey); len(v) > 0 && v[0] == rpctypes.MetadataHasLeader && s.Leader() == 0 {
				return nil, rpctypes.ErrGRPCNoLeader
			}
		}
		return handler(ctx, req)
	}
}

type kvServer struct {
	pb.UnimplementedKVServer
	s *server.Server
}

func (k *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	if len(r.GetKey()) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	return k.s.Range(ctx, r)
}

func (k *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	if len(r.GetKey()) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	if r.GetIgnoreValue() && len(r.GetValue()) != 0 {
		return nil, rpctypes.ErrGRPCValueProvided
	}
	return k.s.Put(ctx, r)
}

func (k *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	if len(r.GetKey()) == 0 {
		return nil, rpctypes.ErrGRPCEmptyKey
	}
	return k.s.DeleteRange(ctx, r)
}

func (k *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	return k.s.Txn(ctx, r)
}

func (k *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	if err := k.s.CheckAdmin(ctx); err != nil {
		return nil, err
	}
	return k.s.Compact(ctx, r)
}

type clusterServer struct {
	pb.UnimplementedClusterServer
	s *server.Server
}

func toPB(ms []*server.Member) []*pb.Member {
	out := make([]*pb.Member, len(ms))
	for i, m := range ms {
		out[i] = &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
	}
	return out
}

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	ms, err := c.s.MemberList(ctx, r.GetLinearizable())
	if err != nil {
		return nil, err
	}
	if err := c.s.RequireAuth(ctx); err != nil {
		return nil, err
	}
	return &pb.MemberListResponse{Header: c.s.Header(nil), Members: toPB(ms)}, nil
}

func (c *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	if err := c.s.CheckAdmin(ctx); err != nil {
		return nil, err
	}
	m, err := c.s.MemberAdd(ctx, r.GetPeerURLs(), r.GetIsLearner())
	if err != nil {
		return nil, err
	}
	return &pb.MemberAddResponse{Header: c.s.Header(nil), Member: toPB([]*server.Member{m})[0], Members: toPB(c.s.Members())}, nil
}

func (c *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	if err := c.s.CheckAdmin(ctx); err != nil {
		return nil, err
	}
	if err := c.s.MemberRemove(ctx, r.GetID()); err != nil {
		return nil, err
	}
	return &pb.MemberRemoveResponse{Header: c.s.Header(nil), Members: toPB(c.s.Members())}, nil
}

func (c *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	if err := c.s.CheckAdmin(ctx); err != nil {
		return nil, err
	}
	if err := c.s.MemberUpdate(ctx, r.GetID(), r.GetPeerURLs()); err != nil {
		return nil, err
	}
	return &pb.MemberUpdateResponse{Header: c.s.Header(nil), Members: toPB(c.s.Members())}, nil
}

func (c *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	if err := c.s.CheckAdmin(ctx); err != nil {
		return nil, err
	}
	if err := c.s.MemberPromote(ctx, r.GetID()); err != nil {
		return nil, err
	}
	return &pb.MemberPromoteResponse{Header: c.s.Header(nil), Members: toPB(c.s.Members())}, nil
}

type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	s *server.Server
}

func (m *maintenanceServer) Status(ctx context.Context, _ *pb.StatusRequest) (*pb.StatusResponse, error) {
	if err := m.s.RequireAuth(ctx); err != nil {
		return nil, err
	}
	return m.s.Status(), nil
}

// Alarm answers GET with no alarms: etcd-node raises none yet (no quota
// enforcement, no corruption check), and refuses to pretend otherwise on
// activate/deactivate.
func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	// etcd: anyone authenticated may list alarms, only root change them.
	check := m.s.CheckAdmin
	if r.GetAction() == pb.AlarmRequest_GET {
		check = m.s.RequireAuth
	}
	if err := check(ctx); err != nil {
		return nil, err
	}
	if r.GetAction() != pb.AlarmRequest_GET {
		return nil, rpctypes.ErrGRPCNotCapable
	}
	return &pb.AlarmResponse{Header: m.s.Header(nil)}, nil
}

// MoveLeader hands leadership to another voting member (etcdctl
// move-leader, and the wizard before it removes the leader).
func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := m.s.CheckAdmin(ctx); err != nil {
		return nil, err
	}
	if err := m.s.MoveLeader(ctx, r.GetTargetID()); err != nil {
		return nil, err
	}
	return &pb.MoveLeaderResponse{Header: m.s.Header(nil)}, nil
}

// Snapshot streams a consistent copy of the database, for
// `etcdctl snapshot save`.
func (m *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, stream grpc.ServerStreamingServer[pb.SnapshotResponse]) error {
	if err := m.s.CheckAdmin(stream.Context()); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := m.s.WriteSnapshot(pw)
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	buf := make([]byte, 32*1024)
	header := m.s.Header(nil)
	first := true
	for {
		n, err := io.ReadFull(pr, buf)
		if n > 0 {
			resp := &pb.SnapshotResponse{Blob: append([]byte(nil), buf[:n]...), Version: "3.7.0"}
			if first {
				resp.Header = header
				first = false
			}
			if serr := stream.Send(resp); serr != nil {
				return serr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
