package config

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"time"
)

// Defaults of etcd 3.6/3.7 (SPEC-etcd.md §1.2).
const (
	DefaultName                = "default"
	DefaultListenPeerURLs      = "http://localhost:2380"
	DefaultListenClientURLs    = "http://localhost:2379"
	DefaultAdvertisePeerURLs   = "http://localhost:2380"
	DefaultAdvertiseClientURLs = "http://localhost:2379"
	DefaultInitialClusterToken = "etcd-cluster"
	DefaultMaxRequestBytes     = 1572864
)

// urlsValue is a flag.Value for a URL list with etcd's validation.
type urlsValue struct{ target *[]url.URL }

func (v urlsValue) String() string {
	if v.target == nil {
		return ""
	}
	return JoinURLs(*v.target)
}

func (v urlsValue) Set(s string) error {
	urls, err := ParseURLs(s)
	if err != nil {
		return err
	}
	*v.target = urls
	return nil
}

// choiceValue is a flag.Value that accepts one of a fixed set of words.
type choiceValue struct {
	target  *string
	choices []string
}

func (v choiceValue) String() string {
	if v.target == nil {
		return ""
	}
	return *v.target
}

func (v choiceValue) Set(s string) error {
	for _, c := range v.choices {
		if s == c {
			*v.target = s
			return nil
		}
	}
	return fmt.Errorf("valid values are %s", strings.Join(v.choices, ", "))
}

// authTokenValue is --auth-token: "simple", etcd's default. etcd's "jwt,..."
// is refused with a clear error rather than silently served as simple.
type authTokenValue struct{ target *string }

func (v authTokenValue) String() string {
	if v.target == nil {
		return ""
	}
	return *v.target
}

func (v authTokenValue) Set(s string) error {
	switch typ, _, _ := strings.Cut(s, ","); typ {
	case "simple":
		*v.target = s
		return nil
	case "jwt":
		return fmt.Errorf("jwt tokens are not served by etcd-node yet; use simple")
	}
	return fmt.Errorf("unknown token type %q (valid: simple)", s)
}

// legacyValue accepts and ignores the flags etcd keeps only for compatibility.
type legacyValue struct{ isBool bool }

func (legacyValue) String() string     { return "" }
func (legacyValue) Set(string) error   { return nil }
func (v legacyValue) IsBoolFlag() bool { return v.isBool }

// Flag groups, used for help output and by callers that need to know which
// flags belong to features (TLS, discovery) a build may not serve yet.
const (
	GroupMember     = "Member"
	GroupCluster    = "Clustering"
	GroupDiscovery  = "Discovery"
	GroupSecurity   = "Security"
	GroupLogging    = "Logging"
	GroupProxy      = "Proxy"
	GroupUnsafe     = "Legacy"
	GroupMeta       = "Program"
	GroupMonitoring = "Monitoring"
	GroupAuth       = "Auth"
)

// flagGroups names the group of each flag; a flag missing here is in
// GroupMember.
func flagGroup(name string) string {
	switch {
	case strings.HasPrefix(name, "discovery"):
		return GroupDiscovery
	case strings.Contains(name, "cert") || strings.Contains(name, "tls") || strings.Contains(name, "key-file") ||
		strings.Contains(name, "crl") || name == "cipher-suites" || strings.Contains(name, "trusted-ca"):
		return GroupSecurity
	case strings.HasPrefix(name, "initial-") || strings.HasPrefix(name, "advertise-") || name == "strict-reconfig-check" ||
		name == "pre-vote" || name == "max-learners":
		return GroupCluster
	case strings.HasPrefix(name, "log"):
		return GroupLogging
	case name == "proxy":
		return GroupProxy
	case name == "config" || name == "force" || name == "snapshot" || name == "v" || name == "vv":
		return GroupUnsafe
	case name == "version" || name == "help" || name == "config-file":
		return GroupMeta
	case name == "listen-metrics-urls" || name == "enable-pprof":
		return GroupMonitoring
	case name == "auth-token" || name == "bcrypt-cost" || name == "auth-token-ttl":
		return GroupAuth
	}
	return GroupMember
}

// FlagGroup returns the help group of an etcd flag name.
func FlagGroup(name string) string { return flagGroup(name) }

// newFlagSet declares every etcd flag on a fresh FlagSet bound to c, with
// etcd's defaults already stored in c.
func newFlagSet(prog string, c *Config, meta *metaFlags) *flag.FlagSet {
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(io.Discard)

	mustSet := func(v urlsValue, def string) urlsValue {
		if err := v.Set(def); err != nil {
			panic("bad built-in default " + def) // a programming error, never user input
		}
		return v
	}

	// Member.
	fs.StringVar(&c.Name, "name", DefaultName, "Human-readable name for this member.")
	fs.StringVar(&c.DataDir, "data-dir", "", "Path to the data directory (default \"<name>.etcd\").")
	fs.StringVar(&c.WALDir, "wal-dir", "", "Path to the dedicated wal directory.")
	fs.UintVar(&c.HeartbeatMs, "heartbeat-interval", 100, "Time (in milliseconds) of a heartbeat interval.")
	fs.UintVar(&c.ElectionMs, "election-timeout", 1000, "Time (in milliseconds) for an election to timeout.")
	fs.Var(mustSet(urlsValue{&c.ListenPeerURLs}, DefaultListenPeerURLs), "listen-peer-urls", "List of URLs to listen on for peer traffic.")
	fs.Var(mustSet(urlsValue{&c.ListenClientURLs}, DefaultListenClientURLs), "listen-client-urls", "List of URLs to listen on for client grpc traffic and http as long as --listen-client-http-urls is not specified.")
	fs.Var(urlsValue{&c.ListenClientHTTPURLs}, "listen-client-http-urls", "List of URLs to listen on for http only client traffic.")
	fs.Uint64Var(&c.SnapshotCount, "snapshot-count", 10000, "Number of committed transactions to trigger a snapshot to disk.")
	fs.Uint64Var(&c.SnapshotCatchUp, "snapshot-catchup-entries", 5000, "Number of entries for a slow follower to catch-up after compacting the raft storage entries.")
	fs.Int64Var(&c.QuotaBackendBytes, "quota-backend-bytes", 0, "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB).")
	fs.UintVar(&c.MaxRequestBytes, "max-request-bytes", DefaultMaxRequestBytes, "Maximum client request size in bytes the server will accept.")
	fs.UintVar(&c.MaxTxnOps, "max-txn-ops", 128, "Maximum number of operations permitted in a transaction.")
	fs.StringVar(&c.AutoCompactionMode, "auto-compaction-mode", "periodic", "Interpret 'auto-compaction-retention' one of: periodic|revision.")
	fs.StringVar(&c.AutoCompactionRetention, "auto-compaction-retention", "0", "Auto compaction retention length. 0 means disable auto compaction.")
	fs.DurationVar(&c.WatchProgressNotifyInterval, "watch-progress-notify-interval", 10*time.Minute, "Duration of periodic watch progress notifications.")

	// Clustering.
	fs.Var(mustSet(urlsValue{&c.InitialAdvertisePeerURLs}, DefaultAdvertisePeerURLs), "initial-advertise-peer-urls", "List of this member's peer URLs to advertise to the rest of the cluster.")
	fs.Var(mustSet(urlsValue{&c.AdvertiseClientURLs}, DefaultAdvertiseClientURLs), "advertise-client-urls", "List of this member's client URLs to advertise to the public.")
	fs.StringVar(&c.InitialCluster, "initial-cluster", DefaultName+"="+DefaultAdvertisePeerURLs, "Initial cluster configuration for bootstrapping.")
	c.InitialClusterState = "new"
	fs.Var(choiceValue{&c.InitialClusterState, []string{"new", "existing"}}, "initial-cluster-state", "Initial cluster state ('new' when bootstrapping a new cluster or 'existing' when adding new members to an existing cluster).")
	fs.StringVar(&c.InitialClusterToken, "initial-cluster-token", DefaultInitialClusterToken, "Initial cluster token for the etcd cluster during bootstrap.")
	fs.BoolVar(&c.StrictReconfigCheck, "strict-reconfig-check", true, "Reject reconfiguration requests that would cause quorum loss.")
	fs.BoolVar(&c.PreVote, "pre-vote", true, "Enable the raft Pre-Vote algorithm to prevent disruption when a node that has been partitioned away rejoins the cluster.")
	fs.BoolVar(&c.InitialElectionTickAdvance, "initial-election-tick-advance", true, "Whether to fast-forward initial election ticks on boot for faster election.")
	fs.IntVar(&c.MaxLearners, "max-learners", 1, "Set the max number of learner members allowed in the cluster membership.")

	// Discovery.
	fs.StringVar(&c.Discovery, "discovery", "", "Discovery URL used to bootstrap the cluster (v2 discovery).")
	fs.StringVar(&c.DiscoveryProxy, "discovery-proxy", "", "HTTP proxy to use for traffic to the discovery service.")
	c.DiscoveryFallback = "exit"
	fs.Var(choiceValue{&c.DiscoveryFallback, []string{"exit", "proxy"}}, "discovery-fallback", "Expected behavior ('exit') when discovery services fails.")
	fs.StringVar(&c.DiscoverySRV, "discovery-srv", "", "DNS srv domain used to bootstrap the cluster.")
	fs.StringVar(&c.DiscoverySRVName, "discovery-srv-name", "", "Suffix to the dns srv name queried when bootstrapping.")
	fs.StringVar(&c.DiscoveryEndpoints, "discovery-endpoints", "", "V3 discovery: List of gRPC endpoints of the discovery service.")
	fs.StringVar(&c.DiscoveryToken, "discovery-token", "", "V3 discovery: discovery token for the etcd cluster to be bootstrapped.")
	fs.DurationVar(&c.Discovery3.DialTimeout, "discovery-dial-timeout", 2*time.Second, "V3 discovery: dial timeout for client connections.")
	fs.DurationVar(&c.Discovery3.RequestTimeout, "discovery-request-timeout", 5*time.Second, "V3 discovery: timeout for discovery requests (excluding dial timeout).")
	fs.DurationVar(&c.Discovery3.KeepAliveTime, "discovery-keepalive-time", 2*time.Second, "V3 discovery: keepalive time for client connections.")
	fs.DurationVar(&c.Discovery3.KeepAliveTimeout, "discovery-keepalive-timeout", 6*time.Second, "V3 discovery: keepalive timeout for client connections.")
	fs.BoolVar(&c.Discovery3.InsecureTransport, "discovery-insecure-transport", true, "V3 discovery: disable transport security for client connections.")
	fs.BoolVar(&c.Discovery3.InsecureSkipTLSVerify, "discovery-insecure-skip-tls-verify", false, "V3 discovery: skip server certificate verification (CAUTION: this option should be enabled only for testing purposes).")
	fs.StringVar(&c.Discovery3.CertFile, "discovery-cert", "", "V3 discovery: identify secure client using this TLS certificate file.")
	fs.StringVar(&c.Discovery3.KeyFile, "discovery-key", "", "V3 discovery: identify secure client using this TLS key file.")
	fs.StringVar(&c.Discovery3.CAFile, "discovery-cacert", "", "V3 discovery: verify certificates of TLS-enabled secure servers using this CA bundle.")
	fs.StringVar(&c.Discovery3.User, "discovery-user", "", "V3 discovery: username[:password] for authentication (prompt if password is not supplied).")
	fs.StringVar(&c.Discovery3.Password, "discovery-password", "", "V3 discovery: password for authentication (if this option is used, --user option shouldn't include password).")

	// Proxy (removed upstream in 3.6; kept so that it gives a clear error).
	c.Proxy = "off"
	fs.Var(choiceValue{&c.Proxy, []string{"off", "on", "readonly"}}, "proxy", "Removed: v2 proxy mode. Use 'gateway start' instead.")

	// Security.
	fs.StringVar(&c.ClientTLS.CertFile, "cert-file", "", "Path to the client server TLS cert file.")
	fs.StringVar(&c.ClientTLS.KeyFile, "key-file", "", "Path to the client server TLS key file.")
	fs.BoolVar(&c.ClientTLS.ClientCertAuth, "client-cert-auth", false, "Enable client cert authentication.")
	fs.StringVar(&c.ClientTLS.CRLFile, "client-crl-file", "", "Path to the client certificate revocation list file.")
	fs.StringVar(&c.ClientTLS.AllowedHostname, "client-cert-allowed-hostname", "", "Allowed TLS hostname for client cert authentication.")
	fs.StringVar(&c.ClientTLS.TrustedCAFile, "trusted-ca-file", "", "Path to the client server TLS trusted CA cert file.")
	fs.BoolVar(&c.ClientTLS.AutoTLS, "auto-tls", false, "Client TLS using generated certificates.")
	fs.StringVar(&c.PeerTLS.CertFile, "peer-cert-file", "", "Path to the peer server TLS cert file.")
	fs.StringVar(&c.PeerTLS.KeyFile, "peer-key-file", "", "Path to the peer server TLS key file.")
	fs.BoolVar(&c.PeerTLS.ClientCertAuth, "peer-client-cert-auth", false, "Enable peer client cert authentication.")
	fs.StringVar(&c.PeerTLS.TrustedCAFile, "peer-trusted-ca-file", "", "Path to the peer server TLS trusted CA file.")
	fs.BoolVar(&c.PeerTLS.AutoTLS, "peer-auto-tls", false, "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.")
	fs.BoolVar(&c.PeerTLS.SkipClientSANCheck, "peer-skip-client-san-verification", false, "Skip verification of SAN field in client certificate for peer connections.")
	fs.StringVar(&c.PeerTLS.CRLFile, "peer-crl-file", "", "Path to the peer certificate revocation list file.")
	fs.StringVar(&c.PeerTLS.AllowedCN, "peer-cert-allowed-cn", "", "Required CN for client certs connecting to the peer endpoint.")
	fs.StringVar(&c.PeerTLS.AllowedHostname, "peer-cert-allowed-hostname", "", "Allowed TLS hostname for inter peer authentication.")
	fs.StringVar(&c.CipherSuites, "cipher-suites", "", "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Go).")
	fs.StringVar(&c.TLSMinVersion, "tls-min-version", "TLS1.2", "Minimum TLS version supported by etcd.")
	fs.StringVar(&c.TLSMaxVersion, "tls-max-version", "", "Maximum TLS version supported by etcd (empty will be auto-populated by Go).")
	fs.UintVar(&c.SelfSignedCertValidity, "self-signed-cert-validity", 1, "The validity period of the client and peer certificates, unit is year.")

	// Auth.
	c.AuthToken = "simple"
	fs.Var(authTokenValue{&c.AuthToken}, "auth-token", "Specify auth token specific options (etcd-node serves 'simple' tokens only).")
	fs.UintVar(&c.BcryptCost, "bcrypt-cost", 10, "Specify bcrypt algorithm cost factor for auth password hashing.")
	fs.UintVar(&c.AuthTokenTTL, "auth-token-ttl", 300, "The lifetime in seconds of the auth token.")

	// Logging and monitoring.
	c.LogLevel = "info"
	fs.Var(choiceValue{&c.LogLevel, []string{"debug", "info", "warn", "error", "panic", "fatal"}}, "log-level", "Configures log level. Only supports debug, info, warn, error, panic, or fatal.")
	fs.StringVar(&c.Logger, "logger", "zap", "Currently only supports 'zap' for structured logging.")
	fs.StringVar(&c.LogOutputs, "log-outputs", "default", "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd.")
	fs.Var(urlsValue{&c.ListenMetricsURLs}, "listen-metrics-urls", "List of URLs to listen on for the metrics and health endpoints.")
	fs.BoolVar(&c.EnablePprof, "enable-pprof", false, "Enable runtime profiling data via HTTP server.")

	// Program.
	fs.BoolVar(&meta.version, "version", false, "Print the version and exit.")
	fs.StringVar(&meta.configFile, "config-file", "", "Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.")

	// Legacy flags that etcd accepts without effect.
	for _, name := range []string{"config", "snapshot"} {
		fs.Var(legacyValue{}, name, "Deprecated, ignored.")
	}
	for _, name := range []string{"force", "v", "vv"} {
		fs.Var(legacyValue{isBool: true}, name, "Deprecated, ignored.")
	}
	return fs
}

// metaFlags are flags about the program rather than the member.
type metaFlags struct {
	version    bool
	configFile string
}

// FlagNames lists every flag name etcd-node accepts, sorted.
func FlagNames() []string {
	var c Config
	var m metaFlags
	fs := newFlagSet("etcd", &c, &m)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	return names
}

// IsBoolFlag reports whether name is a known boolean flag (written without a
// value on a command line).
func IsBoolFlag(name string) bool {
	var c Config
	var m metaFlags
	f := newFlagSet("etcd", &c, &m).Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// IsFlag reports whether name is an etcd flag.
func IsFlag(name string) bool {
	var c Config
	var m metaFlags
	return newFlagSet("etcd", &c, &m).Lookup(name) != nil
}

// EnvName is the ETCD_* variable that sets flag name.
func EnvName(flagName string) string {
	return "ETCD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Usage writes the help text, grouped like etcd's.
func Usage(w io.Writer, prog string) {
	var c Config
	var m metaFlags
	fs := newFlagSet(prog, &c, &m)
	groups := map[string][]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) {
		if flagGroup(f.Name) == GroupUnsafe {
			return
		}
		groups[flagGroup(f.Name)] = append(groups[flagGroup(f.Name)], f)
	})
	fmt.Fprintf(w, "Usage:\n\n  %s [flags]\n    Start an etcd-compatible member.\n\n  %s --version\n    Show the version.\n\n", prog, prog)
	fmt.Fprintf(w, "Every flag can also be set through an environment variable: ETCD_ + the flag name in\nupper case with '-' turned into '_' (for example --initial-cluster -> ETCD_INITIAL_CLUSTER).\nA flag and its variable together is an error.\n")
	for _, g := range []string{GroupMember, GroupCluster, GroupDiscovery, GroupSecurity, GroupAuth, GroupLogging, GroupMonitoring, GroupProxy, GroupMeta} {
		fmt.Fprintf(w, "\n%s:\n", g)
		for _, f := range groups[g] {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %q)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s\n      %s%s\n", f.Name, f.Usage, def)
		}
	}
}
