package server

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"etcdctl-wizard/node/auth"
	"etcdctl-wizard/node/backend"
	"etcdctl-wizard/node/mvcc"
)

// headerInfo is who proposed a request: the user and auth revision the
// proposing member put in the raft request header.
func headerInfo(req *pb.InternalRaftRequest) auth.Info {
	return auth.Info{Username: req.GetHeader().GetUsername(), Revision: req.GetHeader().GetAuthRevision()}
}

// needsAdmin lists etcd's requests that only root may make.
func needsAdmin(req *pb.InternalRaftRequest) bool {
	return req.AuthEnable != nil || req.AuthDisable != nil || req.AuthUserAdd != nil || req.AuthUserDelete != nil ||
		req.AuthUserChangePassword != nil || req.AuthUserGrantRole != nil || req.AuthUserRevokeRole != nil ||
		req.AuthRoleAdd != nil || req.AuthRoleGrantPermission != nil || req.AuthRoleRevokePermission != nil ||
		req.AuthRoleDelete != nil || req.AuthUserList != nil || req.AuthRoleList != nil
}

// checkApplyAuth is etcd's authApplierV3: every member checks a request
// against its auth state when it applies it, so all members agree, and a
// permission revoked after the proposal refuses the request.
func (s *Server) checkApplyAuth(req *pb.InternalRaftRequest) error {
	if !s.auth.Enabled() {
		return nil
	}
	ai := headerInfo(req)
	switch {
	case req.Put != nil:
		return s.auth.CheckPut(ai, req.Put, s.leaseKeys)
	case req.DeleteRange != nil:
		return s.auth.CheckDeleteRange(ai, req.DeleteRange)
	case req.Txn != nil:
		return s.auth.CheckTxn(ai, req.Txn, s.leaseKeys)
	case req.LeaseRevoke != nil:
		return s.auth.CheckLeaseKeys(ai, s.leaseKeys(req.LeaseRevoke.GetID()))
	case needsAdmin(req):
		return s.auth.IsAdminPermitted(ai)
	case req.AuthUserGet != nil:
		// A user may read itself.
		if err := s.auth.IsAdminPermitted(ai); err != nil && req.AuthUserGet.GetName() != ai.Username {
			return err
		}
	case req.AuthRoleGet != nil:
		// A user may read a role it has.
		if err := s.auth.IsAdminPermitted(ai); err != nil && !s.auth.HasRole(ai.Username, req.AuthRoleGet.GetRole()) {
			return err
		}
	}
	return nil
}

// isAuthRequest reports whether req is one of the Auth service's.
func isAuthRequest(req *pb.InternalRaftRequest) bool {
	return needsAdmin(req) || req.Authenticate != nil || req.AuthStatus != nil || req.AuthUserGet != nil || req.AuthRoleGet != nil
}

// applyAuth applies an Auth service request in the backend batch of its
// entry. A replayed entry (already in the backend) changes nothing: the
// store was loaded from that backend.
func (s *Server) applyAuth(idx mvcc.Index, kv *mvcc.Store, req *pb.InternalRaftRequest) applyResult {
	var resp proto.Message
	var refused error
	_, err := kv.Update(idx, func(tx *backend.WriteTx) error {
		var err error
		resp, err = s.applyAuthTx(idx, tx, req)
		if auth.IsAuthError(err) {
			refused = err // an answer: nothing was written
			return nil
		}
		return err
	})
	if err != nil {
		return applyResult{err: err}
	}
	if refused != nil {
		return applyResult{err: refused}
	}
	if resp == nil {
		// Replayed: nobody waits for the answer.
		return applyResult{}
	}
	setHeader(resp, &pb.ResponseHeader{Revision: kv.Rev()})
	return applyResult{resp: resp}
}

// setHeader sets the header field every Auth response has.
func setHeader(m proto.Message, h *pb.ResponseHeader) {
	r := m.ProtoReflect()
	if f := r.Descriptor().Fields().ByName("header"); f != nil {
		r.Set(f, protoreflect.ValueOfMessage(h.ProtoReflect()))
	}
}

func (s *Server) applyAuthTx(idx mvcc.Index, tx *backend.WriteTx, req *pb.InternalRaftRequest) (proto.Message, error) {
	a := s.auth
	switch {
	case req.Authenticate != nil:
		token, err := a.Authenticate(req.Authenticate.GetName(), req.Authenticate.GetSimpleToken(), idx.Index)
		return &pb.AuthenticateResponse{Token: token}, err
	case req.AuthEnable != nil:
		err := a.Enable(tx)
		if err == nil {
			s.lg.Info("enabled authentication")
		}
		return &pb.AuthEnableResponse{}, err
	case req.AuthDisable != nil:
		err := a.Disable(tx)
		if err == nil {
			s.lg.Info("disabled authentication")
		}
		return &pb.AuthDisableResponse{}, err
	case req.AuthStatus != nil:
		return &pb.AuthStatusResponse{Enabled: a.Enabled(), AuthRevision: a.Revision()}, nil
	case req.AuthUserAdd != nil:
		return &pb.AuthUserAddResponse{}, a.UserAdd(tx, req.AuthUserAdd)
	case req.AuthUserDelete != nil:
		return &pb.AuthUserDeleteResponse{}, a.UserDelete(tx, req.AuthUserDelete.GetName())
	case req.AuthUserChangePassword != nil:
		return &pb.AuthUserChangePasswordResponse{}, a.UserChangePassword(tx, req.AuthUserChangePassword)
	case req.AuthUserGrantRole != nil:
		return &pb.AuthUserGrantRoleResponse{}, a.UserGrantRole(tx, req.AuthUserGrantRole.GetUser(), req.AuthUserGrantRole.GetRole())
	case req.AuthUserRevokeRole != nil:
		return &pb.AuthUserRevokeRoleResponse{}, a.UserRevokeRole(tx, req.AuthUserRevokeRole.GetName(), req.AuthUserRevokeRole.GetRole())
	case req.AuthUserGet != nil:
		roles, err := a.UserGet(req.AuthUserGet.GetName())
		return &pb.AuthUserGetResponse{Roles: roles}, err
	case req.AuthUserList != nil:
		return &pb.AuthUserListResponse{Users: a.UserList()}, nil
	case req.AuthRoleAdd != nil:
		return &pb.AuthRoleAddResponse{}, a.RoleAdd(tx, req.AuthRoleAdd.GetName())
	case req.AuthRoleDelete != nil:
		return &pb.AuthRoleDeleteResponse{}, a.RoleDelete(tx, req.AuthRoleDelete.GetRole())
	case req.AuthRoleGrantPermission != nil:
		return &pb.AuthRoleGrantPermissionResponse{}, a.RoleGrantPermission(tx, req.AuthRoleGrantPermission.GetName(), req.AuthRoleGrantPermission.GetPerm())
	case req.AuthRoleRevokePermission != nil:
		r := req.AuthRoleRevokePermission
		return &pb.AuthRoleRevokePermissionResponse{}, a.RoleRevokePermission(tx, r.GetRole(), r.GetKey(), r.GetRangeEnd())
	case req.AuthRoleGet != nil:
		perms, err := a.RoleGet(req.AuthRoleGet.GetRole())
		return &pb.AuthRoleGetResponse{Perm: perms}, err
	case req.AuthRoleList != nil:
		return &pb.AuthRoleListResponse{Roles: a.RoleList()}, nil
	}
	return nil, nil
}
