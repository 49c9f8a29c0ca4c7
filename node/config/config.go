package config

import (
	"net/url"
	"time"
)

// TLSInfo is one side's (client or peer) TLS configuration.
type TLSInfo struct {
	CertFile           string
	KeyFile            string
	TrustedCAFile      string
	ClientCertAuth     bool
	CRLFile            string
	AutoTLS            bool
	AllowedCN          string // peer only
	AllowedHostname    string
	SkipClientSANCheck bool // peer only
}

// Empty reports whether no certificate material or auto-TLS is configured.
func (t TLSInfo) Empty() bool { return t.CertFile == "" && t.KeyFile == "" && !t.AutoTLS }

// Config is a member's effective configuration: flags, ETCD_* variables or a
// config file, after defaults.
type Config struct {
	Name    string
	DataDir string
	WALDir  string

	ListenPeerURLs           []url.URL
	ListenClientURLs         []url.URL
	ListenClientHTTPURLs     []url.URL
	InitialAdvertisePeerURLs []url.URL
	AdvertiseClientURLs      []url.URL
	ListenMetricsURLs        []url.URL

	InitialCluster      string
	InitialClusterState string // "new" or "existing"
	InitialClusterToken string

	Discovery          string
	DiscoveryProxy     string
	DiscoveryFallback  string
	DiscoverySRV       string
	DiscoverySRVName   string
	DiscoveryEndpoints string
	DiscoveryToken     string
	Discovery3         DiscoveryV3

	HeartbeatMs     uint
	ElectionMs      uint
	SnapshotCount   uint64
	SnapshotCatchUp uint64
	// WatchProgressNotifyInterval is how often watchers that asked for
	// progress notifications get one (etcd: 10 min).
	WatchProgressNotifyInterval time.Duration
	QuotaBackendBytes           int64
	MaxRequestBytes             uint
	MaxTxnOps                   uint
	MaxLearners                 int
	StrictReconfigCheck         bool
	PreVote                     bool
	// InitialElectionTickAdvance fast-forwards the election ticks of a
	// member that bootstraps a new cluster, so the first election takes
	// place within one election timeout instead of up to two.
	InitialElectionTickAdvance bool

	AutoCompactionMode      string
	AutoCompactionRetention string

	ClientTLS              TLSInfo
	PeerTLS                TLSInfo
	CipherSuites           string
	TLSMinVersion          string
	TLSMaxVersion          string
	SelfSignedCertValidity uint

	Proxy string

	// AuthToken is the token type (--auth-token): etcd-node serves "simple".
	AuthToken string
	// BcryptCost hashes passwords (--bcrypt-cost).
	BcryptCost uint
	// AuthTokenTTL is the life of an unused simple token, in seconds.
	AuthTokenTTL uint

	LogLevel    string
	Logger      string
	LogOutputs  string
	EnablePprof bool

	// Explicit holds the flags set on the command line, through an ETCD_*
	// variable or in the config file; etcd's rules depend on it.
	Explicit map[string]bool
}

// DiscoveryV3 holds the client settings of v3 discovery (--discovery-*).
type DiscoveryV3 struct {
	DialTimeout           time.Duration
	RequestTimeout        time.Duration
	KeepAliveTime         time.Duration
	KeepAliveTimeout      time.Duration
	InsecureTransport     bool
	InsecureSkipTLSVerify bool
	CertFile              string
	KeyFile               string
	CAFile                string
	User                  string
	Password              string
}

// IsSet reports whether flag name was given explicitly.
func (c *Config) IsSet(name string) bool { return c.Explicit[name] }

// MemberDir is where the member keeps its WAL, snapshots and database.
func (c *Config) MemberDir() string { return c.DataDir + "/member" }

// WALPath is --wal-dir, or <data-dir>/member/wal.
func (c *Config) WALPath() string {
	if c.WALDir != "" {
		return c.WALDir
	}
	return c.MemberDir() + "/wal"
}

// SnapPath is <data-dir>/member/snap, which also holds the bbolt database.
func (c *Config) SnapPath() string { return c.MemberDir() + "/snap" }

// UsesDiscovery reports whether any discovery mechanism replaces
// --initial-cluster.
func (c *Config) UsesDiscovery() bool {
	return c.Discovery != "" || c.DiscoverySRV != "" || c.DiscoveryEndpoints != ""
}
