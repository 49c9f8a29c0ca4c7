package auth

import (
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors of the auth store. Their texts are etcd's (server/auth); ToGRPCError
// maps them to the rpctypes errors that clientv3 and etcdctl recognise.
var (
	ErrRootUserNotExist     = errors.New("auth: root user does not exist")
	ErrRootRoleNotExist     = errors.New("auth: root user does not have root role")
	ErrUserAlreadyExist     = errors.New("auth: user already exists")
	ErrUserEmpty            = errors.New("auth: user name is empty")
	ErrUserNotFound         = errors.New("auth: user not found")
	ErrRoleAlreadyExist     = errors.New("auth: role already exists")
	ErrRoleNotFound         = errors.New("auth: role not found")
	ErrRoleEmpty            = errors.New("auth: role name is empty")
	ErrPermissionNotGiven   = errors.New("auth: permission not given")
	ErrAuthFailed           = errors.New("auth: authentication failed, invalid user ID or password")
	ErrNoPasswordUser       = errors.New("auth: authentication failed, password was given for no password user")
	ErrPermissionDenied     = errors.New("auth: permission denied")
	ErrRoleNotGranted       = errors.New("auth: role is not granted to the user")
	ErrPermissionNotGranted = errors.New("auth: permission is not granted to the role")
	ErrAuthNotEnabled       = errors.New("auth: authentication is not enabled")
	ErrAuthOldRevision      = errors.New("auth: revision in header is old")
	ErrInvalidAuthToken     = errors.New("auth: invalid auth token")
	ErrInvalidAuthMgmt      = errors.New("auth: invalid auth management")
)

var grpcErrors = []struct{ err, grpc error }{
	{ErrRootUserNotExist, rpctypes.ErrGRPCRootUserNotExist},
	{ErrRootRoleNotExist, rpctypes.ErrGRPCRootRoleNotExist},
	{ErrUserAlreadyExist, rpctypes.ErrGRPCUserAlreadyExist},
	{ErrUserEmpty, rpctypes.ErrGRPCUserEmpty},
	{ErrUserNotFound, rpctypes.ErrGRPCUserNotFound},
	{ErrRoleAlreadyExist, rpctypes.ErrGRPCRoleAlreadyExist},
	{ErrRoleNotFound, rpctypes.ErrGRPCRoleNotFound},
	{ErrRoleEmpty, rpctypes.ErrGRPCRoleEmpty},
	{ErrAuthFailed, rpctypes.ErrGRPCAuthFailed},
	{ErrPermissionNotGiven, rpctypes.ErrGRPCPermissionNotGiven},
	{ErrPermissionDenied, rpctypes.ErrGRPCPermissionDenied},
	{ErrRoleNotGranted, rpctypes.ErrGRPCRoleNotGranted},
	{ErrPermissionNotGranted, rpctypes.ErrGRPCPermissionNotGranted},
	{ErrAuthNotEnabled, rpctypes.ErrGRPCAuthNotEnabled},
	{ErrInvalidAuthToken, rpctypes.ErrGRPCInvalidAuthToken},
	{ErrInvalidAuthMgmt, rpctypes.ErrGRPCInvalidAuthMgmt},
	{ErrAuthOldRevision, rpctypes.ErrGRPCAuthOldRevision},
}

// ToGRPCError maps an error of this package (possibly wrapped) to etcd's
// gRPC error. ErrNoPasswordUser has no rpctypes counterpart: etcd answers it
// as an unknown error with its own text, and so does this. Other errors,
// and nil, are returned unchanged.
func ToGRPCError(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range grpcErrors {
		if errors.Is(err, m.err) {
			return m.grpc
		}
	}
	if errors.Is(err, ErrNoPasswordUser) {
		return status.Error(codes.Unknown, ErrNoPasswordUser.Error())
	}
	return err
}

// IsAuthError reports whether err is one of this package's errors, i.e. an
// answer to the request rather than a failure of the member.
func IsAuthError(err error) bool {
	for _, m := range grpcErrors {
		if errors.Is(err, m.err) {
			return true
		}
	}
	return errors.Is(err, ErrNoPasswordUser)
}
