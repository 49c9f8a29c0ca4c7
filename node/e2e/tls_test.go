package e2e

import (
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/certs"
	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/node/nodetest/proc"
)

// tlsMember is a member started with https URLs; its plain-http metrics
// listener serves /health for the harness.
type tlsMember struct {
	spec   proc.MemberSpec
	https  string // client URL
	member *nodetest.Member
}

// startTLSCluster starts three members with the guide's TLS flags;
// flagsFor returns the TLS flags of member i.
func startTLSCluster(t *testing.T, flagsFor func(i int, name string) []string) []*tlsMember {
	t.Helper()
	bin := nodetest.BuildNode(t)
	var ms []*tlsMember
	var initial []string
	for i := 0; i < 3; i++ {
		name := "infra" + string(rune('0'+i))
		spec := nodetest.NewMemberSpec(t, name)
		metrics := nodetest.NewMemberSpec(t, name+"-metrics").ClientURL
		m := &tlsMember{spec: spec, https: strings.Replace(spec.ClientURL, "http://", "https://", 1)}
		m.spec.PeerURL = strings.Replace(spec.PeerURL, "http://", "https://", 1)
		m.spec.ClientURL = metrics // health is polled over the metrics listener
		ms = append(ms, m)
		initial = append(initial, name+"="+m.spec.PeerURL)
	}
	for i, m := range ms {
		args := []string{"--name", m.spec.Name, "--data-dir", m.spec.DataDir,
			"--initial-advertise-peer-urls", m.spec.PeerURL, "--listen-peer-urls", m.spec.PeerURL,
			"--listen-client-urls", m.https, "--advertise-client-urls", m.https,
			"--listen-metrics-urls", m.spec.ClientURL,
			"--initial-cluster-token", "etcd-cluster-1", "--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new"}
		args = append(args, flagsFor(i, m.spec.Name)...)
		m.member = nodetest.StartMember(t, nodetest.MemberOptions{Spec: m.spec, Binary: bin, Args: args})
	}
	return ms
}

func tlsCtl(t *testing.T, endpoints []string, tlsArgs []string, args ...string) (string, error) {
	t.Helper()
	_, ctl := nodetest.Upstream(t)
	full := append([]string{"--endpoints", strings.Join(endpoints, ","), "--command-timeout", "5s", "--dial-timeout", "3s"}, tlsArgs...)
	cmd := exec.Command(ctl, append(full, args...)...)
	cmd.Env = proc.CleanEnv(nil)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func endpointsOf(ms []*tlsMember) []string {
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.https)
	}
	return eps
}

// TestGuideSelfSignedTLS runs the guide's self-signed TLS cluster with
// certificates made by the wizard's own PKI (package certs) and checks which
// clients get in.
func TestGuideSelfSignedTLS(t *testing.T) {
	dir := t.TempDir()
	ca, _, err := certs.LoadOrCreateCA(dir, certs.CAOptions{Name: "etcd-cluster-1"})
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(dir, "ca.crt")
	// write(base)(certs.Issue...) stores a pair as <base>.crt/.key.
	write := func(base string) func(certs.Issued, error) (string, string) {
		return func(is certs.Issued, err error) (string, string) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			if err := certs.WriteIssued(dir, base, is); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
		}
	}
	ms := startTLSCluster(t, func(i int, name string) []string {
		spec := certs.MemberCertSpec{Name: name, IPs: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
		cert, key := write(name + "-client")(certs.IssueServer(ca, spec))
		peerCert, peerKey := write(name + "-peer")(certs.IssuePeer(ca, spec))
		return []string{"--client-cert-auth", "--trusted-ca-file=" + caPath, "--cert-file=" + cert, "--key-file=" + key,
			"--peer-client-cert-auth", "--peer-trusted-ca-file=" + caPath, "--peer-cert-file=" + peerCert, "--peer-key-file=" + peerKey}
	})
	for _, m := range ms {
		m.member.WaitHealthy()
	}
	cert, key := write("operator")(certs.IssueClient(ca, "operator"))
	good := []string{"--cacert", caPath, "--cert", cert, "--key", key}
	eps := endpointsOf(ms)
	for _, args := range [][]string{{"put", "foo", "bar"}, {"get", "foo"}, {"member", "list"}, {"endpoint", "health", "--cluster"}} {
		out, err := tlsCtl(t, eps, good, args...)
		if err != nil {
			t.Fatalf("etcdctl %v: %v\n%s", args, err, out)
		}
		if args[0] == "endpoint" && strings.Count(out, "is healthy") != 3 {
			t.Fatalf("endpoint health: %s", out)
		}
		if args[0] == "member" && strings.Count(out, "https://") != 6 {
			t.Fatalf("member list: %s", out)
		}
	}
	other, err := certs.NewCA(certs.CAOptions{Name: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	otherCert, otherKey := write("intruder")(certs.IssueClient(other, "intruder"))
	expCert, expKey := write("expired")(certs.Issue(ca, certs.Request{Kind: certs.KindClient, Name: "expired",
		NotBefore: time.Now().Add(-48 * time.Hour), Validity: time.Hour}))
	refused := []struct {
		name      string
		endpoints []string
		args      []string
	}{
		{"no client certificate", eps, []string{"--cacert", caPath}},
		{"certificate from another CA", eps, []string{"--cacert", caPath, "--cert", otherCert, "--key", otherKey}},
		{"expired certificate", eps, []string{"--cacert", caPath, "--cert", expCert, "--key", expKey}},
		{"plain http", []string{strings.Replace(eps[0], "https://", "http://", 1)}, nil},
	}
	for _, r := range refused {
		t.Run(r.name, func(t *testing.T) {
			out, err := tlsCtl(t, r.endpoints, r.args, "get", "foo")
			if err == nil || strings.Contains(out, "bar") {
				t.Fatalf("was let in: %v %s", err, out)
			}
		})
	}
}

// TestPeerTLSRefusals: a member with a peer certificate from another CA, or
// with a CN outside --peer-cert-allowed-cn, cannot join.
func TestPeerTLSRefusals(t *testing.T) {
	for _, tc := range []string{"other CA", "CN not allowed"} {
		t.Run(tc, func(t *testing.T) {
			dir := t.TempDir()
			ca := newTestCA(t, dir, "ca")
			other := newTestCA(t, dir, "other-ca")
			ms := startTLSCluster(t, func(i int, name string) []string {
				cert, key := ca.member(t, dir, name)
				peerUsages := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
				window := func() (time.Time, time.Time) { return time.Now().Add(-time.Hour), time.Now().Add(time.Hour) }
				nb, na := window()
				// Peers share one CN, the one --peer-cert-allowed-cn names.
				peerCert, peerKey := ca.issue(t, dir, name+"-peer", "etcd-peer", []string{"127.0.0.1"}, peerUsages, nb, na)
				if i == 2 {
					if tc == "other CA" {
						peerCert, peerKey = other.issue(t, dir, name+"-bad", "etcd-peer", []string{"127.0.0.1"}, peerUsages, nb, na)
					} else {
						peerCert, peerKey = ca.issue(t, dir, name+"-cn", "not-etcd", []string{"127.0.0.1"}, peerUsages, nb, na)
					}
				}
				args := []string{"--cert-file=" + cert, "--key-file=" + key, "--peer-client-cert-auth",
					"--peer-trusted-ca-file=" + ca.path, "--peer-cert-file=" + peerCert, "--peer-key-file=" + peerKey}
				if tc == "CN not allowed" {
					args = append(args, "--peer-cert-allowed-cn=etcd-peer")
				}
				return args
			})
			ms[0].member.WaitHealthy()
			ms[1].member.WaitHealthy()
			out, err := tlsCtl(t, []string{ms[0].https}, []string{"--insecure-skip-tls-verify"}, "member", "list")
			if err != nil {
				t.Fatalf("member list: %v %s", err, out)
			}
			if !strings.Contains(out, "unstarted") {
				t.Fatalf("the refused member joined: %s", out)
			}
			if !strings.Contains(ms[2].member.Logs()+ms[0].member.Logs()+ms[1].member.Logs(), "certificate") {
				t.Errorf("no certificate error in the logs")
			}
		})
	}
}

// TestGuideAutoTLS runs the guide's auto-TLS cluster; the generated
// certificates are reused after a restart.
func TestGuideAutoTLS(t *testing.T) {
	ms := startTLSCluster(t, func(int, string) []string { return []string{"--auto-tls", "--peer-auto-tls"} })
	for _, m := range ms {
		m.member.WaitHealthy()
	}
	insecure := []string{"--insecure-skip-tls-verify"}
	if out, err := tlsCtl(t, endpointsOf(ms), insecure, "put", "foo", "bar"); err != nil {
		t.Fatalf("put over auto TLS: %v %s", err, out)
	}
	fixture := filepath.Join(ms[0].spec.DataDir, "fixtures", "client", "cert.pem")
	before, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(ms[0].spec.DataDir, "fixtures", "peer", "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("peer key: %v %v", err, st)
	}
	ms[0].member.Stop()
	ms[0].member.Restart()
	ms[0].member.WaitHealthy()
	after, err := os.ReadFile(fixture)
	if err != nil || string(after) != string(before) {
		t.Fatalf("auto-TLS certificate was not reused after restart")
	}
	out, err := tlsCtl(t, []string{ms[0].https}, insecure, "get", "foo", "--print-value-only")
	if err != nil || out != "bar\n" {
		t.Fatalf("get after restart: %v %q", err, out)
	}
}

// TestBadCertificates: unusable certificate files stop the member at start
// with an error naming the file.
func TestBadCertificates(t *testing.T) {
	bin := nodetest.BuildNode(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.member(t, dir, "m")
	_, otherKey := ca.member(t, dir, "other")
	expCert, expKey := ca.issue(t, dir, "exp", "exp", []string{"127.0.0.1"}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	unreadable := filepath.Join(dir, "unreadable.crt")
	if err := os.Mkdir(unreadable, 0o700); err != nil { // a directory cannot be read as a file, even by root
		t.Fatal(err)
	}
	spec := nodetest.NewMemberSpec(t, "m")
	https := strings.Replace(spec.ClientURL, "http://", "https://", 1)
	base := []string{"--name", "m", "--data-dir", spec.DataDir, "--listen-client-urls", https, "--advertise-client-urls", https,
		"--listen-peer-urls", spec.PeerURL, "--initial-advertise-peer-urls", spec.PeerURL, "--initial-cluster", "m=" + spec.PeerURL}
	cases := []struct {
		name       string
		cert, key  string
		wantInText string
	}{
		{"missing", filepath.Join(dir, "nope.crt"), key, "nope.crt"},
		{"unreadable", unreadable, key, "unreadable.crt"},
		{"mismatched key", cert, otherKey, "are unusable together"},
		{"expired", expCert, expKey, "expired"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := nodetest.RunExpectExit(t, bin, append(base, "--cert-file", tc.cert, "--key-file", tc.key), nil, 20*time.Second)
			if code != 1 || !strings.Contains(out, tc.wantInText) || strings.Contains(out, "panic") {
				t.Fatalf("exit %d: %s (want %q)", code, out, tc.wantInText)
			}
		})
	}
}
