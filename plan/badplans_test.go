package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// basePlan is a valid three-member static plan; the validation cases each
// break one thing in a copy of it.
const basePlan = `apiVersion: etcdctl-wizard/v1
kind: Cluster
metadata:
  name: etcd-cluster-1
spec:
  bootstrap:
    mode: static
  tls:
    mode: none
  members:
    - name: infra0
      ip: 10.0.1.10
      hostname: infra0.example.com
    - name: infra1
      ip: 10.0.1.11
      hostname: infra1.example.com
    - name: infra2
      ip: 10.0.1.12
      hostname: infra2.example.com
`

func parseBase(t *testing.T) *Plan {
	t.Helper()
	p, err := Parse([]byte(basePlan), "base.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func setFlags(m *Member, kv ...string) {
	if m.Flags == nil {
		m.Flags = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m.Flags[kv[i]] = kv[i+1]
	}
}

func toDiscovery(p *Plan) {
	p.Spec.Bootstrap.Mode = ModeDiscovery
	p.Spec.Bootstrap.Discovery = Discovery{URL: "https://myetcd.local/v2/keys/discovery/6c007a14", Size: 3}
}

func toDNS(p *Plan) {
	p.Spec.Bootstrap.Mode = ModeDNSSRV
	p.Spec.Bootstrap.DNSSRV = DNSSRV{Domain: "example.com"}
	p.Spec.Node.Listen = ListenAny
}

func addMembers(p *Plan, n int) {
	for i := len(p.Spec.Members); i < n; i++ {
		p.Spec.Members = append(p.Spec.Members, Member{Name: fmt.Sprintf("infra%d", i), IP: fmt.Sprintf("10.0.1.%d", 10+i)})
	}
}

func TestBaseplanIsClean(t *testing.T) {
	if fs := Validate(parseBase(t)); len(fs) != 0 {
		t.Fatalf("the base plan must be clean, got %+v", fs)
	}
}

// TestBadPlans breaks a plan in one way per case. Each case must produce its
// code, on the right member and field, with a message that names the member
// (or the field, for cluster-wide findings), without panicking.
func TestBadPlans(t *testing.T) {
	type want struct {
		code   string
		sev    Severity
		member string
		field  string
	}
	cases := []struct {
		name   string
		yaml   string      // a raw file (load errors); else basePlan mutated
		mutate func(*Plan) // applied to basePlan
		want   want
	}{
		// Files that do not load.
		{name: "malformed yaml", yaml: "apiVersion: etcdctl-wizard/v1\nkind: Cluster\nspec:\n  members:\n  - name: a\n   ip: [\n",
			want: want{code: CodeYAMLSyntax}},
		{name: "unknown field", yaml: strings.Replace(basePlan, "      ip: 10.0.1.11", "      adress: 10.0.1.11", 1),
			want: want{code: CodeUnknownField, field: "spec.members[1].adress"}},
		{name: "wrong type", yaml: strings.Replace(basePlan, "      ip: 10.0.1.12", "      ip: 10.0.1.12\n      peerPort: twenty", 1),
			want: want{code: CodeWrongType, field: "spec.members[2].peerPort"}},
		{name: "members not a list", yaml: strings.Replace(basePlan, "  members:\n", "  members: {}\n  nodes:\n", 1),
			want: want{code: CodeWrongType, field: "spec.members"}},
		{name: "duplicate key", yaml: strings.Replace(basePlan, "  name: etcd-cluster-1", "  name: etcd-cluster-1\n  name: again", 1),
			want: want{code: CodeDuplicateField, field: "metadata.name"}},
		{name: "two documents", yaml: basePlan + "---\n" + basePlan, want: want{code: CodeMultipleDocs}},
		{name: "empty file", yaml: "# nothing\n", want: want{code: CodeEmptyFile}},
		{name: "wrong apiVersion", yaml: strings.Replace(basePlan, "etcdctl-wizard/v1", "etcdctl-wizard/v2", 1),
			want: want{code: CodeAPIVersion, field: "apiVersion"}},
		{name: "wrong kind", yaml: strings.Replace(basePlan, "kind: Cluster", "kind: Pod", 1), want: want{code: CodeKind, field: "kind"}},
		{name: "too large", yaml: basePlan + "# " + strings.Repeat("x", MaxPlanSize) + "\n", want: want{code: CodeFileTooLarge}},

		// The plan's own rules.
		{name: "no cluster name", mutate: func(p *Plan) { p.Metadata.Name = "" },
			want: want{CodeClusterNameMissing, SeverityError, "", "metadata.name"}},
		{name: "bad bootstrap mode", mutate: func(p *Plan) { p.Spec.Bootstrap.Mode = "magic" },
			want: want{CodeBootstrapModeInvalid, SeverityError, "", "spec.bootstrap.mode"}},
		{name: "bad tls mode", mutate: func(p *Plan) { p.Spec.TLS.Mode = "mtls" },
			want: want{CodeTLSModeInvalid, SeverityError, "", "spec.tls.mode"}},
		{name: "bad listen mode", mutate: func(p *Plan) { p.Spec.Node.Listen = "everywhere" },
			want: want{CodeListenModeInvalid, SeverityError, "", "spec.node.listen"}},
		{name: "bad dns advertise", mutate: func(p *Plan) { toDNS(p); p.Spec.Bootstrap.DNSSRV.Advertise = "cnames" },
			want: want{CodeDNSAdvertiseInvalid, SeverityError, "", "spec.bootstrap.dnsSRV.advertise"}},
		{name: "relative install path", mutate: func(p *Plan) { p.Spec.Node.InstallPath = "bin/etcd-node" },
			want: want{CodeInstallPathRelative, SeverityError, "", "spec.node.installPath"}},
		{name: "relative data dir", mutate: func(p *Plan) { d := "data"; p.Spec.Node.DataDir = &d },
			want: want{CodeDataDirRelative, SeverityWarning, "", "spec.node.dataDir"}},
		{name: "no members", mutate: func(p *Plan) { p.Spec.Members = nil },
			want: want{CodeNoMembers, SeverityError, "", "spec.members"}},
		{name: "member without name", mutate: func(p *Plan) { p.Spec.Members[1].Name = "" },
			want: want{CodeMemberNameMissing, SeverityError, "", "spec.members[1].name"}},
		{name: "member name with space", mutate: func(p *Plan) { p.Spec.Members[1].Name = "infra 1" },
			want: want{CodeMemberNameInvalid, SeverityError, "infra 1", "spec.members[1].name"}},
		{name: "duplicate names", mutate: func(p *Plan) { p.Spec.Members[2].Name = "infra0" },
			want: want{CodeDuplicateMemberName, SeverityError, "infra0", "spec.members[2].name"}},
		{name: "member without ip", mutate: func(p *Plan) { p.Spec.Members[1].IP = "" },
			want: want{CodeMemberIPMissing, SeverityError, "infra1", "spec.members[1].ip"}},
		{name: "member ip not an ip", mutate: func(p *Plan) { p.Spec.Members[1].IP = "infra1.example.com" },
			want: want{CodeMemberIPInvalid, SeverityError, "infra1", "spec.members[1].ip"}},
		{name: "bad hostname", mutate: func(p *Plan) { p.Spec.Members[0].Hostname = "infra_0..example" },
			want: want{CodeHostnameInvalid, SeverityError, "infra0", "spec.members[0].hostname"}},
		{name: "bad transport", mutate: func(p *Plan) { p.Spec.Members[2].Transport = "telnet" },
			want: want{CodeTransportInvalid, SeverityError, "infra2", "spec.members[2].transport"}},
		{name: "member port out of range", mutate: func(p *Plan) { p.Spec.Members[1].PeerPort = 70000 },
			want: want{CodePortOutOfRange, SeverityError, "infra1", "spec.members[1].peerPort"}},
		{name: "node port out of range", mutate: func(p *Plan) { p.Spec.Node.ClientPort = -1 },
			want: want{CodePortOutOfRange, SeverityError, "", "spec.node.clientPort"}},
		{name: "ssh port out of range", mutate: func(p *Plan) { p.Spec.Members[0].SSH.Port = 99999 },
			want: want{CodeSSHPortOutOfRange, SeverityError, "infra0", "spec.members[0].ssh.port"}},
		{name: "bad jump host", mutate: func(p *Plan) { p.Spec.Members[0].SSH.JumpHost = "ops@:x" },
			want: want{CodeSSHJumpHostInvalid, SeverityError, "infra0", "spec.members[0].ssh.jumpHost"}},
		{name: "client port equals peer port", mutate: func(p *Plan) { p.Spec.Members[0].ClientPort = 2380 },
			want: want{CodeClientPeerPortClash, SeverityError, "infra0", "spec.members[0].clientPort"}},
		{name: "two members on one ip:port", mutate: func(p *Plan) { p.Spec.Members[1].IP = "10.0.1.10" },
			want: want{CodeDuplicateAddress, SeverityError, "infra1", "spec.members[1].peerPort"}},
		{name: "two members on one ssh host", mutate: func(p *Plan) { p.Spec.Members[1].SSH.Host = "10.0.1.10" },
			want: want{CodeSharedSSHHost, SeverityError, "infra1", "spec.members[1].ssh.host"}},
		{name: "local members sharing a data dir", mutate: func(p *Plan) {
			for i := range p.Spec.Members {
				p.Spec.Members[i].Transport = TransportLocal
			}
		}, want: want{CodeSharedDataDir, SeverityError, "infra1", "spec.node.dataDir"}},
		{name: "single member", mutate: func(p *Plan) { p.Spec.Members = p.Spec.Members[:1] },
			want: want{CodeSingleMember, SeverityWarning, "", "spec.members"}},
		{name: "even member count", mutate: func(p *Plan) { addMembers(p, 4) },
			want: want{CodeEvenMemberCount, SeverityWarning, "", "spec.members"}},
		{name: "more than seven members", mutate: func(p *Plan) { addMembers(p, 9) },
			want: want{CodeTooManyMembers, SeverityWarning, "", "spec.members"}},
		{name: "default token", mutate: func(p *Plan) { p.Metadata.Name = "etcd-cluster" },
			want: want{CodeDefaultToken, SeverityWarning, "", "spec.initialClusterToken"}},

		// Flag overrides and the node's own checks.
		{name: "config-file override", mutate: func(p *Plan) { setFlags(&p.Spec.Members[0], "config-file", "/etc/etcd.yaml") },
			want: want{CodeFlagNotAllowed, SeverityError, "infra0", "spec.members[0].flags.config-file"}},
		{name: "unknown flag", mutate: func(p *Plan) { setFlags(&p.Spec.Members[1], "initial-clustr", "x") },
			want: want{CodeUnknownFlag, SeverityError, "infra1", "spec.members[1].flags.initial-clustr"}},
		{name: "invalid flag value", mutate: func(p *Plan) { setFlags(&p.Spec.Members[1], "initial-cluster-state", "old") },
			want: want{CodeInvalidFlagValue, SeverityError, "infra1", "spec.members[1].flags.initial-cluster-state"}},
		{name: "newline in a flag", mutate: func(p *Plan) { setFlags(&p.Spec.Members[1], "log-level", "info\nwarn") },
			want: want{CodeInvalidFlagValue, SeverityError, "infra1", "spec.members[1].flags.log-level"}},
		{name: "removed v2 proxy", mutate: func(p *Plan) { setFlags(&p.Spec.Members[2], "proxy", "on") },
			want: want{CodeFlagRejected, SeverityError, "infra2", "spec.members[2].flags.proxy"}},
		{name: "listen url with a domain name", mutate: func(p *Plan) {
			setFlags(&p.Spec.Members[0], "listen-peer-urls", "http://infra0.example.com:2380")
		}, want: want{"listen-url-not-ip", SeverityError, "infra0", "spec.members[0].flags.listen-peer-urls"}},
		{name: "advertise url without host", mutate: func(p *Plan) { setFlags(&p.Spec.Members[0], "advertise-client-urls", "http://:2379") },
			want: want{"advertise-url-no-host", SeverityError, "infra0", "spec.members[0].flags.advertise-client-urls"}},
		{name: "two bootstrap methods", mutate: func(p *Plan) { setFlags(&p.Spec.Members[0], "discovery", "https://d.example.com/abc") },
			want: want{"bootstrap-flags-conflict", SeverityError, "infra0", "spec.members"}},
		{name: "election timeout too short", mutate: func(p *Plan) { p.Spec.Node.Flags = map[string]string{"heartbeat-interval": "500"} },
			want: want{"election-timeout-too-short", SeverityError, "infra0", "spec.node.flags.heartbeat-interval"}},
		{name: "election timeout too long", mutate: func(p *Plan) { setFlags(&p.Spec.Members[2], "election-timeout", "60000") },
			want: want{"election-timeout-too-long", SeverityError, "infra2", "spec.members[2].flags.election-timeout"}},
		{name: "discovery token without endpoints", mutate: func(p *Plan) { setFlags(&p.Spec.Members[1], "discovery-token", "abc") },
			want: want{"discovery-token-without-endpoints", SeverityError, "infra1", "spec.members[1].flags.discovery-token"}},
		{name: "v2 and v3 discovery together", mutate: func(p *Plan) {
			toDiscovery(p)
			setFlags(&p.Spec.Members[0], "discovery-endpoints", "10.0.0.1:2379", "discovery-token", "abc")
		}, want: want{"discovery-v2-v3-conflict", SeverityError, "infra0", "spec.bootstrap.discovery.url"}},
		{name: "https without certificates", mutate: func(p *Plan) {
			setFlags(&p.Spec.Members[0], "listen-client-urls", "https://10.0.1.10:2379", "advertise-client-urls", "https://10.0.1.10:2379")
		}, want: want{"https-without-certificate", SeverityError, "infra0", "spec.members[0].flags.listen-client-urls"}},

		// The guide's three error cases, one at a time.
		{name: "not listed in the initial cluster", mutate: func(p *Plan) {
			setFlags(&p.Spec.Members[1], "initial-cluster", "infra0=http://10.0.1.10:2380")
		}, want: want{"not-in-initial-cluster", SeverityError, "infra1", "spec.members[1].flags.initial-cluster"}},
		{name: "advertised peer url differs", mutate: func(p *Plan) {
			setFlags(&p.Spec.Members[0], "initial-advertise-peer-urls", "http://127.0.0.1:2380")
		}, want: want{"advertise-peer-urls-mismatch", SeverityError, "infra0", "spec.members[0].flags.initial-advertise-peer-urls"}},
		{name: "token differs: conflicting cluster id", mutate: func(p *Plan) {
			setFlags(&p.Spec.Members[2], "initial-cluster-token", "etcd-cluster-2")
		}, want: want{"conflicting-cluster-id", SeverityError, "infra2", "spec.members[2].flags.initial-cluster-token"}},
		{name: "duplicate peer url in the initial cluster", mutate: func(p *Plan) {
			p.Spec.Node.Flags = map[string]string{"initial-cluster": "infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380,infra9=http://10.0.1.10:2380"}
		}, want: want{"duplicate-peer-url", SeverityError, "infra0", "spec.node.flags.initial-cluster"}},
		{name: "initial cluster emptied", mutate: func(p *Plan) { setFlags(&p.Spec.Members[0], "initial-cluster", "") },
			want: want{"initial-cluster-unset", SeverityError, "infra0", "spec.members[0].flags.initial-cluster"}},
		{name: "initial cluster malformed", mutate: func(p *Plan) { setFlags(&p.Spec.Members[0], "initial-cluster", "infra0") },
			want: want{"initial-cluster-invalid", SeverityError, "infra0", "spec.members[0].flags.initial-cluster"}},
		{name: "initial cluster names a stranger", mutate: func(p *Plan) {
			p.Spec.Node.Flags = map[string]string{"initial-cluster": "infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380,infra3=http://10.0.1.13:2380"}
		}, want: want{CodeForeignMember, SeverityWarning, "infra0", "spec.node.flags.initial-cluster"}},
		{name: "advertise client on localhost", mutate: func(p *Plan) { setFlags(&p.Spec.Members[1], "advertise-client-urls", "http://127.0.0.1:2379") },
			want: want{CodeAdvertiseLocalhost, SeverityWarning, "infra1", "spec.members[1].flags.advertise-client-urls"}},
		{name: "advertise client left at the default", mutate: func(p *Plan) { setFlags(&p.Spec.Members[1], "advertise-client-urls", "http://localhost:2379") },
			want: want{CodeAdvertiseDefault, SeverityWarning, "infra1", "spec.members[1].flags.advertise-client-urls"}},

		// Discovery.
		{name: "discovery without url", mutate: func(p *Plan) { toDiscovery(p); p.Spec.Bootstrap.Discovery.URL = "" },
			want: want{CodeDiscoveryURLMissing, SeverityError, "", "spec.bootstrap.discovery.url"}},
		{name: "discovery url malformed", mutate: func(p *Plan) { toDiscovery(p); p.Spec.Bootstrap.Discovery.URL = "ftp//discovery" },
			want: want{CodeDiscoveryURLInvalid, SeverityError, "", "spec.bootstrap.discovery.url"}},
		{name: "discovery proxy malformed", mutate: func(p *Plan) { toDiscovery(p); p.Spec.Bootstrap.Discovery.Proxy = "::" },
			want: want{CodeDiscoveryProxyInvalid, SeverityError, "", "spec.bootstrap.discovery.proxy"}},
		{name: "discovery size differs", mutate: func(p *Plan) { toDiscovery(p); p.Spec.Bootstrap.Discovery.Size = 5 },
			want: want{CodeDiscoverySizeMismatch, SeverityError, "", "spec.bootstrap.discovery.size"}},
		{name: "discovery names collide", mutate: func(p *Plan) { toDiscovery(p); p.Spec.Members[2].Name = "infra0" },
			want: want{CodeDiscoveryDuplicate, SeverityError, "infra0", "spec.members[2].name"}},
		{name: "discovery names collide through flags", mutate: func(p *Plan) { toDiscovery(p); setFlags(&p.Spec.Members[2], "name", "infra0") },
			want: want{CodeDiscoveryDuplicate, SeverityError, "infra0", "spec.members[0].name"}},

		// DNS SRV.
		{name: "dns without domain", mutate: func(p *Plan) { toDNS(p); p.Spec.Bootstrap.DNSSRV.Domain = "" },
			want: want{CodeDNSDomainMissing, SeverityError, "", "spec.bootstrap.dnsSRV.domain"}},
		{name: "dns domain malformed", mutate: func(p *Plan) { toDNS(p); p.Spec.Bootstrap.DNSSRV.Domain = "exa mple.com" },
			want: want{CodeDNSDomainInvalid, SeverityError, "", "spec.bootstrap.dnsSRV.domain"}},
		{name: "dns member without hostname", mutate: func(p *Plan) { toDNS(p); p.Spec.Members[1].Hostname = "" },
			want: want{CodeDNSHostnameMissing, SeverityError, "infra1", "spec.members[1].hostname"}},
		{name: "dns listen on a name", mutate: func(p *Plan) {
			toDNS(p)
			setFlags(&p.Spec.Members[1], "listen-client-urls", "http://infra1.example.com:2379")
		}, want: want{"listen-url-not-ip", SeverityError, "infra1", "spec.members[1].flags.listen-client-urls"}},
		{name: "dns advertised address not in the records", mutate: func(p *Plan) {
			toDNS(p)
			p.Spec.Bootstrap.DNSSRV.Advertise = AdvertiseIPs
			setFlags(&p.Spec.Members[0], "initial-advertise-peer-urls", "http://10.0.1.99:2380")
		}, want: want{CodeDNSSelfNotInSRV, SeverityError, "infra0", "spec.members[0].flags.initial-advertise-peer-urls"}},
		{name: "dns records to publish", mutate: toDNS,
			want: want{CodeDNSRecordsRequired, SeverityWarning, "", "spec.bootstrap.dnsSRV.domain"}},

		// TLS.
		{name: "self-signed without a certificate dir", mutate: func(p *Plan) { p.Spec.TLS.Mode = TLSSelfSigned },
			want: want{CodeTLSDirMissing, SeverityError, "", "spec.tls.dir"}},
		{name: "http url while tls is on", mutate: func(p *Plan) {
			p.Spec.TLS.Mode = TLSAuto
			setFlags(&p.Spec.Members[0], "advertise-client-urls", "http://10.0.1.10:2379")
		}, want: want{CodeTLSHTTPURL, SeverityError, "infra0", "spec.members[0].flags.advertise-client-urls"}},
		{name: "https with own certificates while tls is off", mutate: func(p *Plan) {
			setFlags(&p.Spec.Members[0], "listen-client-urls", "https://10.0.1.10:2379", "advertise-client-urls", "https://10.0.1.10:2379",
				"cert-file", "/etc/ssl/e.crt", "key-file", "/etc/ssl/e.key")
		}, want: want{CodeTLSUnmanagedHTTPS, SeverityWarning, "infra0", "spec.members[0].flags.listen-client-urls"}},
	}

	codes := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			codes[tc.want.code] = true
			var p *Plan
			var err error
			if tc.yaml != "" {
				p, err = Parse([]byte(tc.yaml), "bad.yaml")
				var le *LoadError
				if !errors.As(err, &le) {
					t.Fatalf("want a load error %s, got plan=%v err=%v", tc.want.code, p != nil, err)
				}
				if le.Code != tc.want.code || le.Field != tc.want.field {
					t.Fatalf("got %s at %q, want %s at %q: %v", le.Code, le.Field, tc.want.code, tc.want.field, le)
				}
				if le.Msg == "" || le.Hint == "" || !strings.HasPrefix(le.Error(), "bad.yaml") {
					t.Errorf("load error lacks a message, a hint or the file name: %v", le)
				}
				if tc.want.code != CodeEmptyFile && tc.want.code != CodeFileTooLarge && le.Line == 0 {
					t.Errorf("load error has no line: %v", le)
				}
				return
			}
			p = parseBase(t)
			tc.mutate(p)
			fs := Validate(p)
			for _, f := range fs {
				if f.Code != tc.want.code {
					continue
				}
				if f.Severity != tc.want.sev || f.Member != tc.want.member || f.Field != tc.want.field {
					continue
				}
				named := tc.want.member
				if named == "" {
					named = tc.want.field
				}
				if !strings.Contains(f.Message, named) && !strings.Contains(f.Message, strings.TrimPrefix(named, "spec.")) {
					t.Errorf("message does not name %q: %s", named, f.Message)
				}
				if f.Hint == "" {
					t.Errorf("finding has no hint: %+v", f)
				}
				// Export must not panic on any plan, valid or not.
				if _, err := Export(p, FormatJSON); err != nil && !strings.Contains(err.Error(), "format") {
					t.Logf("export: %v", err)
				}
				return
			}
			t.Fatalf("want %s %s on member %q field %q; got:\n%s", tc.want.sev, tc.want.code, tc.want.member, tc.want.field, dump(fs))
		})
	}
	if len(cases) < 40 || len(codes) < 40 {
		t.Errorf("the table needs at least 40 bad plans with 40 distinct codes, has %d plans and %d codes", len(cases), len(codes))
	}
}

func dump(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s member=%q field=%q: %s\n", f.Severity, f.Code, f.Member, f.Field, f.Message)
	}
	return b.String()
}
