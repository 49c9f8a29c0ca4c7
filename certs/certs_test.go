package certs

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// newTestCA makes an in-memory CA; ECDSA P-256 keeps it to a millisecond.
func newTestCA(t *testing.T, name string) *CA {
	t.Helper()
	ca, err := NewCA(CAOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func ips(ss ...string) []net.IP {
	out := make([]net.IP, len(ss))
	for i, s := range ss {
		out[i] = net.ParseIP(s)
		if v4 := out[i].To4(); v4 != nil {
			out[i] = v4
		}
	}
	return out
}

func ipStrings(in []net.IP) []string {
	out := make([]string, len(in))
	for i, ip := range in {
		out[i] = ip.String()
	}
	return out
}

// verify runs x509.Verify against ca for one usage and, when host is not
// empty, one host name or IP.
func verify(ca *CA, c *x509.Certificate, eku x509.ExtKeyUsage, host string) error {
	_, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host, KeyUsages: []x509.ExtKeyUsage{eku}})
	return err
}

// The guide's three members, with their plan-derived SANs, with and without
// DNS SRV discovery: peer and client-port certificates verify against the
// CA for server and client auth and carry exactly the derived SANs.
func TestGuideMemberCertificates(t *testing.T) {
	ca := newTestCA(t, "etcd-cluster-1")
	type member struct{ name, ip, host string }
	members := []member{
		{"infra0", "10.0.1.10", "infra0.example.com"},
		{"infra1", "10.0.1.11", "infra1.example.com"},
		{"infra2", "10.0.1.12", "infra2.example.com"},
	}
	for _, srv := range []string{"", "example.com"} {
		for _, m := range members {
			t.Run(m.name+"/srv="+srv, func(t *testing.T) {
				// As the plan renders the guide: listen and advertise on
				// the member IP, the client port also on 127.0.0.1; in
				// SRV mode the advertised host is the host name.
				advertise := m.ip
				if srv != "" {
					advertise = m.host
				}
				peerIPs, peerDNS := SANsForMember(m.ip, m.host, []string{"https://" + m.ip + ":2380"}, []string{"https://" + advertise + ":2380"}, srv)
				srvIPs, srvDNS := SANsForMember(m.ip, m.host, []string{m.ip, "127.0.0.1"}, []string{advertise}, srv)

				wantPeerDNS := []string{m.host}
				wantSrvDNS := []string{m.host, "localhost"}
				if srv != "" {
					wantPeerDNS = append(wantPeerDNS, srv)
					wantSrvDNS = append(wantSrvDNS, srv)
				}
				for _, tc := range []struct {
					kind    Kind
					issue   func(*CA, MemberCertSpec) (Issued, error)
					ips     []net.IP
					dns     []string
					wantIPs []string
					wantDNS []string
				}{
					{KindPeer, IssuePeer, peerIPs, peerDNS, []string{m.ip}, wantPeerDNS},
					{KindServer, IssueServer, srvIPs, srvDNS, []string{m.ip, "127.0.0.1"}, wantSrvDNS},
				} {
					is, err := tc.issue(ca, MemberCertSpec{Name: m.name, IPs: tc.ips, DNSNames: tc.dns})
					if err != nil {
						t.Fatalf("%s: %v", tc.kind, err)
					}
					c := is.Cert
					if got := ipStrings(c.IPAddresses); !slices.Equal(got, tc.wantIPs) {
						t.Errorf("%s IP SANs %v, want %v", tc.kind, got, tc.wantIPs)
					}
					if !slices.Equal(c.DNSNames, tc.wantDNS) {
						t.Errorf("%s DNS SANs %v, want %v", tc.kind, c.DNSNames, tc.wantDNS)
					}
					if c.Subject.CommonName != m.name {
						t.Errorf("%s CN %q, want %q (--peer-cert-allowed-cn matches it)", tc.kind, c.Subject.CommonName, m.name)
					}
					for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
						for _, host := range append(append([]string{}, tc.wantIPs...), tc.wantDNS...) {
							if err := verify(ca, c, eku, host); err != nil {
								t.Errorf("%s for %s as %s: %v", tc.kind, host, ekuName(eku), err)
							}
						}
					}
					// A name outside the SANs must not verify: in
					// particular the SRV domain without SRV mode.
					for _, other := range []string{"example.com", "infra9.example.com", "10.0.1.99"} {
						if slices.Contains(tc.wantDNS, other) {
							continue
						}
						if err := verify(ca, c, x509.ExtKeyUsageServerAuth, other); err == nil {
							t.Errorf("%s verifies for %s, which is not a SAN", tc.kind, other)
						}
					}
					if c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
						t.Errorf("%s lacks digital signature key usage", tc.kind)
					}
					if c.IsCA {
						t.Errorf("%s is a CA", tc.kind)
					}
				}
			})
		}
	}
}

func TestClientCertificateIsClientAuthOnly(t *testing.T) {
	ca := newTestCA(t, "c")
	is, err := IssueClient(ca, "root")
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(ca, is.Cert, x509.ExtKeyUsageClientAuth, ""); err != nil {
		t.Errorf("client auth: %v", err)
	}
	err = verify(ca, is.Cert, x509.ExtKeyUsageServerAuth, "")
	var inv x509.CertificateInvalidError
	if !errors.As(err, &inv) || inv.Reason != x509.IncompatibleUsage {
		t.Errorf("server auth: %v, want incompatible usage", err)
	}
	if len(is.Cert.IPAddresses)+len(is.Cert.DNSNames) != 0 {
		t.Errorf("client certificate has SANs %v %v", is.Cert.IPAddresses, is.Cert.DNSNames)
	}
	if is.Cert.Subject.CommonName != "root" {
		t.Errorf("CN %q: etcd's RBAC takes the CN as the user", is.Cert.Subject.CommonName)
	}
	// A certificate from another CA does not verify against this one.
	other := newTestCA(t, "other")
	is2, err := IssueClient(other, "root")
	if err != nil {
		t.Fatal(err)
	}
	var ua x509.UnknownAuthorityError
	if err := verify(ca, is2.Cert, x509.ExtKeyUsageClientAuth, ""); !errors.As(err, &ua) {
		t.Errorf("other CA's client: %v, want unknown authority", err)
	}
}

func TestValidity(t *testing.T) {
	ca := newTestCA(t, "c")
	now := time.Now()
	is, err := IssueClient(ca, "a")
	if err != nil {
		t.Fatal(err)
	}
	if d := is.Cert.NotAfter.Sub(now); d < DefaultCertValidity-time.Minute || d > DefaultCertValidity+time.Minute {
		t.Errorf("default validity %s, want about %s", d, DefaultCertValidity)
	}
	if d := ca.Cert.NotAfter.Sub(now); d < DefaultCAValidity-10*time.Minute || d > DefaultCAValidity+10*time.Minute {
		t.Errorf("CA validity %s, want about %s", d, DefaultCAValidity)
	}
	if !is.Cert.NotBefore.Before(now) || is.Cert.NotBefore.Before(ca.Cert.NotBefore) {
		t.Errorf("not before %s: want backdated, but not before the CA's %s", is.Cert.NotBefore, ca.Cert.NotBefore)
	}
	// Never longer than the CA's remaining validity.
	is, err = Issue(ca, Request{Kind: KindClient, Name: "b", Validity: 10 * DefaultCAValidity})
	if err != nil {
		t.Fatal(err)
	}
	if !is.Cert.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("not after %s, want the CA's %s", is.Cert.NotAfter, ca.Cert.NotAfter)
	}
	is, err = Issue(ca, Request{Kind: KindPeer, Name: "c", IPs: ips("10.0.0.1"), Validity: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if d := is.Cert.NotAfter.Sub(now); d < 47*time.Hour || d > 49*time.Hour {
		t.Errorf("validity %s, want 48h", d)
	}
	// An expired CA issues nothing.
	if _, err := issue(ca, Request{Kind: KindClient, Name: "d"}, ca.Cert.NotAfter.Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired CA: %v", err)
	}
}

// Bad requests are refused before anything is generated, with a message
// that names the problem.
func TestIssueBadInput(t *testing.T) {
	ca := newTestCA(t, "c")
	for _, tc := range []struct {
		name string
		ca   *CA
		req  Request
		want string
	}{
		{"no CA", nil, Request{Kind: KindClient, Name: "a"}, "no CA"},
		{"CA without key", &CA{Cert: ca.Cert}, Request{Kind: KindClient, Name: "a"}, "no CA"},
		{"empty name", ca, Request{Kind: KindClient}, "name is empty"},
		{"slash in name", ca, Request{Kind: KindClient, Name: "../x"}, "use letters"},
		{"long name", ca, Request{Kind: KindClient, Name: strings.Repeat("a", 65)}, "longer than 64"},
		{"unknown kind", ca, Request{Kind: 9, Name: "a"}, "unknown certificate kind"},
		{"server without SANs", ca, Request{Kind: KindServer, Name: "a"}, "needs at least one IP address or DNS name"},
		{"peer without SANs", ca, Request{Kind: KindPeer, Name: "a"}, "needs at least one"},
		{"0.0.0.0", ca, Request{Kind: KindPeer, Name: "a", IPs: ips("0.0.0.0")}, "0.0.0.0 is not a valid SAN"},
		{"::", ca, Request{Kind: KindPeer, Name: "a", IPs: ips("::")}, ":: is not a valid SAN"},
		{"nil IP", ca, Request{Kind: KindPeer, Name: "a", IPs: []net.IP{nil}}, "invalid IP"},
		{"IP as DNS", ca, Request{Kind: KindPeer, Name: "a", DNSNames: []string{"10.0.0.1"}}, "is an IP address"},
		{"bad DNS", ca, Request{Kind: KindPeer, Name: "a", DNSNames: []string{"foo:bar"}}, "labels hold"},
		{"empty DNS label", ca, Request{Kind: KindPeer, Name: "a", DNSNames: []string{"a..b"}}, "empty or over-long label"},
		{"negative validity", ca, Request{Kind: KindClient, Name: "a", Validity: -time.Hour}, "negative"},
		{"bad key", ca, Request{Kind: KindClient, Name: "a", Key: KeySpec{Algo: "dsa"}}, `key algorithm "dsa"`},
		{"bad curve", ca, Request{Kind: KindClient, Name: "a", Key: KeySpec{Algo: "ecdsa", Size: 224}}, "use 256, 384 or 521"},
	} {
		_, err := Issue(tc.ca, tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// cfssl silently drops usages it does not know; the package refuses them.
func TestValidateUsages(t *testing.T) {
	for _, k := range []Kind{KindPeer, KindServer, KindClient} {
		if err := validateUsages(k.usages()); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	for _, tc := range []struct {
		usages []string
		want   string
	}{
		{nil, "no key usages"},
		{[]string{"server auth", "serverAuth"}, `unknown key usage "serverAuth"`},
		{[]string{"client-auth", "signing"}, `"client-auth"`},
	} {
		if err := validateUsages(tc.usages); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.usages, err, tc.want)
		}
	}
	ca := newTestCA(t, "c")
	_, _, err := newEngine().sign(ca, leafRequest{CommonName: "x", Key: KeySpec{"ecdsa", 256}, Usages: []string{"client auth", "bogus"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)})
	if err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("engine with a bogus usage: %v", err)
	}
}

// cfssl logs every signature at INFO through the standard logger; that
// must never reach the terminal.
func TestCFSSLIsSilent(t *testing.T) {
	var buf bytes.Buffer
	log.SetOutput(&buf)
	defer log.SetOutput(os.Stderr)
	ca := newTestCA(t, "quiet")
	if _, err := IssuePeer(ca, MemberCertSpec{Name: "a", IPs: ips("10.0.0.1")}); err != nil {
		t.Fatal(err)
	}
	// Errors inside cfssl are logged at ERROR level too: still silent.
	if _, err := NewCA(CAOptions{Key: KeySpec{Algo: "rsa", Size: 1024}}); err == nil {
		t.Error("RSA-1024 CA accepted")
	}
	if buf.Len() != 0 {
		t.Errorf("cfssl wrote to the log: %q", buf.String())
	}
}

func TestKeyAlgorithms(t *testing.T) {
	for _, k := range []KeySpec{{}, {Algo: "ecdsa", Size: 384}, {Algo: "rsa"}} {
		ca, err := NewCA(CAOptions{Name: "k", Key: k})
		if err != nil {
			t.Fatalf("%+v: %v", k, err)
		}
		is, err := Issue(ca, Request{Kind: KindServer, Name: "m", IPs: ips("10.0.0.1"), Key: k})
		if err != nil {
			t.Fatalf("%+v: %v", k, err)
		}
		want := x509.ECDSA
		if k.Algo == "rsa" {
			want = x509.RSA
		}
		if ca.Cert.PublicKeyAlgorithm != want || is.Cert.PublicKeyAlgorithm != want {
			t.Errorf("%+v: CA %s, leaf %s", k, ca.Cert.PublicKeyAlgorithm, is.Cert.PublicKeyAlgorithm)
		}
	}
}

func TestNewCAOptions(t *testing.T) {
	ca, err := NewCA(CAOptions{Name: "etcd-cluster-1", Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if cn := ca.Cert.Subject.CommonName; cn != "etcd-cluster-1 etcd CA" {
		t.Errorf("CN %q", cn)
	}
	if !ca.Cert.IsCA || !ca.Cert.MaxPathLenZero || ca.Cert.MaxPathLen != 0 {
		t.Errorf("IsCA %v, path length %d (zero %v): want a CA that signs leaves only", ca.Cert.IsCA, ca.Cert.MaxPathLen, ca.Cert.MaxPathLenZero)
	}
	if d := time.Until(ca.Cert.NotAfter); d > 25*time.Hour || d < 23*time.Hour {
		t.Errorf("validity %s, want 24h", d)
	}
	for _, tc := range []struct {
		opts CAOptions
		want string
	}{
		{CAOptions{Validity: time.Minute}, "too short"},
		{CAOptions{Name: strings.Repeat("x", 60)}, "longer than 64"},
		{CAOptions{Key: KeySpec{Algo: "rsa", Size: 1024}}, "use 2048 to 8192"},
	} {
		if _, err := NewCA(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.opts, err, tc.want)
		}
	}
}

func TestLoadOrCreateCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki", "cluster")
	ca, created, err := LoadOrCreateCA(dir, CAOptions{Name: "c1"})
	if err != nil || !created {
		t.Fatalf("first: created %v, %v", created, err)
	}
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{dir, DirMode}, {filepath.Join(dir, CAKeyFile), KeyMode}, {filepath.Join(dir, CACertFile), CertMode}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %04o, want %04o", f.path, fi.Mode().Perm(), f.mode)
		}
	}
	// Reuse: the same CA, whatever the options now say.
	again, created, err := LoadOrCreateCA(dir, CAOptions{Name: "other"})
	if err != nil || created {
		t.Fatalf("second: created %v, %v", created, err)
	}
	if !again.Cert.Equal(ca.Cert) || !keyMatches(again.Cert, ca.key) || again.Dir != dir {
		t.Error("second call returned a different CA")
	}
	// Certificates issued by either copy chain to the other.
	is, err := IssueClient(again, "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(ca, is.Cert, x509.ExtKeyUsageClientAuth, ""); err != nil {
		t.Error(err)
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("dir holds %d entries, want ca.crt and ca.key", len(entries))
	}
	if ca.CertPath() != filepath.Join(dir, CACertFile) {
		t.Errorf("CertPath %q", ca.CertPath())
	}
}

// Broken CA directories are errors that name the file; none is
// overwritten.
func TestLoadOrCreateCABadInput(t *testing.T) {
	good := newTestCA(t, "good")
	other := newTestCA(t, "other")
	leaf, err := IssueServer(good, MemberCertSpec{Name: "m", IPs: ips("10.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		crt, key []byte // nil: absent
		wantFile string
		want     string
	}{
		{"cert without key", good.CertPEM, nil, CAKeyFile, "CA key does not exist"},
		{"key without cert", nil, good.keyPEM, CACertFile, "CA certificate does not exist"},
		{"garbage cert", []byte("hello\n"), good.keyPEM, CACertFile, "no PEM certificate"},
		{"empty cert", []byte{}, good.keyPEM, CACertFile, "is empty"},
		{"garbage key", good.CertPEM, []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"), CAKeyFile, "malformed private key"},
		{"swapped", good.keyPEM, good.CertPEM, CACertFile, "swapped"},
		{"key of another CA", good.CertPEM, other.keyPEM, CAKeyFile, "does not match"},
		{"leaf as CA", leaf.CertPEM, leaf.KeyPEM, CACertFile, "is not a CA certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.crt != nil {
				writeTestFile(t, filepath.Join(dir, CACertFile), tc.crt, 0o644)
			}
			if tc.key != nil {
				writeTestFile(t, filepath.Join(dir, CAKeyFile), tc.key, 0o600)
			}
			_, created, err := LoadOrCreateCA(dir, CAOptions{})
			var fe *FileError
			if err == nil || created || !errors.As(err, &fe) {
				t.Fatalf("created %v, err %v; want a FileError", created, err)
			}
			if fe.File != filepath.Join(dir, tc.wantFile) || !strings.Contains(err.Error(), tc.want) || fe.Fix == "" {
				t.Errorf("error %q (file %s, fix %q); want file %s and %q", err, fe.File, fe.Fix, tc.wantFile, tc.want)
			}
			// Nothing was replaced.
			if tc.crt != nil {
				if b, _ := os.ReadFile(filepath.Join(dir, CACertFile)); !bytes.Equal(b, tc.crt) {
					t.Error("ca.crt changed")
				}
			}
			if tc.key != nil {
				if b, _ := os.ReadFile(filepath.Join(dir, CAKeyFile)); !bytes.Equal(b, tc.key) {
					t.Error("ca.key changed")
				}
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		dir := t.TempDir()
		writeTestFile(t, filepath.Join(dir, CACertFile), good.CertPEM, 0o644)
		writeTestFile(t, filepath.Join(dir, CAKeyFile), good.keyPEM, 0o600)
		_, err := loadCA(dir, good.Cert.NotAfter.Add(time.Hour))
		if err == nil || !strings.Contains(err.Error(), "ca.crt: the CA expired on") {
			t.Errorf("%v", err)
		}
	})
	t.Run("dir is a file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "f")
		writeTestFile(t, f, []byte("x"), 0o644)
		if _, _, err := LoadOrCreateCA(f, CAOptions{}); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("%v", err)
		}
	})
	t.Run("no dir", func(t *testing.T) {
		if _, _, err := LoadOrCreateCA("", CAOptions{}); err == nil {
			t.Error("empty dir accepted")
		}
		if _, err := LoadCA(t.TempDir()); err == nil || !strings.Contains(err.Error(), "certs init") {
			t.Errorf("LoadCA of an empty dir: %v", err)
		}
	})
}

func writeTestFile(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestWriteIssued(t *testing.T) {
	ca := newTestCA(t, "c")
	is, err := IssuePeer(ca, MemberCertSpec{Name: "infra0", IPs: ips("10.0.1.10")})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteIssued(dir, "infra0-peer", is); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"infra0-peer.crt": CertMode, "infra0-peer.key": KeyMode, ".": DirMode} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %04o, want %04o", name, fi.Mode().Perm(), mode)
		}
	}
	if probs := Check(filepath.Join(dir, "infra0-peer.crt"), filepath.Join(dir, "infra0-peer.key"), writeCA(t, ca), CheckSpec{Kind: KindPeer, IPs: ips("10.0.1.10")}); len(probs) != 0 {
		t.Errorf("written pair has problems: %v", probs)
	}
	// Replacing works and leaves no temporary files.
	is2, err := IssuePeer(ca, MemberCertSpec{Name: "infra0", IPs: ips("10.0.1.10")})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteIssued(dir, "infra0-peer", is2); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "infra0-peer.crt")); !bytes.Equal(b, is2.CertPEM) {
		t.Error("certificate not replaced")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("%d entries, want 2", len(entries))
	}
	for _, tc := range []struct {
		base string
		is   Issued
		want string
	}{
		{"ca", is, "would replace the CA"},
		{"../x", is, "use letters"},
		{"", is, "empty"},
		{"x", Issued{CertPEM: is.CertPEM, KeyPEM: is2.KeyPEM}, "does not match"},
		{"x", Issued{CertPEM: []byte("junk"), KeyPEM: is.KeyPEM}, "x.crt"},
		{"x", Issued{CertPEM: is.CertPEM, KeyPEM: []byte("junk")}, "x.key"},
	} {
		if err := WriteIssued(dir, tc.base, tc.is); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.base, err, tc.want)
		}
	}
}

// writeCA saves ca.crt only (as on a host) and returns its path.
func writeCA(t *testing.T, ca *CA) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), CACertFile)
	writeTestFile(t, p, ca.CertPEM, 0o644)
	return p
}

// Printing a CA or an issued pair must not print a private key.
func TestNoKeyInFormatting(t *testing.T) {
	ca := newTestCA(t, "c")
	is, err := IssueClient(ca, "a")
	if err != nil {
		t.Fatal(err)
	}
	out := fmt.Sprintf("%v %+v %#v %s %v %+v %#v", ca, ca, ca, *ca, is, is, is)
	if strings.Contains(out, "PRIVATE") || strings.Contains(out, "D:") {
		t.Errorf("formatting shows key material: %.200s", out)
	}
	if !strings.Contains(out, `"c etcd CA"`) {
		t.Errorf("formatting lost the name: %.200s", out)
	}
}
