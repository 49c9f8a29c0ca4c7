package config

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
)

// Resolver turns "host:port" into "ip:port". etcd-node passes one backed by
// DNS; the wizard's offline validation passes nil, so only literal
// comparisons are made.
type Resolver func(ctx context.Context, hostport string) (string, error)

// Bootstrap is what a new member derives from its static configuration: the
// members, their IDs and the cluster ID. The algorithm is etcd's, so the IDs
// equal upstream's for the same flags.
type Bootstrap struct {
	Members   URLsMap
	Token     string
	IDs       map[string]uint64 // member name -> ID
	LocalID   uint64
	ClusterID uint64
}

// NewBootstrap computes the member and cluster IDs of members with token.
func NewBootstrap(members URLsMap, token, local string) *Bootstrap {
	b := &Bootstrap{Members: members, Token: token, IDs: map[string]uint64{}}
	ids := make([]uint64, 0, len(members))
	for name, urls := range members {
		id := MemberID(URLStrings(urls), token, nil)
		b.IDs[name] = id
		ids = append(ids, id)
	}
	b.LocalID = b.IDs[local]
	b.ClusterID = ClusterID(ids)
	return b
}

// CheckNewCluster runs, in etcd's order, the checks a member makes before it
// bootstraps a new static cluster (SPEC-etcd.md §2.4 items 1-4), with the
// clustering guide's wording for the errors it names. It never opens a
// listener, so a member reports these mistakes even when its TLS settings are
// also wrong.
func CheckNewCluster(ctx context.Context, c *Config, resolve Resolver) (*Bootstrap, error) {
	members, err := ParseURLsMap(c.InitialCluster)
	if err != nil {
		return nil, &CheckError{Code: CodeInitialClusterInvalid, Member: c.Name, Field: "initial-cluster",
			Msg: "error setting up initial cluster: " + err.Error()}
	}
	if len(members) == 0 {
		return nil, &CheckError{Code: CodeInitialClusterUnset, Member: c.Name, Field: "initial-cluster",
			Msg: "initial cluster unset and no discovery URL found"}
	}
	if err := checkLocalMember(c, members); err != nil {
		return nil, err
	}
	if err := checkAdvertiseMatches(ctx, c, members, resolve); err != nil {
		return nil, err
	}
	if err := checkDuplicateURLs(c, members); err != nil {
		return nil, err
	}
	return NewBootstrap(members, c.InitialClusterToken, c.Name), nil
}

// CheckJoinExisting runs the checks of a member joining a running cluster
// (--initial-cluster-state existing, SPEC-etcd.md §2.5 item 1).
func CheckJoinExisting(c *Config) (URLsMap, error) {
	members, err := ParseURLsMap(c.InitialCluster)
	if err != nil {
		return nil, &CheckError{Code: CodeInitialClusterInvalid, Member: c.Name, Field: "initial-cluster",
			Msg: "error setting up initial cluster: " + err.Error()}
	}
	if err := checkLocalMember(c, members); err != nil {
		return nil, err
	}
	if err := checkDuplicateURLs(c, members); err != nil {
		return nil, err
	}
	if c.UsesDiscovery() {
		return nil, &CheckError{Code: CodeJoinWithDiscovery, Member: c.Name, Field: "discovery",
			Msg: "discovery URL should not be set when joining existing initial cluster"}
	}
	return members, nil
}

func checkLocalMember(c *Config, members URLsMap) error {
	if _, ok := members[c.Name]; ok {
		return nil
	}
	return &CheckError{Code: CodeNotInInitialCluster, Member: c.Name, Field: "initial-cluster",
		Msg:    fmt.Sprintf("%s not listed in the initial cluster config", c.Name),
		Detail: fmt.Sprintf("--initial-cluster=%s has no entry named %q", c.InitialCluster, c.Name)}
}

func checkAdvertiseMatches(ctx context.Context, c *Config, members URLsMap, resolve Resolver) error {
	inCluster := URLStrings(members[c.Name])
	advertised := URLStrings(c.InitialAdvertisePeerURLs)
	if urlSetsEqual(ctx, inCluster, advertised, resolve) {
		return nil
	}
	pairs := make([]string, len(inCluster))
	for i, u := range inCluster {
		pairs[i] = c.Name + "=" + u
	}
	return &CheckError{Code: CodeAdvertiseMismatch, Member: c.Name, Field: "initial-advertise-peer-urls",
		Msg: fmt.Sprintf("error setting up initial cluster: %s has different advertised URLs in the cluster and advertised peer URLs list", c.Name),
		Detail: fmt.Sprintf("--initial-cluster has %s but --initial-advertise-peer-urls=%s",
			strings.Join(pairs, ","), strings.Join(advertised, ","))}
}

// urlSetsEqual compares two sorted URL lists like etcd: equal strings, or
// equal after resolving host names (localhost is never resolved).
func urlSetsEqual(ctx context.Context, a, b []string, resolve Resolver) bool {
	if len(a) != len(b) {
		return false
	}
	if strings.Join(a, ",") == strings.Join(b, ",") {
		return true
	}
	if resolve == nil {
		return false
	}
	ra, errA := resolveAll(ctx, a, resolve)
	rb, errB := resolveAll(ctx, b, resolve)
	if errA != nil || errB != nil {
		return false
	}
	return strings.Join(ra, ",") == strings.Join(rb, ",")
}

func resolveAll(ctx context.Context, urls []string, resolve Resolver) ([]string, error) {
	out := make([]string, len(urls))
	for i, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		if host := u.Hostname(); host != "localhost" && net.ParseIP(host) == nil {
			addr, err := resolve(ctx, u.Host)
			if err != nil {
				return nil, err
			}
			u.Host = addr
		}
		out[i] = u.String()
	}
	sort.Strings(out)
	return out, nil
}

func checkDuplicateURLs(c *Config, members URLsMap) error {
	seen := map[string]string{}
	for _, name := range members.Names() {
		for _, u := range members[name] {
			if other, dup := seen[u.String()]; dup {
				return &CheckError{Code: CodeDuplicatePeerURL, Member: c.Name, Field: "initial-cluster",
					Msg:    fmt.Sprintf("initial cluster %s has duplicate url", members.String()),
					Detail: fmt.Sprintf("%s is used by %s and %s", u.String(), other, name)}
			}
			seen[u.String()] = name
		}
	}
	return nil
}

// ConflictingClusterIDMessage is the guide's wording for a member whose
// cluster ID differs from the cluster it reached.
func ConflictingClusterIDMessage(local, remote uint64) string {
	return fmt.Sprintf("conflicting cluster ID to the target cluster (%s != %s). Exiting.", IDString(local), IDString(remote))
}
