package discovery

import (
	"errors"
	"fmt"
)

// The protocol's errors, with etcd's texts.
var (
	ErrInvalidURL           = errors.New("discovery: invalid URL")
	ErrBadSizeKey           = errors.New("discovery: size key is bad")
	ErrSizeNotFound         = errors.New("discovery: size key not found")
	ErrFullCluster          = errors.New("discovery: cluster is full")
	ErrDuplicateID          = errors.New("discovery: found duplicate id")
	ErrDuplicateName        = errors.New("discovery: found duplicate name")
	ErrBadDiscoveryEndpoint = errors.New("discovery: bad discovery endpoint")
	ErrInvalidPeerURL       = errors.New("discovery: invalid peer URL")
)

// SizeNotFoundError is a discovery URL without its size key: the clustering
// guide's "the cluster doesn't have a size configuration value" (the project
// prints the guide's wording; upstream's type assertion bug hides it).
type SizeNotFoundError struct {
	URL string // the discovery URL (v2) or the token's registry path (v3)
}

func (e *SizeNotFoundError) Error() string {
	return fmt.Sprintf("error: the cluster doesn't have a size configuration value in %s/_config", e.URL)
}

func (e *SizeNotFoundError) Unwrap() error { return ErrSizeNotFound }

// JoinError is a failed discovery: etcd prints it as
// "failed to join discovery cluster (<err>)".
type JoinError struct{ Err error }

func (e *JoinError) Error() string {
	return fmt.Sprintf("failed to join discovery cluster (%v)", e.Err)
}
func (e *JoinError) Unwrap() error { return e.Err }

// Hints are the lines etcd logs after a failed discovery (SPEC-etcd.md
// §3.4), so the operator knows whether to clean the data dir or get a new
// token.
func Hints(err error) []string {
	switch {
	case errors.Is(err, ErrSizeNotFound):
		return []string{"create the size key first, e.g. curl -X PUT <discovery-url>/_config/size -d value=<cluster size>"}
	case errors.Is(err, ErrDuplicateID):
		return []string{
			"member has been registered with discovery service",
			"but could not find valid cluster configuration",
			"check data dir if previous bootstrap succeeded",
			"or use a new discovery token if previous bootstrap failed",
		}
	case errors.Is(err, ErrDuplicateName):
		return []string{
			"member with duplicated name has already been registered",
			"cURL the discovery token URL for details",
			"do not reuse discovery token; generate a new one to bootstrap a cluster",
		}
	}
	return []string{
		"failed to bootstrap; discovery token was already used",
		"do not reuse discovery token; generate a new one to bootstrap a cluster",
	}
}
