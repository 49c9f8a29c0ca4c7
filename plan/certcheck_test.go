package plan

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"etcdctl-wizard/certs"
)

func TestValidateCertificates(t *testing.T) {
	dir := t.TempDir()
	p := mustLoad(t, filepath.Join(plansDir, "tls-self-signed.yaml"))
	p.Spec.TLS.Dir = dir
	ca, _, err := certs.LoadOrCreateCA(dir, certs.CAOptions{Name: "etcd-cluster-1"})
	if err != nil {
		t.Fatal(err)
	}
	// The guide's plan names the CA ca-client.crt and ca-peer.crt on the hosts.
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ca-client.crt", "ca-peer.crt"} {
		if err := os.WriteFile(filepath.Join(dir, n), caPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// No member certificates yet: each member gets a "missing" finding with
	// the command that issues them.
	fs := ValidateCertificates(p, "")
	if len(fs) == 0 || !strings.Contains(fs[0].Hint, "etcdctl-wizard certs issue --dir") {
		t.Fatalf("missing certificates: %+v", fs)
	}
	issue := func(name, ip, host string, ips []net.IP) {
		spec := certs.MemberCertSpec{Name: name, IPs: ips, DNSNames: []string{host, "localhost"}}
		peer, err := certs.IssuePeer(ca, spec)
		if err != nil {
			t.Fatal(err)
		}
		server, err := certs.IssueServer(ca, spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := certs.WriteIssued(dir, name+"-peer", peer); err != nil {
			t.Fatal(err)
		}
		if err := certs.WriteIssued(dir, name+"-client", server); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{"infra0", "infra1", "infra2"} {
		ip := "10.0.1.1" + string(rune('0'+i))
		issue(name, ip, name+".example.com", []net.IP{net.ParseIP(ip), net.ParseIP("127.0.0.1")})
	}
	if fs := ValidateCertificates(p, ""); len(fs) != 0 {
		t.Fatalf("good certificates reported: %+v", fs)
	}
	// infra1's certificates lack 127.0.0.1, on which its client URL listens.
	issue("infra1", "10.0.1.11", "infra1.example.com", []net.IP{net.ParseIP("10.0.1.11")})
	fs = ValidateCertificates(p, "")
	if len(fs) == 0 || fs[0].Member != "infra1" || fs[0].Code != CodeCertProblem || !strings.Contains(fs[0].Message, "127.0.0.1") {
		t.Fatalf("missing SAN not reported for infra1: %+v", fs)
	}
	// A key that belongs to another certificate.
	key, _ := os.ReadFile(filepath.Join(dir, "infra0-peer.key"))
	if err := os.WriteFile(filepath.Join(dir, "infra2-peer.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range ValidateCertificates(p, "") {
		if f.Member == "infra2" && strings.Contains(f.Message, "infra2-peer") {
			found = true
		}
	}
	if !found {
		t.Fatal("mismatched key of infra2 not reported")
	}
}
