package plan

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"

	"etcdctl-wizard/node/config"
)

// Flag is one etcd flag as a member gets it.
type Flag struct {
	Name  string `json:"name" yaml:"name"`
	Value string `json:"value" yaml:"value"`
	// Field is the plan field that decides the flag: what to edit to change it.
	Field string `json:"field" yaml:"field"`
}

// MemberConfig is a member's effective etcd configuration: every flag it will
// get, after defaults and flag overrides, in the order the guide writes them.
type MemberConfig struct {
	Index  int    // position in spec.members
	Name   string // member name as written in the plan
	Member Member // the member with defaults filled in
	Mode   string // bootstrap mode, which also decides the layout of the command
	Flags  []Flag
}

// Lookup returns a flag's value and whether the member gets the flag.
func (mc *MemberConfig) Lookup(name string) (string, bool) {
	for _, f := range mc.Flags {
		if f.Name == name {
			return f.Value, true
		}
	}
	return "", false
}

// Field returns the plan field behind a flag, or the member's own path when
// the flag is not set (etcd's default applies).
func (mc *MemberConfig) Field(flag string) string {
	for _, f := range mc.Flags {
		if f.Name == flag {
			return f.Field
		}
	}
	return memberPath(mc.Index, "flags."+flag)
}

// Args renders the flags as a command line without the program name, in
// the unambiguous --flag=value form (booleans bare), for config.Parse.
func (mc *MemberConfig) Args() []string {
	args := make([]string, 0, len(mc.Flags))
	for _, f := range mc.Flags {
		if isBoolFlag(f.Name) && f.Value == "true" {
			args = append(args, "--"+f.Name)
			continue
		}
		args = append(args, "--"+f.Name+"="+f.Value)
	}
	return args
}

// Env renders the flags as ETCD_* variables (KEY=value, unquoted), in flag
// order.
func (mc *MemberConfig) Env() []string {
	env := make([]string, 0, len(mc.Flags))
	for _, f := range mc.Flags {
		env = append(env, config.EnvName(f.Name)+"="+f.Value)
	}
	return env
}

// boolFlags is the set of etcd's boolean flags, read once from node/config:
// config.IsBoolFlag builds a whole flag set per call, and rendering asks for
// every flag of every member.
var boolFlags = sync.OnceValue(func() map[string]bool {
	set := map[string]bool{}
	for _, name := range config.FlagNames() {
		if config.IsBoolFlag(name) {
			set[name] = true
		}
	}
	return set
})

// isBoolFlag reports whether name is one of etcd's boolean flags.
func isBoolFlag(name string) bool { return boolFlags()[name] }

func memberPath(i int, field string) string {
	return fmt.Sprintf("spec.members[%d].%s", i, field)
}

// MemberConfigs returns the effective configuration of every member, in plan
// order. Defaults are applied to a copy; p is not changed.
func (p *Plan) MemberConfigs() []MemberConfig {
	q := p.WithDefaults()
	out := make([]MemberConfig, len(q.Spec.Members))
	for i := range q.Spec.Members {
		out[i] = q.memberConfig(i)
	}
	return out
}

// scheme is the URL scheme every member uses under the plan's TLS mode.
func (p *Plan) scheme() string {
	if p.Spec.TLS.Mode == TLSNone {
		return "http"
	}
	return "https"
}

// advertiseHost is the host a member puts in its advertised URLs.
func (p *Plan) advertiseHost(m *Member) string {
	if p.Spec.Bootstrap.Mode == ModeDNSSRV && p.Spec.Bootstrap.DNSSRV.Advertise == AdvertiseHostnames && m.Hostname != "" {
		return m.Hostname
	}
	return m.IP
}

func hostURL(scheme, host string, port int) string {
	return scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// peerURL is the advertised peer URL of m (defaults applied).
func (p *Plan) peerURL(m *Member) string {
	return hostURL(p.scheme(), p.advertiseHost(m), m.PeerPort)
}

// initialCluster is the static --initial-cluster every member gets.
func (p *Plan) initialCluster() string {
	pairs := make([]string, len(p.Spec.Members))
	for i := range p.Spec.Members {
		m := &p.Spec.Members[i]
		pairs[i] = m.Name + "=" + p.peerURL(m)
	}
	return strings.Join(pairs, ",")
}

// memberConfig builds member i's flags on a defaulted plan.
func (p *Plan) memberConfig(i int) MemberConfig {
	s := &p.Spec
	m := s.Members[i]
	scheme := p.scheme()
	mc := MemberConfig{Index: i, Name: m.Name, Member: m, Mode: s.Bootstrap.Mode}
	add := func(name, value, field string) {
		mc.Flags = append(mc.Flags, Flag{Name: name, Value: value, Field: field})
	}
	ipField := memberPath(i, "ip")
	advField := ipField
	if p.advertiseHost(&m) != m.IP {
		advField = memberPath(i, "hostname")
	}
	listenHost, listenField := m.IP, ipField
	if s.Node.Listen == ListenAny {
		listenHost, listenField = "0.0.0.0", "spec.node.listen"
	}
	listenPeer := hostURL(scheme, listenHost, m.PeerPort)
	listenClient := hostURL(scheme, listenHost, m.ClientPort)
	if s.Node.Listen == ListenIPAndLoopback && !isLoopback(m.IP) {
		listenClient += "," + hostURL(scheme, "127.0.0.1", m.ClientPort)
	}
	advPeer := p.peerURL(&m)
	advClient := hostURL(scheme, p.advertiseHost(&m), m.ClientPort)

	add("name", m.Name, memberPath(i, "name"))
	switch {
	case m.Join:
		// A member added at runtime joins the running cluster the way
		// etcd's member add prints it, whatever the bootstrap mode: a used
		// discovery token or the SRV records cannot bootstrap it.
		add("initial-advertise-peer-urls", advPeer, advField)
		add("listen-peer-urls", listenPeer, listenField)
		add("listen-client-urls", listenClient, listenField)
		add("advertise-client-urls", advClient, advField)
		add("initial-cluster", p.initialCluster(), "spec.members")
		add("initial-cluster-state", "existing", memberPath(i, "join"))
	case s.Bootstrap.Mode == ModeDNSSRV:
		// The guide's DNS example lists the flags in this order.
		add("discovery-srv", s.Bootstrap.DNSSRV.Domain, "spec.bootstrap.dnsSRV.domain")
		if s.Bootstrap.DNSSRV.ServiceName != "" {
			add("discovery-srv-name", s.Bootstrap.DNSSRV.ServiceName, "spec.bootstrap.dnsSRV.serviceName")
		}
		add("initial-advertise-peer-urls", advPeer, advField)
		add("initial-cluster-token", s.InitialClusterToken, "spec.initialClusterToken")
		add("initial-cluster-state", "new", "spec.bootstrap.mode")
		add("advertise-client-urls", advClient, advField)
		add("listen-client-urls", listenClient, listenField)
		add("listen-peer-urls", listenPeer, listenField)
	default:
		add("initial-advertise-peer-urls", advPeer, advField)
		add("listen-peer-urls", listenPeer, listenField)
		add("listen-client-urls", listenClient, listenField)
		add("advertise-client-urls", advClient, advField)
		if s.Bootstrap.Mode == ModeDiscovery {
			// The discovery URL is the token; the service supplies the cluster.
			add("discovery", s.Bootstrap.Discovery.URL, "spec.bootstrap.discovery.url")
			if s.Bootstrap.Discovery.Proxy != "" {
				add("discovery-proxy", s.Bootstrap.Discovery.Proxy, "spec.bootstrap.discovery.proxy")
			}
		} else {
			add("initial-cluster-token", s.InitialClusterToken, "spec.initialClusterToken")
			add("initial-cluster", p.initialCluster(), "spec.members")
			add("initial-cluster-state", "new", "spec.bootstrap.mode")
		}
	}
	if *s.Node.DataDir != "" {
		add("data-dir", *s.Node.DataDir, "spec.node.dataDir")
	}
	switch s.TLS.Mode {
	case TLSSelfSigned:
		f := s.TLS.Files.forMember(m.Name)
		add("client-cert-auth", "true", "spec.tls.mode")
		add("trusted-ca-file", f.TrustedCA, "spec.tls.files.trustedCA")
		add("cert-file", f.Cert, "spec.tls.files.cert")
		add("key-file", f.Key, "spec.tls.files.key")
		add("peer-client-cert-auth", "true", "spec.tls.mode")
		add("peer-trusted-ca-file", f.PeerTrustedCA, "spec.tls.files.peerTrustedCA")
		add("peer-cert-file", f.PeerCert, "spec.tls.files.peerCert")
		add("peer-key-file", f.PeerKey, "spec.tls.files.peerKey")
	case TLSAuto:
		add("auto-tls", "true", "spec.tls.mode")
		add("peer-auto-tls", "true", "spec.tls.mode")
	}
	mc.applyOverrides(s.Node.Flags, func(k string) string { return "spec.node.flags." + k })
	mc.applyOverrides(m.Flags, func(k string) string { return memberPath(i, "flags."+k) })
	return mc
}

// applyOverrides replaces flags in place and appends new ones sorted by name,
// so the output stays deterministic.
func (mc *MemberConfig) applyOverrides(overrides map[string]string, field func(string) string) {
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := NormalizeFlagName(k)
		replaced := false
		for j := range mc.Flags {
			if mc.Flags[j].Name == name {
				mc.Flags[j].Value = overrides[k]
				mc.Flags[j].Field = field(k)
				replaced = true
			}
		}
		if !replaced {
			mc.Flags = append(mc.Flags, Flag{Name: name, Value: overrides[k], Field: field(k)})
		}
	}
}

// NormalizeFlagName accepts "--flag", "-flag" and "flag" as a flag override
// key.
func NormalizeFlagName(k string) string { return strings.TrimLeft(strings.TrimSpace(k), "-") }

// forMember expands "{name}" in every path.
func (f TLSFiles) forMember(name string) TLSFiles {
	r := strings.NewReplacer("{name}", name)
	return TLSFiles{
		TrustedCA: r.Replace(f.TrustedCA), Cert: r.Replace(f.Cert), Key: r.Replace(f.Key),
		PeerTrustedCA: r.Replace(f.PeerTrustedCA), PeerCert: r.Replace(f.PeerCert), PeerKey: r.Replace(f.PeerKey),
	}
}

func isLoopback(ip string) bool {
	parsed := net.ParseIP(ip)
	return parsed != nil && parsed.IsLoopback()
}
