package plan

// Plan file identity (DESIGN.md §4).
const (
	APIVersion  = "etcdctl-wizard/v1"
	KindCluster = "Cluster"
)

// Bootstrap modes.
const (
	ModeStatic    = "static"
	ModeDiscovery = "discovery"
	ModeDNSSRV    = "dns-srv"
)

// TLS modes.
const (
	TLSNone       = "none"
	TLSSelfSigned = "self-signed"
	TLSAuto       = "auto"
)

// Listen modes: which addresses a member binds (spec.node.listen).
const (
	ListenIPAndLoopback = "ip+loopback" // the member's ip, plus 127.0.0.1 for clients (the guide's static examples)
	ListenIP            = "ip"          // only the member's ip
	ListenAny           = "any"         // 0.0.0.0 (the guide's DNS example with host names)
)

// What dns-srv members advertise (spec.bootstrap.dnsSRV.advertise).
const (
	AdvertiseHostnames = "hostnames"
	AdvertiseIPs       = "ips"
)

// Transports.
const (
	TransportSSH   = "ssh"
	TransportLocal = "local"
)

// BinaryBundled selects the etcd-node binary built into the wizard.
const BinaryBundled = "bundled"

// Plan is the v1 plan file. Field names are a contract (DESIGN.md §4): add
// fields, never rename them.
type Plan struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`
}

// Metadata names the cluster.
type Metadata struct {
	// Name is the cluster name and the default --initial-cluster-token.
	Name string `yaml:"name" json:"name"`
}

// Spec is the cluster's desired shape.
type Spec struct {
	InitialClusterToken string `yaml:"initialClusterToken,omitempty" json:"initialClusterToken,omitempty"`
	// ClusterID is the ID of the running cluster (hex, as etcdctl prints
	// it), pinned by member add and member remove: once the membership
	// changed at runtime, the ID computed from the members and the token
	// no longer names the cluster the hosts hold. When set it wins over the
	// computed one; empty means "computed" (a cluster still to bootstrap).
	ClusterID string    `yaml:"clusterID,omitempty" json:"clusterID,omitempty"`
	Bootstrap Bootstrap `yaml:"bootstrap" json:"bootstrap"`
	TLS       TLS       `yaml:"tls" json:"tls"`
	Node      Node      `yaml:"node" json:"node"`
	Members   []Member  `yaml:"members" json:"members"`
}

// Bootstrap says how members find each other the first time.
type Bootstrap struct {
	Mode      string    `yaml:"mode" json:"mode"`
	Discovery Discovery `yaml:"discovery,omitempty" json:"discovery,omitempty"`
	DNSSRV    DNSSRV    `yaml:"dnsSRV,omitempty" json:"dnsSRV,omitempty"`
}

// Discovery configures etcd (v2) discovery.
type Discovery struct {
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// Size is the expected cluster size; 0 means the member count.
	Size  int    `yaml:"size,omitempty" json:"size,omitempty"`
	Proxy string `yaml:"proxy,omitempty" json:"proxy,omitempty"` // --discovery-proxy
}

// DNSSRV configures DNS SRV discovery.
type DNSSRV struct {
	Domain      string `yaml:"domain,omitempty" json:"domain,omitempty"`           // --discovery-srv
	ServiceName string `yaml:"serviceName,omitempty" json:"serviceName,omitempty"` // --discovery-srv-name
	// Advertise is hostnames (default: members advertise their hostname) or
	// ips (members advertise their ip; the SRV targets still need names).
	Advertise string `yaml:"advertise,omitempty" json:"advertise,omitempty"`
}

// TLS configures transport security.
type TLS struct {
	Mode string `yaml:"mode" json:"mode"`
	// Dir is the folder on the laptop holding the CA and the member
	// certificates, under the base names of Files (self-signed mode).
	Dir   string   `yaml:"dir,omitempty" json:"dir,omitempty"`
	Files TLSFiles `yaml:"files,omitempty" json:"files,omitempty"`
}

// TLSFiles are the certificate paths on the hosts, as given to etcd. "{name}"
// is replaced by the member name. Empty fields take the defaults under
// /etc/etcd/pki.
type TLSFiles struct {
	TrustedCA     string `yaml:"trustedCA,omitempty" json:"trustedCA,omitempty"`
	Cert          string `yaml:"cert,omitempty" json:"cert,omitempty"`
	Key           string `yaml:"key,omitempty" json:"key,omitempty"`
	PeerTrustedCA string `yaml:"peerTrustedCA,omitempty" json:"peerTrustedCA,omitempty"`
	PeerCert      string `yaml:"peerCert,omitempty" json:"peerCert,omitempty"`
	PeerKey       string `yaml:"peerKey,omitempty" json:"peerKey,omitempty"`
}

// Node is what every member runs.
type Node struct {
	Binary      string `yaml:"binary,omitempty" json:"binary,omitempty"`
	InstallPath string `yaml:"installPath,omitempty" json:"installPath,omitempty"`
	// DataDir is a pointer because absent and empty differ: absent takes the
	// default /var/lib/etcd, an explicit "" passes no --data-dir (etcd's own
	// default, <name>.etcd in the working directory), which is what the
	// guide's commands do.
	DataDir    *string `yaml:"dataDir,omitempty" json:"dataDir,omitempty"`
	ClientPort int     `yaml:"clientPort,omitempty" json:"clientPort,omitempty"`
	PeerPort   int     `yaml:"peerPort,omitempty" json:"peerPort,omitempty"`
	Listen     string  `yaml:"listen,omitempty" json:"listen,omitempty"`
	// Flags are raw etcd flag overrides for every member; a member's own
	// flags win.
	Flags map[string]string `yaml:"flags,omitempty" json:"flags,omitempty"`
}

// Member is one host of the cluster.
type Member struct {
	Name       string `yaml:"name" json:"name"`
	IP         string `yaml:"ip" json:"ip"`
	Hostname   string `yaml:"hostname,omitempty" json:"hostname,omitempty"`
	ClientPort int    `yaml:"clientPort,omitempty" json:"clientPort,omitempty"`
	PeerPort   int    `yaml:"peerPort,omitempty" json:"peerPort,omitempty"`
	SSH        SSH    `yaml:"ssh,omitempty" json:"ssh,omitempty"`
	Transport  string `yaml:"transport,omitempty" json:"transport,omitempty"`
	// Join marks a member added to the running cluster by runtime
	// reconfiguration (etcdctl-wizard member add): it starts with
	// --initial-cluster-state existing and a static --initial-cluster of
	// every plan member, whatever the bootstrap mode, and never bootstraps.
	Join bool `yaml:"join,omitempty" json:"join,omitempty"`
	// MemberID is the ID the cluster assigned to a joined member (hex), as
	// MemberAdd answered; recorded in the member's data dir marker.
	MemberID string `yaml:"memberID,omitempty" json:"memberID,omitempty"`
	// Flags are raw etcd flag overrides (flag name without dashes -> value).
	// They let imported or hand-edited plans express any command line,
	// mistakes included, so that validation can judge them.
	Flags map[string]string `yaml:"flags,omitempty" json:"flags,omitempty"`
}

// SSH says how to reach a member's host.
type SSH struct {
	Host     string `yaml:"host,omitempty" json:"host,omitempty"`
	Port     int    `yaml:"port,omitempty" json:"port,omitempty"`
	User     string `yaml:"user,omitempty" json:"user,omitempty"`
	KeyFile  string `yaml:"keyFile,omitempty" json:"keyFile,omitempty"`
	JumpHost string `yaml:"jumpHost,omitempty" json:"jumpHost,omitempty"`
}
