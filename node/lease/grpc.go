package lease

import (
	"context"
	"errors"
	"io"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Backend is the member side of the Lease service (node/server): grants and
// revokes through raft, renewals and time-to-live on the leader. Errors of
// this package are mapped to etcd's by the service.
type Backend interface {
	LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error)
	LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error)
	LeaseRenew(ctx context.Context, id int64) (ttl int64, err error)
	LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error)
	LeaseLeases(ctx context.Context) (*pb.LeaseLeasesResponse, error)
}

// ServerOptions configures the Lease service.
type ServerOptions struct {
	// Header fills a response header (cluster, member, revision, term).
	Header func() *pb.ResponseHeader
	// Refuse, when it returns an error, refuses every call (a learner).
	Refuse func() error
	// Leader is the current leader's ID, 0 when there is none: a keep-alive
	// stream opened with clientv3's require-leader metadata ends with "no
	// leader" once the member has had none for a few checks, as in etcd,
	// so that clientv3 tells its keep-alive channels.
	Leader              func() uint64
	LeaderCheckInterval time.Duration // default 1s
}

type grpcServer struct {
	pb.UnimplementedLeaseServer
	b   Backend
	opt ServerOptions
}

// NewServer returns etcd's Lease gRPC service over b.
func NewServer(b Backend, opt ServerOptions) pb.LeaseServer {
	if opt.LeaderCheckInterval <= 0 {
		opt.LeaderCheckInterval = time.Second
	}
	return &grpcServer{b: b, opt: opt}
}

// ToGRPCError maps this package's errors (possibly wrapped) to etcd's gRPC
// errors; others are returned unchanged.
func ToGRPCError(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return rpctypes.ErrGRPCLeaseNotFound
	case errors.Is(err, ErrExists):
		return rpctypes.ErrGRPCLeaseExist
	case errors.Is(err, ErrTTLTooLarge):
		return rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	return err
}

func (g *grpcServer) refuse() error {
	if g.opt.Refuse != nil {
		return g.opt.Refuse()
	}
	return nil
}

func (g *grpcServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	if err := g.refuse(); err != nil {
		return nil, err
	}
	resp, err := g.b.LeaseGrant(ctx, r)
	return resp, ToGRPCError(err)
}

func (g *grpcServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	if err := g.refuse(); err != nil {
		return nil, err
	}
	resp, err := g.b.LeaseRevoke(ctx, r)
	return resp, ToGRPCError(err)
}

// LeaseTimeToLive answers TTL -1 for a lease that does not exist, as etcd
// does (etcdctl prints "already expired").
func (g *grpcServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	if err := g.refuse(); err != nil {
		return nil, err
	}
	resp, err := g.b.LeaseTimeToLive(ctx, r)
	if errors.Is(err, ErrNotFound) {
		return &pb.LeaseTimeToLiveResponse{Header: g.opt.Header(), ID: r.ID, TTL: -1}, nil
	}
	return resp, ToGRPCError(err)
}

func (g *grpcServer) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	if err := g.refuse(); err != nil {
		return nil, err
	}
	resp, err := g.b.LeaseLeases(ctx)
	return resp, ToGRPCError(err)
}

// LeaseKeepAlive renews each lease the client names, in order, and answers
// with its TTL; an unknown or revoked lease is answered TTL 0, which clientv3
// reads as "expired". Any other failure ends the stream with its error; the
// client opens a new one.
func (g *grpcServer) LeaseKeepAlive(stream grpc.BidiStreamingServer[pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse]) error {
	if err := g.refuse(); err != nil {
		return err
	}
	ctx := stream.Context()
	needLeader := requiresLeader(ctx) && g.opt.Leader != nil
	if needLeader && g.opt.Leader() == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	errc := make(chan error, 1)
	go func() { errc <- g.keepAlive(stream) }()
	var check <-chan time.Time
	if needLeader {
		t := time.NewTicker(g.opt.LeaderCheckInterval)
		defer t.Stop()
		check = t.C
	}
	noLeader := 0
	for {
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-check:
			if g.opt.Leader() != 0 {
				noLeader = 0
			} else if noLeader++; noLeader >= maxNoLeaderChecks {
				return rpctypes.ErrGRPCNoLeader
			}
		}
	}
}

// maxNoLeaderChecks is how many leader checks in a row must find none before
// a require-leader stream ends (an election usually takes one).
const maxNoLeaderChecks = 3

func (g *grpcServer) keepAlive(stream grpc.BidiStreamingServer[pb.LeaseKeepAliveRequest, pb.LeaseKeepAliveResponse]) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		// The header is taken before the renew, as in etcd: its revision must
		// not be later than a revoke that the renew could still race with.
		resp := &pb.LeaseKeepAliveResponse{ID: req.ID, Header: g.opt.Header()}
		ttl, err := g.b.LeaseRenew(stream.Context(), req.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			ttl = 0
		case err != nil:
			return ToGRPCError(err)
		}
		resp.TTL = ttl
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

func requiresLeader(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return false
	}
	v := md.Get(rpctypes.MetadataRequireLeaderKey)
	return len(v) > 0 && v[0] == rpctypes.MetadataHasLeader
}
