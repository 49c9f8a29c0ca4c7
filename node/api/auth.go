package api

import (
	"context"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"etcdctl-wizard/node/server"
)

// tokenFromMetadata reads the token clientv3 sends ("token"), or the
// gRPC gateway's "authorization: Bearer <token>", as etcd does.
func tokenFromMetadata(ctx context.Context) string {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ""
	}
	if v := md.Get(rpctypes.TokenFieldNameGRPC); len(v) > 0 {
		return v[0]
	}
	if v := md.Get(rpctypes.TokenFieldNameSwagger); len(v) > 0 {
		return strings.TrimPrefix(v[0], "Bearer ")
	}
	return ""
}

func withToken(ctx context.Context) context.Context {
	if t := tokenFromMetadata(ctx); t != "" {
		return server.WithToken(ctx, t)
	}
	return ctx
}

// unaryToken and streamToken hand the client's token to the member with
// the request context.
func unaryToken(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(withToken(ctx), req)
}

func streamToken(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &tokenStream{ServerStream: ss, ctx: withToken(ss.Context())})
}

type tokenStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (t *tokenStream) Context() context.Context { return t.ctx }

// authServer is etcd's Auth service: every call goes through the member's
// raft log; who may make it is checked when it is applied.
type authServer struct {
	pb.UnimplementedAuthServer
	s *server.Server
}

// as gives a proposal's result its response type.
func as[T proto.Message](m proto.Message, err error) (T, error) {
	var zero T
	if err != nil {
		return zero, err
	}
	t, ok := m.(T)
	if !ok {
		return zero, status.Errorf(codes.Internal, "etcd-node: unexpected auth result %T", m)
	}
	return t, nil
}

func (a *authServer) req(ctx context.Context, r *pb.InternalRaftRequest) (proto.Message, error) {
	return a.s.AuthRequest(ctx, r)
}

func (a *authServer) Authenticate(ctx context.Context, r *pb.AuthenticateRequest) (*pb.AuthenticateResponse, error) {
	return a.s.Authenticate(ctx, r)
}

func (a *authServer) AuthEnable(ctx context.Context, r *pb.AuthEnableRequest) (*pb.AuthEnableResponse, error) {
	return as[*pb.AuthEnableResponse](a.req(ctx, &pb.InternalRaftRequest{AuthEnable: r}))
}

func (a *authServer) AuthDisable(ctx context.Context, r *pb.AuthDisableRequest) (*pb.AuthDisableResponse, error) {
	return as[*pb.AuthDisableResponse](a.req(ctx, &pb.InternalRaftRequest{AuthDisable: r}))
}

func (a *authServer) AuthStatus(ctx context.Context, r *pb.AuthStatusRequest) (*pb.AuthStatusResponse, error) {
	return as[*pb.AuthStatusResponse](a.req(ctx, &pb.InternalRaftRequest{AuthStatus: r}))
}

func (a *authServer) UserAdd(ctx context.Context, r *pb.AuthUserAddRequest) (*pb.AuthUserAddResponse, error) {
	return as[*pb.AuthUserAddResponse](a.s.UserAdd(ctx, r))
}

func (a *authServer) UserGet(ctx context.Context, r *pb.AuthUserGetRequest) (*pb.AuthUserGetResponse, error) {
	return as[*pb.AuthUserGetResponse](a.req(ctx, &pb.InternalRaftRequest{AuthUserGet: r}))
}

func (a *authServer) UserList(ctx context.Context, r *pb.AuthUserListRequest) (*pb.AuthUserListResponse, error) {
	return as[*pb.AuthUserListResponse](a.req(ctx, &pb.InternalRaftRequest{AuthUserList: r}))
}

func (a *authServer) UserDelete(ctx context.Context, r *pb.AuthUserDeleteRequest) (*pb.AuthUserDeleteResponse, error) {
	return as[*pb.AuthUserDeleteResponse](a.req(ctx, &pb.InternalRaftRequest{AuthUserDelete: r}))
}

func (a *authServer) UserChangePassword(ctx context.Context, r *pb.AuthUserChangePasswordRequest) (*pb.AuthUserChangePasswordResponse, error) {
	return as[*pb.AuthUserChangePasswordResponse](a.s.UserChangePassword(ctx, r))
}

func (a *authServer) UserGrantRole(ctx context.Context, r *pb.AuthUserGrantRoleRequest) (*pb.AuthUserGrantRoleResponse, error) {
	return as[*pb.AuthUserGrantRoleResponse](a.req(ctx, &pb.InternalRaftRequest{AuthUserGrantRole: r}))
}

func (a *authServer) UserRevokeRole(ctx context.Context, r *pb.AuthUserRevokeRoleRequest) (*pb.AuthUserRevokeRoleResponse, error) {
	return as[*pb.AuthUserRevokeRoleResponse](a.req(ctx, &pb.InternalRaftRequest{AuthUserRevokeRole: r}))
}

func (a *authServer) RoleAdd(ctx context.Context, r *pb.AuthRoleAddRequest) (*pb.AuthRoleAddResponse, error) {
	return as[*pb.AuthRoleAddResponse](a.req(ctx, &pb.InternalRaftRequest{AuthRoleAdd: r}))
}

func (a *authServer) RoleGet(ctx context.Context, r *pb.AuthRoleGetRequest) (*pb.AuthRoleGetResponse, error) {
	return as[*pb.AuthRoleGetResponse](a.req(ctx, &pb.InternalRaftRequest{AuthRoleGet: r}))
}

func (a *authServer) RoleList(ctx context.Context, r *pb.AuthRoleListRequest) (*pb.AuthRoleListResponse, error) {
	return as[*pb.AuthRoleListResponse](a.req(ctx, &pb.InternalRaftRequest{AuthRoleList: r}))
}

func (a *authServer) RoleDelete(ctx context.Context, r *pb.AuthRoleDeleteRequest) (*pb.AuthRoleDeleteResponse, error) {
	return as[*pb.AuthRoleDeleteResponse](a.req(ctx, &pb.InternalRaftRequest{AuthRoleDelete: r}))
}

func (a *authServer) RoleGrantPermission(ctx context.Context, r *pb.AuthRoleGrantPermissionRequest) (*pb.AuthRoleGrantPermissionResponse, error) {
	return as[*pb.AuthRoleGrantPermissionResponse](a.req(ctx, &pb.InternalRaftRequest{AuthRoleGrantPermission: r}))
}

func (a *authServer) RoleRevokePermission(ctx context.Context, r *pb.AuthRoleRevokePermissionRequest) (*pb.AuthRoleRevokePermissionResponse, error) {
	return as[*pb.AuthRoleRevokePermissionResponse](a.req(ctx, &pb.InternalRaftRequest{AuthRoleRevokePermission: r}))
}
