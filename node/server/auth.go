package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"etcdctl-wizard/node/auth"
)

// Authentication, as etcd serves it (etcdserver/v3_server.go): the API
// layer puts the client's token in the request context (WithToken); the
// member resolves it to a user and the current auth revision, checks reads
// at once, and carries the user and revision in the raft request header so
// that every member checks writes again when it applies them, against the
// auth state of that moment (a permission revoked in between refuses the
// write with "revision of auth store is old").

func (s *Server) newAuthStore() {
	s.auth = auth.New(auth.Config{BcryptCost: int(s.cfg.BcryptCost), TokenTTL: time.Duration(s.cfg.AuthTokenTTL) * time.Second})
}

type tokenKey struct{}

type internalKey struct{}

// WithToken attaches the token a client sent (gRPC metadata "token") to ctx.
func WithToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, tokenKey{}, token)
}

// AsInternal marks ctx as a request of the member itself (the v2 discovery
// subset, health checks): it runs with root's rights, as etcd's WithRoot.
func AsInternal(ctx context.Context) context.Context {
	return context.WithValue(ctx, internalKey{}, true)
}

// authInfo resolves the request's token: nil without auth or without a
// token; etcd's "invalid auth token" for a token this member does not know
// (never issued, expired, its user changed). A token names the raft index
// of its Authenticate entry: a member that has not applied it yet waits
// for it (the client may have got the token from another member).
func (s *Server) authInfo(ctx context.Context) (*auth.Info, error) {
	if !s.auth.Enabled() {
		return nil, nil
	}
	if ctx.Value(internalKey{}) != nil {
		return &auth.Info{Username: "root", Revision: s.auth.Revision()}, nil
	}
	token, _ := ctx.Value(tokenKey{}).(string)
	if token == "" {
		return nil, nil
	}
	idx, ok := auth.TokenIndex(token)
	// An index far beyond what this member knows is committed is forged:
	// refused at once rather than waited for.
	if !ok || idx > s.committed.Load()+maxGapBetweenApplyAndCommit {
		return nil, auth.ErrInvalidAuthToken
	}
	if idx > s.appliedIndex.Load() {
		timer := time.NewTimer(s.requestTimeout())
		defer timer.Stop()
		select {
		case <-s.applyWait.wait(idx):
		case <-timer.C:
			return nil, auth.ErrInvalidAuthToken
		case <-ctx.Done():
			return nil, toGRPC(ctx.Err())
		case <-s.stopc:
			return nil, rpctypes.ErrGRPCStopped
		}
	}
	user, ok := s.auth.TokenUser(token)
	if !ok {
		return nil, auth.ErrInvalidAuthToken
	}
	return &auth.Info{Username: user, Revision: s.auth.Revision()}, nil
}

// infoOrEmpty is authInfo with the zero Info for no token.
func (s *Server) infoOrEmpty(ctx context.Context) (auth.Info, error) {
	ai, err := s.authInfo(ctx)
	if err != nil || ai == nil {
		return auth.Info{}, err
	}
	return *ai, nil
}

// RequireAuth refuses a request without a valid token while auth is
// enabled (etcd's requireAuthInfo: Status, MemberList, lease calls).
func (s *Server) RequireAuth(ctx context.Context) error {
	ai, err := s.authInfo(ctx)
	if err != nil {
		return auth.ToGRPCError(err)
	}
	if ai == nil && s.auth.Enabled() {
		return rpctypes.ErrGRPCUserEmpty
	}
	return nil
}

// CheckAdmin refuses a request from a user without the root role while
// auth is enabled (etcd's isPermitted: compaction, membership changes,
// snapshot, move-leader, alarm changes, defragment).
func (s *Server) CheckAdmin(ctx context.Context) error {
	ai, err := s.infoOrEmpty(ctx)
	if err != nil {
		return auth.ToGRPCError(err)
	}
	return auth.ToGRPCError(s.auth.IsAdminPermitted(ai))
}

// WatchPermitted checks read permission on a watch's range; the error is
// the one whose text etcd puts in the refused watch's cancel reason.
func (s *Server) WatchPermitted(ctx context.Context, key, end []byte) error {
	ai, err := s.infoOrEmpty(ctx)
	if err == nil {
		err = s.auth.IsRangePermitted(ai, key, end)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, auth.ErrInvalidAuthToken), errors.Is(err, auth.ErrAuthOldRevision), errors.Is(err, auth.ErrUserEmpty):
		return auth.ToGRPCError(err)
	}
	return rpctypes.ErrGRPCPermissionDenied
}

// leaseKeys lists a lease's keys for the permission checks (none for an
// unknown lease: its own request fails later with "lease not found").
func (s *Server) leaseKeys(id int64) [][]byte {
	keys, _ := s.lessor.Keys(id)
	return keys
}

// checkLeaseRenew is etcd's: the keys of a lease kept alive must be
// writable by the user.
func (s *Server) checkLeaseRenew(ctx context.Context, id int64) error {
	if !s.auth.Enabled() {
		return nil
	}
	ai, err := s.authInfo(ctx)
	if err != nil {
		return auth.ToGRPCError(err)
	}
	if ai == nil {
		return rpctypes.ErrGRPCUserEmpty
	}
	return auth.ToGRPCError(s.auth.CheckLeaseKeys(*ai, s.leaseKeys(id)))
}

// checkLeasesReadable is etcd's check of time-to-live with keys and of the
// lease list: every key shown must be readable.
func (s *Server) checkLeasesReadable(ctx context.Context, ids ...int64) error {
	if !s.auth.Enabled() {
		return nil
	}
	ai, err := s.authInfo(ctx)
	if err != nil {
		return auth.ToGRPCError(err)
	}
	if ai == nil {
		return rpctypes.ErrGRPCUserEmpty
	}
	for _, id := range ids {
		if err := s.auth.CheckLeaseKeysReadable(*ai, s.leaseKeys(id)); err != nil {
			return auth.ToGRPCError(err)
		}
	}
	return nil
}

// Authenticate checks a password here, then proposes the token's random
// prefix (never the password) so that every member registers the token at
// the entry's index. A user or password change between the check and the
// apply makes it try again, as etcd does.
func (s *Server) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	if err := s.reads.wait(ctx); err != nil {
		return nil, toGRPC(err)
	}
	for {
		rev, err := s.auth.CheckPassword(r.GetName(), r.GetPassword())
		if err != nil {
			if !errors.Is(err, auth.ErrAuthNotEnabled) {
				s.lg.Warn("invalid authentication was requested", zap.String("user", r.GetName()), zap.Error(err))
			}
			return nil, auth.ToGRPCError(err)
		}
		prefix, err := auth.NewTokenPrefix()
		if err != nil {
			return nil, err
		}
		m, err := s.AuthRequest(ctx, &pb.InternalRaftRequest{Authenticate: &pb.InternalAuthenticateRequest{Name: r.GetName(), SimpleToken: prefix}})
		if err != nil {
			return nil, err
		}
		if rev == s.auth.Revision() {
			resp, ok := m.(*pb.AuthenticateResponse)
			if !ok {
				return nil, status.Error(codes.Internal, "etcd-node: unexpected authenticate result")
			}
			return resp, nil
		}
	}
}

// UserAdd hashes the password on this member, so the raft entry carries
// only the hash, then adds the user through raft.
func (s *Server) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (proto.Message, error) {
	if !r.GetOptions().GetNoPassword() {
		h, err := s.auth.HashPassword(r.GetPassword())
		if err != nil {
			return nil, err
		}
		r.HashedPassword, r.Password = h, ""
	}
	return s.AuthRequest(ctx, &pb.InternalRaftRequest{AuthUserAdd: r})
}

// UserChangePassword hashes the new password here, like UserAdd.
func (s *Server) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (proto.Message, error) {
	h, err := s.auth.HashPassword(r.GetPassword())
	if err != nil {
		return nil, err
	}
	r.HashedPassword, r.Password = h, ""
	return s.AuthRequest(ctx, &pb.InternalRaftRequest{AuthUserChangePassword: r})
}

// AuthRequest runs an Auth service request through raft, as etcd does for
// all of them (reads too: they are then linearizable, and checked at apply
// against the user in the header), and fills the response header.
func (s *Server) AuthRequest(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error) {
	m, err := s.propose(ctx, r)
	if err != nil {
		return nil, err
	}
	h, ok := m.(interface{ GetHeader() *pb.ResponseHeader })
	if !ok || h.GetHeader() == nil {
		return nil, status.Error(codes.Internal, fmt.Sprintf("etcd-node: unexpected auth result %T", m))
	}
	s.Header(h.GetHeader())
	return m, nil
}
