package plan

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"etcdctl-wizard/node/config"
)

// Severity of a finding.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Finding is one validation result. Code is stable (see docs/plan.md);
// Member is empty for cluster-wide findings; Field is the plan path to edit.
type Finding struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Member   string   `json:"member,omitempty"`
	Field    string   `json:"field,omitempty"`
	Message  string   `json:"message"`
	Hint     string   `json:"hint,omitempty"`
	// File, Line and Column are set for plan files that could not be loaded.
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Severity == SeverityError {
			return true
		}
	}
	return false
}

// Plan-level finding codes. Codes of the start-up checks come from
// node/config (config.Code*), shared with etcd-node.
const (
	CodeClusterNameMissing    = "cluster-name-missing"
	CodeBootstrapModeInvalid  = "bootstrap-mode-invalid"
	CodeTLSModeInvalid        = "tls-mode-invalid"
	CodeListenModeInvalid     = "listen-mode-invalid"
	CodeDNSAdvertiseInvalid   = "dns-advertise-invalid"
	CodeInstallPathRelative   = "install-path-not-absolute"
	CodeDataDirRelative       = "data-dir-not-absolute"
	CodeNoMembers             = "no-members"
	CodeMemberNameMissing     = "member-name-missing"
	CodeMemberNameInvalid     = "member-name-invalid"
	CodeDuplicateMemberName   = "duplicate-member-name"
	CodeMemberIPMissing       = "member-ip-missing"
	CodeMemberIPInvalid       = "member-ip-invalid"
	CodeHostnameInvalid       = "hostname-invalid"
	CodeTransportInvalid      = "transport-invalid"
	CodePortOutOfRange        = "port-out-of-range"
	CodeSSHPortOutOfRange     = "ssh-port-out-of-range"
	CodeSSHJumpHostInvalid    = "ssh-jump-host-invalid"
	CodeClientPeerPortClash   = "client-peer-port-clash"
	CodeDuplicateAddress      = "duplicate-address"
	CodeFlagNotAllowed        = "flag-not-allowed"
	CodeUnknownFlag           = "unknown-flag"
	CodeInvalidFlagValue      = "invalid-flag-value"
	CodeFlagRejected          = "flag-rejected"
	CodeDiscoveryURLMissing   = "discovery-url-missing"
	CodeDiscoveryURLInvalid   = "discovery-url-invalid"
	CodeDiscoveryProxyInvalid = "discovery-proxy-invalid"
	CodeDiscoverySizeMismatch = "discovery-size-mismatch"
	CodeDiscoveryDuplicate    = "discovery-duplicate-name"
	CodeDNSDomainMissing      = "dns-domain-missing"
	CodeDNSDomainInvalid      = "dns-domain-invalid"
	CodeDNSHostnameMissing    = "dns-hostname-missing"
	CodeDNSSelfNotInSRV       = "dns-self-not-in-srv"
	CodeDNSRecordsRequired    = "dns-records-required"
	CodeTLSDirMissing         = "tls-dir-missing"
	CodeTLSHTTPURL            = "tls-http-url"
	CodeTLSUnmanagedHTTPS     = "tls-https-unmanaged"
	CodeAdvertiseLocalhost    = "advertise-client-localhost"
	CodeAdvertiseDefault      = "advertise-client-default"
	CodeDefaultToken          = "default-token"
	CodeEvenMemberCount       = "even-member-count"
	CodeSingleMember          = "single-member"
	CodeTooManyMembers        = "too-many-members"
	CodeForeignMember         = "initial-cluster-foreign-member"
	CodeSharedSSHHost         = "shared-ssh-host"
	CodeSharedDataDir         = "shared-data-dir"
	CodeClusterIDInvalid      = "cluster-id-invalid"
	CodeMemberIDInvalid       = "member-id-invalid"
	CodeJoinWithoutClusterID  = "join-without-cluster-id"
)

// MemberIdentity is what a member will be once bootstrapped.
type MemberIdentity struct {
	Name      string
	MemberID  uint64
	ClusterID uint64
}

// Validate judges a plan: the plan's own rules, then each member's effective
// configuration through node/config, the code etcd-node runs at start.
// Findings come in plan order: cluster-wide first, then per member.
func Validate(p *Plan) []Finding {
	return analyze(p).findings
}

// Identities returns the member and cluster IDs each member will get, for
// the members whose start-up checks pass.
func Identities(p *Plan) []MemberIdentity {
	return analyze(p).ids
}

type analysis struct {
	q        *Plan
	mcs      []MemberConfig
	findings []Finding
	ids      []MemberIdentity
}

func (a *analysis) add(f Finding) {
	// Every message names its member, or its field when cluster-wide, so a
	// line read alone still says where to look.
	switch {
	case f.Member != "" && !strings.Contains(f.Message, f.Member):
		f.Message = f.Member + ": " + f.Message
	case f.Member == "" && f.Field != "" && !strings.Contains(f.Message, strings.TrimPrefix(f.Field, "spec.")):
		f.Message = f.Field + ": " + f.Message
	}
	for _, g := range a.findings {
		// The same cluster-wide fact seen from several members is one finding.
		if g.Code == f.Code && g.Message == f.Message && (g.Member == f.Member || g.Field == f.Field) {
			return
		}
	}
	a.findings = append(a.findings, f)
}

func (a *analysis) errorf(code, member, field, hint, format string, args ...any) {
	a.add(Finding{Code: code, Severity: SeverityError, Member: member, Field: field, Message: fmt.Sprintf(format, args...), Hint: hint})
}

func (a *analysis) warnf(code, member, field, hint, format string, args ...any) {
	a.add(Finding{Code: code, Severity: SeverityWarning, Member: member, Field: field, Message: fmt.Sprintf(format, args...), Hint: hint})
}

func analyze(p *Plan) *analysis {
	a := &analysis{q: p.WithDefaults()}
	a.checkStructure()
	if HasErrors(a.findings) {
		// Rendering a broken plan would only echo the same mistakes as
		// etcd errors; the start-up checks run once the structure is sound.
		a.sortFindings()
		return a
	}
	a.mcs = a.q.MemberConfigs()
	a.checkMembers()
	a.sortFindings()
	return a
}

// sortFindings keeps cluster-wide findings first, then members in plan order;
// within a group the order of discovery is kept.
func (a *analysis) sortFindings() {
	order := map[string]int{"": -1}
	for i, m := range a.q.Spec.Members {
		if _, ok := order[m.Name]; !ok {
			order[m.Name] = i
		}
	}
	sort.SliceStable(a.findings, func(i, j int) bool {
		return order[a.findings[i].Member] < order[a.findings[j].Member]
	})
}

var (
	// Names end up in --initial-cluster and in exported file names, so
	// they stay within what both carry safely.
	memberNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	hostnameRE   = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
)

func validPort(p int) bool { return p >= 1 && p <= 65535 }

// checkStructure runs the rules that need no etcd semantics.
func (a *analysis) checkStructure() {
	q := a.q
	s := &q.Spec
	if q.Metadata.Name == "" {
		a.errorf(CodeClusterNameMissing, "", "metadata.name", "name the cluster, e.g. 'metadata: {name: etcd-cluster-1}'; it is also the default --initial-cluster-token",
			"metadata.name is missing")
	}
	switch s.Bootstrap.Mode {
	case ModeStatic, ModeDiscovery, ModeDNSSRV:
	default:
		a.errorf(CodeBootstrapModeInvalid, "", "spec.bootstrap.mode", "use static, discovery or dns-srv",
			"spec.bootstrap.mode %q is not a bootstrap mode", s.Bootstrap.Mode)
	}
	switch s.TLS.Mode {
	case TLSNone, TLSSelfSigned, TLSAuto:
	default:
		a.errorf(CodeTLSModeInvalid, "", "spec.tls.mode", "use none, self-signed or auto", "spec.tls.mode %q is not a TLS mode", s.TLS.Mode)
	}
	switch s.Node.Listen {
	case ListenIPAndLoopback, ListenIP, ListenAny:
	default:
		a.errorf(CodeListenModeInvalid, "", "spec.node.listen", "use ip+loopback, ip or any", "spec.node.listen %q is not a listen mode", s.Node.Listen)
	}
	if s.Bootstrap.Mode == ModeDNSSRV {
		switch s.Bootstrap.DNSSRV.Advertise {
		case AdvertiseHostnames, AdvertiseIPs:
		default:
			a.errorf(CodeDNSAdvertiseInvalid, "", "spec.bootstrap.dnsSRV.advertise", "use hostnames or ips",
				"spec.bootstrap.dnsSRV.advertise %q is neither hostnames nor ips", s.Bootstrap.DNSSRV.Advertise)
		}
	}
	if !path.IsAbs(s.Node.InstallPath) {
		a.errorf(CodeInstallPathRelative, "", "spec.node.installPath", "use an absolute path such as /usr/local/bin/etcd-node",
			"spec.node.installPath %q is not an absolute path", s.Node.InstallPath)
	}
	if d := *s.Node.DataDir; d != "" && !path.IsAbs(d) {
		a.warnf(CodeDataDirRelative, "", "spec.node.dataDir", "use an absolute path such as /var/lib/etcd",
			"spec.node.dataDir %q is relative: it is resolved against the service's working directory", d)
	}
	for _, pf := range []struct {
		field string
		port  int
	}{{"spec.node.clientPort", s.Node.ClientPort}, {"spec.node.peerPort", s.Node.PeerPort}} {
		if !validPort(pf.port) {
			a.errorf(CodePortOutOfRange, "", pf.field, "use a port between 1 and 65535", "%s %d is out of range 1-65535", pf.field, pf.port)
		}
	}
	if len(s.Members) == 0 {
		a.errorf(CodeNoMembers, "", "spec.members", "list at least one member (three or five for fault tolerance)", "spec.members is empty")
	}
	a.checkModes()
	a.checkIdentity()
	names := map[string]int{}
	addrs := map[string]string{}
	sshHosts := map[string]string{}
	for i := range s.Members {
		m := &s.Members[i]
		who := m.Name
		if who == "" {
			who = fmt.Sprintf("member #%d", i+1)
		}
		switch {
		case m.Name == "":
			a.errorf(CodeMemberNameMissing, "", memberPath(i, "name"), "give every member a unique name, e.g. infra0",
				"%s has no name (%s)", who, memberPath(i, "name"))
		case !memberNameRE.MatchString(m.Name):
			a.errorf(CodeMemberNameInvalid, m.Name, memberPath(i, "name"), "use letters, digits, '-', '_' or '.', starting with a letter or digit",
				"%s: name %q has characters that --initial-cluster or a file name cannot carry", who, m.Name)
		default:
			if j, dup := names[m.Name]; dup {
				code, msg := CodeDuplicateMemberName, "%s: name %q is also used by %s; --initial-cluster needs unique names"
				if s.Bootstrap.Mode == ModeDiscovery {
					code, msg = CodeDiscoveryDuplicate, "%s: name %q is also used by %s; discovery would fail with \"found duplicate name\""
				}
				a.errorf(code, m.Name, memberPath(i, "name"), "rename one of them (the guide suggests the hostname or machine-id)",
					msg, who, m.Name, memberPath(j, "name"))
			} else {
				names[m.Name] = i
			}
		}
		ipOK := false
		switch ip := net.ParseIP(m.IP); {
		case m.IP == "":
			a.errorf(CodeMemberIPMissing, m.Name, memberPath(i, "ip"), "set the address the member binds and advertises, e.g. 10.0.1.10",
				"%s has no ip (%s)", who, memberPath(i, "ip"))
		case ip == nil || ip.IsUnspecified() || ip.IsMulticast():
			a.errorf(CodeMemberIPInvalid, m.Name, memberPath(i, "ip"), "use the member's own unicast IP address; put names in hostname",
				"%s: ip %q is not a unicast IP address", who, m.IP)
		default:
			ipOK = true
		}
		if m.Hostname != "" && !hostnameRE.MatchString(m.Hostname) {
			a.errorf(CodeHostnameInvalid, m.Name, memberPath(i, "hostname"), "use a DNS name such as infra0.example.com",
				"%s: hostname %q is not a valid DNS name", who, m.Hostname)
		}
		switch m.Transport {
		case TransportSSH, TransportLocal:
		default:
			a.errorf(CodeTransportInvalid, m.Name, memberPath(i, "transport"), "use ssh or local",
				"%s: transport %q is neither ssh nor local", who, m.Transport)
		}
		portsOK := true
		for _, pf := range []struct {
			field string
			port  int
		}{{"clientPort", m.ClientPort}, {"peerPort", m.PeerPort}} {
			if !validPort(pf.port) {
				portsOK = false
				a.errorf(CodePortOutOfRange, m.Name, memberPath(i, pf.field), "use a port between 1 and 65535 (0 takes spec.node's port)",
					"%s: %s %d is out of range 1-65535", who, pf.field, pf.port)
			}
		}
		if !validPort(m.SSH.Port) {
			a.errorf(CodeSSHPortOutOfRange, m.Name, memberPath(i, "ssh.port"), "use the host's SSH port, usually 22",
				"%s: ssh.port %d is out of range 1-65535", who, m.SSH.Port)
		}
		if m.Transport == TransportSSH && m.SSH.Host != "" {
			key := net.JoinHostPort(m.SSH.Host, strconv.Itoa(m.SSH.Port))
			if other, dup := sshHosts[key]; dup {
				a.errorf(CodeSharedSSHHost, m.Name, memberPath(i, "ssh.host"), "give each member its own host; to run several members on this machine use transport: local",
					"%s: ssh host %s is also %s's, but a host carries one member (one env file, one systemd unit)", who, key, other)
			} else {
				sshHosts[key] = who
			}
		}
		if m.SSH.JumpHost != "" && !validJumpHost(m.SSH.JumpHost) {
			a.errorf(CodeSSHJumpHostInvalid, m.Name, memberPath(i, "ssh.jumpHost"), "write it as [user@]host[:port]",
				"%s: ssh.jumpHost %q is not [user@]host[:port]", who, m.SSH.JumpHost)
		}
		if portsOK && m.ClientPort == m.PeerPort {
			a.errorf(CodeClientPeerPortClash, m.Name, memberPath(i, "clientPort"), "give clients and peers different ports (2379 and 2380 by default)",
				"%s: client port and peer port are both %d on %s", who, m.ClientPort, m.IP)
		}
		if ipOK && portsOK {
			for _, pf := range []struct {
				field string
				port  int
			}{{"peerPort", m.PeerPort}, {"clientPort", m.ClientPort}} {
				addr := net.JoinHostPort(m.IP, strconv.Itoa(pf.port))
				if other, dup := addrs[addr]; dup {
					a.errorf(CodeDuplicateAddress, m.Name, memberPath(i, pf.field), "members on one host need different ports",
						"%s: %s is also used by %s", who, addr, other)
					continue
				}
				addrs[addr] = who
			}
		}
	}
	a.checkCount()
}

// checkIdentity checks the IDs a plan pins after runtime reconfiguration.
func (a *analysis) checkIdentity() {
	s := &a.q.Spec
	hexHint := "write the ID in hex as etcdctl and 'etcdctl-wizard member list' print it, e.g. 8e9e05c52164694d"
	if s.ClusterID != "" {
		if id, err := config.ParseID(s.ClusterID); err != nil || id == 0 {
			a.errorf(CodeClusterIDInvalid, "", "spec.clusterID", hexHint+"; remove it for a cluster still to bootstrap",
				"spec.clusterID %q is not a cluster ID (non-zero hexadecimal)", s.ClusterID)
		}
	}
	for i := range s.Members {
		m := &s.Members[i]
		who := displayName(m.Name, i)
		if m.MemberID != "" {
			if id, err := config.ParseID(m.MemberID); err != nil || id == 0 {
				a.errorf(CodeMemberIDInvalid, m.Name, memberPath(i, "memberID"), hexHint,
					"%s: memberID %q is not a member ID (non-zero hexadecimal)", who, m.MemberID)
			} else if !m.Join {
				a.errorf(CodeMemberIDInvalid, m.Name, memberPath(i, "memberID"), "remove memberID: members that bootstrap the cluster get their ID from their peer URLs and the token",
					"%s: memberID is set but the member does not join a running cluster (join: true)", who)
			}
		}
		if m.Join && s.ClusterID == "" {
			a.errorf(CodeJoinWithoutClusterID, m.Name, memberPath(i, "join"),
				"a joining member needs the running cluster it joins: set spec.clusterID (etcdctl-wizard member add does), or remove join to bootstrap a new cluster with it",
				"%s joins a running cluster (join: true) but spec.clusterID does not say which", who)
		}
	}
}

func validJumpHost(s string) bool {
	if _, host, ok := strings.Cut(s, "@"); ok {
		s = host
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || !validPort(n) {
			return false
		}
	}
	return host != "" && (net.ParseIP(host) != nil || hostnameRE.MatchString(host))
}

// checkModes checks the bootstrap-mode and TLS settings.
func (a *analysis) checkModes() {
	s := &a.q.Spec
	switch s.Bootstrap.Mode {
	case ModeDiscovery:
		d := s.Bootstrap.Discovery
		if d.URL == "" {
			a.errorf(CodeDiscoveryURLMissing, "", "spec.bootstrap.discovery.url",
				"create one with 'curl https://discovery.etcd.io/new?size=3' or on your own etcd (PUT <url>/_config/size value=3)",
				"spec.bootstrap.discovery.url is missing")
		} else if err := checkDiscoveryURL(d.URL); err != nil {
			a.errorf(CodeDiscoveryURLInvalid, "", "spec.bootstrap.discovery.url", "use e.g. https://myetcd.local/v2/keys/discovery/<token> or https://discovery.etcd.io/<token>",
				"spec.bootstrap.discovery.url %q: %v", d.URL, err)
		}
		if d.Proxy != "" {
			if u, err := url.Parse(d.Proxy); err != nil || u.Host == "" {
				a.errorf(CodeDiscoveryProxyInvalid, "", "spec.bootstrap.discovery.proxy", "use http://host:port",
					"spec.bootstrap.discovery.proxy %q is not a proxy URL", d.Proxy)
			}
		}
		// The size matters to the bootstrap only: a plan pinned to a
		// running cluster has grown or shrunk by runtime reconfiguration.
		if d.Size != 0 && d.Size != len(s.Members) && s.ClusterID == "" {
			hint := "set size to the member count, or add or remove members"
			a.errorf(CodeDiscoverySizeMismatch, "", "spec.bootstrap.discovery.size", hint,
				"spec.bootstrap.discovery.size is %d but the plan has %d members: %s", d.Size, len(s.Members), sizeConsequence(d.Size, len(s.Members)))
		}
	case ModeDNSSRV:
		d := s.Bootstrap.DNSSRV
		if d.Domain == "" {
			a.errorf(CodeDNSDomainMissing, "", "spec.bootstrap.dnsSRV.domain", "set the domain that holds the SRV records, e.g. example.com",
				"spec.bootstrap.dnsSRV.domain is missing")
		} else if !hostnameRE.MatchString(d.Domain) || net.ParseIP(d.Domain) != nil {
			a.errorf(CodeDNSDomainInvalid, "", "spec.bootstrap.dnsSRV.domain", "use a DNS domain such as example.com",
				"spec.bootstrap.dnsSRV.domain %q is not a DNS domain", d.Domain)
		}
		if d.ServiceName != "" && !hostnameRE.MatchString(d.ServiceName) {
			a.errorf(CodeDNSDomainInvalid, "", "spec.bootstrap.dnsSRV.serviceName", "use a short label such as foo",
				"spec.bootstrap.dnsSRV.serviceName %q cannot be part of a DNS name", d.ServiceName)
		}
		for i := range s.Members {
			m := &s.Members[i]
			if m.Hostname != "" {
				continue
			}
			msg := "%s has no hostname, but dns-srv members advertise their hostname"
			if d.Advertise == AdvertiseIPs {
				msg = "%s has no hostname, and an SRV record needs a host name as its target"
			}
			a.errorf(CodeDNSHostnameMissing, m.Name, memberPath(i, "hostname"), "set hostname, e.g. "+exampleHostname(m.Name, d.Domain), msg, displayName(m.Name, i))
		}
	}
	if s.TLS.Mode == TLSSelfSigned && s.TLS.Dir == "" {
		a.errorf(CodeTLSDirMissing, "", "spec.tls.dir", "set the folder on this machine that holds (or will hold) the cluster CA and member certificates, e.g. ./pki",
			"spec.tls.mode is self-signed but spec.tls.dir is empty")
	}
}

func displayName(name string, i int) string {
	if name == "" {
		return fmt.Sprintf("member #%d", i+1)
	}
	return name
}

func exampleHostname(name, domain string) string {
	if domain == "" {
		domain = "example.com"
	}
	return name + "." + domain
}

func sizeConsequence(size, members int) string {
	if size > members {
		return "the members would wait for ever for the missing ones"
	}
	return "the extra members would be refused with \"discovery: cluster is full\""
}

func checkDiscoveryURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("the scheme must be http or https")
	}
	if u.Host == "" {
		return fmt.Errorf("the URL has no host")
	}
	if strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("the URL has no token path")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("the URL must not carry a query or fragment")
	}
	return nil
}

func (a *analysis) checkCount() {
	s := &a.q.Spec
	n := len(s.Members)
	switch {
	case n == 0:
	case n == 1:
		a.warnf(CodeSingleMember, "", "spec.members", "use three or five members to survive a failure",
			"the plan has a single member: it tolerates no failure")
	case n > 7:
		a.warnf(CodeTooManyMembers, "", "spec.members", "use five or seven voting members; more slow every write",
			"the plan has %d members; more than seven is not recommended", n)
	case n%2 == 0:
		a.warnf(CodeEvenMemberCount, "", "spec.members", fmt.Sprintf("use %d or %d members", n-1, n+1),
			"the plan has %d members: an even count tolerates no more failures than %d members", n, n-1)
	}
}

// parsedMember is a member's configuration as etcd-node reads it.
type parsedMember struct {
	mc        *MemberConfig
	cfg       *config.Config
	cluster   config.URLsMap // the cluster it bootstraps with, when known
	token     string
	boot      *config.Bootstrap
	startErr  bool // a start-up check failed
	clusterID uint64
	hasID     bool
}

// notAllowed are flags that would make the laptop-side parser do something
// other than parse: read a file here, or print help.
var notAllowed = map[string]string{
	"config-file": "a config file replaces every other flag; express its settings as flags",
	"help":        "help only prints usage",
	"h":           "help only prints usage",
	"version":     "version only prints the version",
}

var flagNameInErr = regexp.MustCompile(`-{1,2}([A-Za-z0-9][A-Za-z0-9_.-]*)`)

// checkMembers runs every member's effective configuration through the
// node's own parser and checks.
func (a *analysis) checkMembers() {
	ctx := context.Background()
	q := a.q
	resolve := q.resolver()
	parsed := make([]*parsedMember, len(a.mcs))
	for i := range a.mcs {
		mc := &a.mcs[i]
		pm := &parsedMember{mc: mc}
		parsed[i] = pm
		blocked := false
		for _, f := range mc.Flags {
			if strings.IndexFunc(f.Value, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
				blocked = true
				a.errorf(CodeInvalidFlagValue, mc.Name, f.Field, "write the value on one line without control characters",
					"%s: the value of --%s contains a control character (newline, tab, ...)", mc.Name, f.Name)
			}
			if why, bad := notAllowed[f.Name]; bad {
				blocked = true
				a.errorf(CodeFlagNotAllowed, mc.Name, f.Field, why, "%s: flag --%s cannot be used in a plan", mc.Name, f.Name)
			}
		}
		if blocked {
			pm.startErr = true
			continue
		}
		cfg, _, err := config.Parse("etcd-node", mc.Args(), nil)
		if err != nil {
			pm.startErr = true
			a.parseError(mc, err)
			continue
		}
		pm.cfg = cfg
		for _, e := range cfg.ValidateAll() {
			pm.startErr = true
			a.checkError(mc, e, SeverityError)
		}
	}
	// Discovery assembles the cluster from every registration, so the
	// members' clusters are known only once all of them are parsed.
	for _, pm := range parsed {
		if pm.cfg == nil || pm.startErr {
			continue
		}
		a.bootstrap(ctx, pm, parsed, resolve)
	}
	for _, pm := range parsed {
		if pm.cfg == nil {
			continue
		}
		a.computeClusterID(pm)
	}
	a.checkClusterIDs(parsed)
	a.checkDataDirs(parsed)
	for _, pm := range parsed {
		if pm.cfg == nil {
			continue
		}
		// etcd-node reports bootstrap mistakes before it opens listeners,
		// as the guide's first error example shows; a listener error behind
		// one is what the member would report next.
		sev := SeverityError
		if pm.startErr {
			sev = SeverityWarning
		}
		for _, e := range pm.cfg.CheckListenerTLS() {
			a.checkError(pm.mc, e, sev)
		}
		a.memberWarnings(pm)
	}
	a.clusterWarnings(parsed)
	pinned, isPinned := q.PinnedClusterID()
	for _, pm := range parsed {
		switch {
		case pm.startErr:
		case pm.mc.Member.Join:
			// The cluster assigned the ID (MemberAdd); the plan records it.
			id, _ := config.ParseID(pm.mc.Member.MemberID)
			a.ids = append(a.ids, MemberIdentity{Name: pm.mc.Name, MemberID: id, ClusterID: pinned})
		case pm.boot != nil:
			cid := pm.boot.ClusterID
			if isPinned {
				cid = pinned
			}
			a.ids = append(a.ids, MemberIdentity{Name: pm.mc.Name, MemberID: pm.boot.LocalID, ClusterID: cid})
		}
	}
}

// PinnedClusterID is spec.clusterID parsed, when it is set and valid.
func (p *Plan) PinnedClusterID() (uint64, bool) {
	if p.Spec.ClusterID == "" {
		return 0, false
	}
	id, err := config.ParseID(p.Spec.ClusterID)
	return id, err == nil && id != 0
}

func (a *analysis) parseError(mc *MemberConfig, err error) {
	msg := err.Error()
	field := mc.Field("")
	name := ""
	if m := flagNameInErr.FindStringSubmatch(msg); m != nil {
		name = m[1]
		field = mc.Field(name)
	}
	switch {
	case strings.Contains(msg, "flag provided but not defined"):
		a.errorf(CodeUnknownFlag, mc.Name, field, "remove it, or check the spelling against 'etcd-node --help'",
			"%s: --%s is not an etcd flag", mc.Name, name)
	case strings.Contains(msg, "invalid value") || strings.Contains(msg, "invalid boolean"):
		a.errorf(CodeInvalidFlagValue, mc.Name, field, "fix the value; URLs are scheme://host:port without a path",
			"%s: %s", mc.Name, strings.TrimSuffix(msg, " (see 'etcd-node --help')"))
	default:
		if strings.Contains(msg, "advertise-client-urls") {
			field = mc.Field("advertise-client-urls")
		}
		a.errorf(CodeFlagRejected, mc.Name, field, "etcd-node would refuse to start with these flags", "%s: %s", mc.Name, msg)
	}
}

// checkHints tell what to do for the node's check codes.
var checkHints = map[string]string{
	config.CodeListenURLNotIP:         "listen URLs bind an interface: use an IP address (or 0.0.0.0), never a host name; since etcd 3.2 names are refused",
	config.CodeAdvertiseURLNoHost:     "advertised URLs need a host that others can reach",
	config.CodeBootstrapFlagsConflict: "use exactly one of --initial-cluster, --discovery, --discovery-srv; spec.bootstrap.mode picks one",
	config.CodeNotInInitialCluster:    "add the member to --initial-cluster (remove the flags override to let the plan list every member)",
	config.CodeAdvertiseMismatch:      "--initial-advertise-peer-urls must equal the member's entry in --initial-cluster",
	config.CodeDuplicatePeerURL:       "every member needs its own peer URL",
	config.CodeInitialClusterUnset:    "list the members in --initial-cluster or use a discovery mode",
	config.CodeInitialClusterInvalid:  "write --initial-cluster as name=scheme://host:port pairs separated by ','",
	config.CodeHTTPSWithoutCert:       "give the member certificates (spec.tls.mode self-signed or auto) or use http URLs",
	config.CodeElectionTooShort:       "keep --election-timeout at least five times --heartbeat-interval",
	config.CodeElectionTooLong:        "keep --election-timeout under 50000 ms",
	config.CodeDiscoveryConflict:      "use either v2 discovery (--discovery) or v3 discovery (--discovery-endpoints with --discovery-token), not both",
	config.CodeDiscoveryTokenEndpoint: "v3 discovery needs both --discovery-endpoints and --discovery-token",
	config.CodeDiscoveryEndpointEmpty: "remove the empty entry (a doubled or trailing ',') from --discovery-endpoints",
	config.CodeDiscoveryFallbackProxy: "remove --discovery-fallback or set it to exit",
	config.CodeSelfSignedValidity:     "set --self-signed-cert-validity to 1 or more (years)",
	config.CodeTLSVersions:            "set --tls-min-version at or below --tls-max-version",
	config.CodeJoinWithDiscovery:      "a member joining a running cluster must not set discovery flags",
}

// defaultCheckHint is used for node check codes added after this table.
const defaultCheckHint = "etcd-node refuses to start with this configuration; fix the flag named in the field"

func (a *analysis) checkError(mc *MemberConfig, e *config.CheckError, sev Severity) {
	field := mc.Field(e.Field)
	if e.Code == config.CodeHTTPSWithoutCert {
		// The certificate flag is what is missing; the https URL is what was
		// written, so point at it.
		field = mc.Field("listen-client-urls")
		if strings.HasPrefix(e.Field, "peer-") {
			field = mc.Field("listen-peer-urls")
		}
	}
	if e.Code == config.CodeElectionTooShort {
		// The timeout may be fine and the heartbeat the override.
		if _, set := mc.Lookup("election-timeout"); !set {
			if _, hb := mc.Lookup("heartbeat-interval"); hb {
				field = mc.Field("heartbeat-interval")
			}
		}
	}
	hint, ok := checkHints[e.Code]
	if !ok {
		hint = defaultCheckHint
	}
	if e.Detail != "" {
		hint = strings.TrimSpace(e.Detail + "; " + hint)
	}
	msg := e.Msg
	if !strings.Contains(msg, mc.Name) {
		msg = mc.Name + ": " + msg
	}
	a.add(Finding{Code: e.Code, Severity: sev, Member: mc.Name, Field: field, Message: msg, Hint: hint})
}

// bootstrap runs the new-cluster checks with the cluster the member would
// bootstrap with: its --initial-cluster, or what discovery or DNS SRV would
// hand it, assembled offline from the plan.
func (a *analysis) bootstrap(ctx context.Context, pm *parsedMember, all []*parsedMember, resolve config.Resolver) {
	c := *pm.cfg
	switch {
	case c.InitialClusterState == "existing":
		if _, err := config.CheckJoinExisting(&c); err != nil {
			pm.startErr = true
			a.asCheckError(pm.mc, err)
		}
		return
	case c.Discovery != "":
		cluster, dupName := discoveredCluster(pm, all)
		if dupName != "" {
			pm.startErr = true
			a.errorf(CodeDiscoveryDuplicate, pm.mc.Name, pm.mc.Field("name"), "give every member a unique name",
				"%s: discovery would fail with \"found duplicate name\": %q registers twice at %s", pm.mc.Name, dupName, c.Discovery)
			return
		}
		c.InitialCluster, c.InitialClusterToken, c.Discovery = cluster.String(), c.Discovery, ""
	case c.DiscoverySRV != "":
		cluster, err := a.q.srvCluster(ctx, &c, resolve)
		if err != nil {
			pm.startErr = true
			a.errorf(CodeDNSSelfNotInSRV, pm.mc.Name, pm.mc.Field("initial-advertise-peer-urls"),
				"the member's advertised peer URL must resolve to one of the SRV targets; the records the plan publishes are in the dns-records-required hint",
				"%s: %v", pm.mc.Name, err)
			return
		}
		c.InitialCluster, c.DiscoverySRV = cluster, ""
	}
	b, err := config.CheckNewCluster(ctx, &c, resolve)
	if err != nil {
		pm.startErr = true
		a.asCheckError(pm.mc, err)
		return
	}
	pm.boot, pm.cluster, pm.token = b, b.Members, b.Token
}

func (a *analysis) asCheckError(mc *MemberConfig, err error) {
	if ce, ok := err.(*config.CheckError); ok {
		a.checkError(mc, ce, SeverityError)
		return
	}
	a.errorf(CodeFlagRejected, mc.Name, mc.Field("initial-cluster"), "", "%s: %v", mc.Name, err)
}

// discoveredCluster is what the discovery service returns to pm: the
// registrations (name=peer URLs) of every member using the same discovery
// URL. The second result is a name registered twice.
func discoveredCluster(pm *parsedMember, all []*parsedMember) (config.URLsMap, string) {
	cluster := config.URLsMap{}
	seen := map[string]bool{}
	dup := ""
	for _, o := range all {
		if o.cfg == nil || o.cfg.Discovery != pm.cfg.Discovery {
			continue
		}
		if seen[o.cfg.Name] && dup == "" {
			dup = o.cfg.Name
		}
		seen[o.cfg.Name] = true
		cluster[o.cfg.Name] = append(cluster[o.cfg.Name], o.cfg.InitialAdvertisePeerURLs...)
	}
	return cluster, dup
}

// computeClusterID finds the cluster ID a member would form even when its
// own checks fail, so that a conflict can be shown from both sides.
func (a *analysis) computeClusterID(pm *parsedMember) {
	if pm.boot != nil {
		pm.clusterID, pm.hasID = pm.boot.ClusterID, true
		return
	}
	if pm.cfg.UsesDiscovery() {
		return
	}
	members, err := config.ParseURLsMap(pm.cfg.InitialCluster)
	if err != nil || len(members) == 0 {
		return
	}
	pm.cluster, pm.token = members, pm.cfg.InitialClusterToken
	b := config.NewBootstrap(members, pm.cfg.InitialClusterToken, pm.cfg.Name)
	pm.clusterID, pm.hasID = b.ClusterID, true
}

// checkClusterIDs reports members whose cluster ID differs from the one most
// of the members they would contact hold: those peers answer 412 and the
// member exits with the guide's "conflicting cluster ID" error.
func (a *analysis) checkClusterIDs(parsed []*parsedMember) {
	byName := map[string]*parsedMember{}
	// A joined member takes the running cluster's ID from its peers: it
	// forms none, and is no one's evidence of one.
	var bootstrapping []*parsedMember
	for _, pm := range parsed {
		if !pm.mc.Member.Join {
			bootstrapping = append(bootstrapping, pm)
		}
	}
	parsed = bootstrapping
	for _, pm := range parsed {
		if pm.cfg != nil && pm.hasID {
			if _, ok := byName[pm.cfg.Name]; !ok {
				byName[pm.cfg.Name] = pm
			}
		}
	}
	for _, pm := range parsed {
		if pm.cfg == nil || !pm.hasID || pm.startErr {
			continue
		}
		counts := map[uint64]int{pm.clusterID: 1}
		var order []*parsedMember
		for _, o := range parsed {
			if o == pm || o.cfg == nil || !o.hasID {
				continue
			}
			if _, listed := pm.cluster[o.cfg.Name]; !listed && !pm.cfg.UsesDiscovery() && pm.mc.Mode != ModeDNSSRV {
				continue
			}
			counts[o.clusterID]++
			order = append(order, o)
		}
		// Ties go to the peer whose name sorts first, so the message does not
		// depend on the order of the members in the plan.
		sort.SliceStable(order, func(i, j int) bool { return order[i].cfg.Name < order[j].cfg.Name })
		total := len(order) + 1
		if counts[pm.clusterID]*2 > total || len(order) == 0 {
			continue
		}
		var remote *parsedMember
		for _, o := range order {
			if o.clusterID == pm.clusterID {
				continue
			}
			if remote == nil || counts[o.clusterID] > counts[remote.clusterID] {
				remote = o
			}
		}
		if remote == nil {
			continue
		}
		hint := fmt.Sprintf("%s forms cluster %s from --initial-cluster=%s with token %q, but %s forms %s from --initial-cluster=%s with token %q; give every member the same --initial-cluster and --initial-cluster-token",
			pm.mc.Name, config.IDString(pm.clusterID), pm.cluster.String(), pm.token,
			remote.mc.Name, config.IDString(remote.clusterID), remote.cluster.String(), remote.token)
		a.add(Finding{Code: config.CodeConflictingClusterID, Severity: SeverityError, Member: pm.mc.Name,
			Field: conflictField(pm.mc), Message: config.ConflictingClusterIDMessage(pm.clusterID, remote.clusterID), Hint: hint})
	}
}

// conflictField points at whichever of the member's cluster-defining flags
// is overridden, else at the plan's member list.
func conflictField(mc *MemberConfig) string {
	for _, name := range []string{"initial-cluster", "initial-cluster-token", "discovery", "discovery-srv"} {
		if f := mc.Field(name); strings.Contains(f, "flags.") {
			if _, set := mc.Lookup(name); set {
				return f
			}
		}
	}
	return "spec.members"
}

// checkDataDirs reports members that would share a data directory on one
// machine: the local ones all run here.
func (a *analysis) checkDataDirs(parsed []*parsedMember) {
	wd := a.q.workingDir()
	seen := map[string]string{}
	for _, pm := range parsed {
		if pm.cfg == nil || pm.mc.Member.Transport != TransportLocal {
			continue
		}
		dir := pm.cfg.DataDir
		if !path.IsAbs(dir) {
			dir = path.Join(wd, dir)
		}
		if other, dup := seen[dir]; dup {
			a.errorf(CodeSharedDataDir, pm.mc.Name, pm.mc.Field("data-dir"),
				"set spec.node.dataDir: \"\" (each member then uses <name>.etcd) or give the member its own flags.data-dir",
				"%s: data dir %s is also %s's, and both run on this machine", pm.mc.Name, dir, other)
			continue
		}
		seen[dir] = pm.mc.Name
	}
}

func (a *analysis) memberWarnings(pm *parsedMember) {
	mc, c := pm.mc, pm.cfg
	if mc.Member.Transport != TransportLocal {
		if !c.IsSet("advertise-client-urls") || config.JoinURLs(c.AdvertiseClientURLs) == config.DefaultAdvertiseClientURLs {
			a.warnf(CodeAdvertiseDefault, mc.Name, mc.Field("advertise-client-urls"), "advertise the member's own address, e.g. http://"+net.JoinHostPort(mc.Member.IP, strconv.Itoa(mc.Member.ClientPort)),
				"%s: advertise-client-urls is left at the default %s: remote clients cannot reach it (the guide's common mistake)", mc.Name, config.DefaultAdvertiseClientURLs)
		} else {
			for _, u := range c.AdvertiseClientURLs {
				if h := u.Hostname(); h == "localhost" || isLoopback(h) {
					a.warnf(CodeAdvertiseLocalhost, mc.Name, mc.Field("advertise-client-urls"), "advertise an address remote clients can reach, e.g. http://"+net.JoinHostPort(mc.Member.IP, strconv.Itoa(mc.Member.ClientPort)),
						"%s: advertise-client-urls %s is a loopback address: remote clients cannot reach it (the guide's common mistake)", mc.Name, u.String())
					break
				}
			}
		}
	}
	tlsOn := a.q.Spec.TLS.Mode != TLSNone
	urls := map[string][]url.URL{
		"initial-advertise-peer-urls": c.InitialAdvertisePeerURLs, "advertise-client-urls": c.AdvertiseClientURLs,
		"listen-peer-urls": c.ListenPeerURLs, "listen-client-urls": c.ListenClientURLs,
	}
	for _, flag := range []string{"initial-advertise-peer-urls", "listen-peer-urls", "listen-client-urls", "advertise-client-urls"} {
		for _, u := range urls[flag] {
			switch {
			case tlsOn && u.Scheme == "http":
				a.errorf(CodeTLSHTTPURL, mc.Name, mc.Field(flag), "use https URLs everywhere, or set spec.tls.mode: none",
					"%s: %s %s uses http although spec.tls.mode is %s", mc.Name, flag, u.String(), a.q.Spec.TLS.Mode)
			case !tlsOn && u.Scheme == "https" && !pm.tlsMissing(flag):
				a.warnf(CodeTLSUnmanagedHTTPS, mc.Name, mc.Field(flag), "set spec.tls.mode so that the wizard creates and distributes the certificates",
					"%s: %s %s uses https with certificates from flags although spec.tls.mode is none: the wizard will not distribute them", mc.Name, flag, u.String())
			default:
				continue
			}
			break
		}
	}
}

// tlsMissing reports whether the side of flag has no certificate, in which
// case the node's listener check already speaks.
func (pm *parsedMember) tlsMissing(flag string) bool {
	if strings.Contains(flag, "peer") {
		return pm.cfg.PeerTLS.Empty()
	}
	return pm.cfg.ClientTLS.Empty()
}

func (a *analysis) clusterWarnings(parsed []*parsedMember) {
	q := a.q
	inPlan := map[string]bool{}
	for _, m := range q.Spec.Members {
		inPlan[m.Name] = true
	}
	for _, pm := range parsed {
		if pm.cfg == nil {
			continue
		}
		if !pm.cfg.UsesDiscovery() && pm.cfg.InitialClusterToken == config.DefaultInitialClusterToken {
			field := pm.mc.Field("initial-cluster-token")
			member := pm.mc.Name
			if !strings.Contains(field, "flags.") {
				member = ""
			}
			a.warnf(CodeDefaultToken, member, field, "set metadata.name or spec.initialClusterToken to a name unique to this cluster",
				"the initial cluster token is etcd's default %q: clusters with the same members would get the same IDs; use a unique token per cluster", config.DefaultInitialClusterToken)
		}
		if pm.cluster != nil && pm.mc.Mode == ModeStatic {
			var foreign []string
			for _, n := range pm.cluster.Names() {
				if !inPlan[n] {
					foreign = append(foreign, n)
				}
			}
			if len(foreign) > 0 {
				a.warnf(CodeForeignMember, pm.mc.Name, pm.mc.Field("initial-cluster"), "list only the plan's members, or add the missing ones to spec.members",
					"%s: --initial-cluster lists %s, which the plan does not deploy", pm.mc.Name, strings.Join(foreign, ", "))
			}
		}
	}
	if q.Spec.Bootstrap.Mode == ModeDNSSRV {
		a.warnf(CodeDNSRecordsRequired, "", "spec.bootstrap.dnsSRV.domain", q.DNSRecords(),
			"dns-srv bootstrap needs the SRV and A records below in %s; the wizard cannot check DNS offline", q.Spec.Bootstrap.DNSSRV.Domain)
	}
}

// resolver resolves the plan's own host names to the members' IPs and
// nothing else: validation never touches the network.
func (q *Plan) resolver() config.Resolver {
	hosts := map[string]string{}
	for _, m := range q.Spec.Members {
		if m.Hostname != "" {
			hosts[strings.ToLower(strings.TrimSuffix(m.Hostname, "."))] = m.IP
		}
	}
	return func(_ context.Context, hostport string) (string, error) {
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			return "", err
		}
		ip, ok := hosts[strings.ToLower(strings.TrimSuffix(host, "."))]
		if !ok {
			return "", fmt.Errorf("%s is not a member hostname in the plan, and validation does not query DNS", host)
		}
		return net.JoinHostPort(ip, port), nil
	}
}
