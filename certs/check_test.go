package certs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checkFixture is a directory with a CA and one member's peer pair, which
// each case then breaks in one way.
type checkFixture struct {
	dir, crt, key, ca string
	cluster, other    *CA
}

func newCheckFixture(t *testing.T) *checkFixture {
	t.Helper()
	dir := t.TempDir()
	ca, _, err := LoadOrCreateCA(dir, CAOptions{Name: "c"})
	if err != nil {
		t.Fatal(err)
	}
	is, err := IssuePeer(ca, MemberCertSpec{Name: "infra0", IPs: ips("10.0.1.10"), DNSNames: []string{"infra0.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteIssued(dir, "infra0-peer", is); err != nil {
		t.Fatal(err)
	}
	return &checkFixture{dir: dir, crt: filepath.Join(dir, "infra0-peer.crt"), key: filepath.Join(dir, "infra0-peer.key"),
		ca: filepath.Join(dir, CACertFile), cluster: ca, other: newTestCA(t, "other")}
}

func (f *checkFixture) replace(t *testing.T, is Issued) {
	t.Helper()
	if err := WriteIssued(f.dir, "infra0-peer", is); err != nil {
		t.Fatal(err)
	}
}

func TestCheckGood(t *testing.T) {
	f := newCheckFixture(t)
	if probs := Check(f.crt, f.key, f.ca, CheckSpec{Kind: KindPeer, IPs: ips("10.0.1.10"), DNSNames: []string{"infra0.example.com"}}); len(probs) != 0 {
		t.Errorf("problems: %v", probs)
	}
	// Kind 0 checks the chain for any usage.
	if probs := Check(f.crt, f.key, f.ca, CheckSpec{}); len(probs) != 0 {
		t.Errorf("problems: %v", probs)
	}
}

// Each way a certificate, key or CA file can be wrong gives its own
// problem, which names the file and says what to do.
func TestCheckBadInput(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, f *checkFixture) CheckSpec
		file     func(f *checkFixture) string
		code     string
		severity Severity
		want     string
	}{
		{"missing cert", func(t *testing.T, f *checkFixture) CheckSpec {
			must(t, os.Remove(f.crt))
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "missing", SeverityError, "certificate does not exist"},
		{"missing key", func(t *testing.T, f *checkFixture) CheckSpec {
			must(t, os.Remove(f.key))
			return CheckSpec{Kind: KindPeer}
		}, keyOf, "missing", SeverityError, "private key does not exist"},
		{"missing CA", func(t *testing.T, f *checkFixture) CheckSpec {
			must(t, os.Remove(f.ca))
			return CheckSpec{Kind: KindPeer}
		}, caOf, "missing", SeverityError, "CA certificate does not exist"},
		{"unreadable cert (a directory)", func(t *testing.T, f *checkFixture) CheckSpec {
			must(t, os.Remove(f.crt))
			must(t, os.Mkdir(f.crt, 0o700))
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "unreadable", SeverityError, "cannot read certificate"},
		{"empty cert", func(t *testing.T, f *checkFixture) CheckSpec {
			writeTestFile(t, f.crt, nil, 0o644)
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "not-pem", SeverityError, "is empty"},
		{"garbage cert", func(t *testing.T, f *checkFixture) CheckSpec {
			writeTestFile(t, f.crt, []byte("not a certificate\n"), 0o644)
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "bad-cert", SeverityError, "no PEM certificate found"},
		{"truncated cert", func(t *testing.T, f *checkFixture) CheckSpec {
			writeTestFile(t, f.crt, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o644)
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "bad-cert", SeverityError, "malformed certificate"},
		{"garbage key", func(t *testing.T, f *checkFixture) CheckSpec {
			writeTestFile(t, f.key, []byte{0, 1, 2, 3}, 0o600)
			return CheckSpec{Kind: KindPeer}
		}, keyOf, "bad-key", SeverityError, "no PEM private key found"},
		{"cert and key swapped", func(t *testing.T, f *checkFixture) CheckSpec {
			key, _ := os.ReadFile(f.key)
			writeTestFile(t, f.crt, key, 0o644)
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "bad-cert", SeverityError, "swapped"},
		{"encrypted key", func(t *testing.T, f *checkFixture) CheckSpec {
			writeTestFile(t, f.key, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600)
			return CheckSpec{Kind: KindPeer}
		}, keyOf, "bad-key", SeverityError, "encrypted"},
		{"key does not match cert", func(t *testing.T, f *checkFixture) CheckSpec {
			is := issueT(t, f.cluster, Request{Kind: KindPeer, Name: "infra0", IPs: ips("10.0.1.10")})
			writeTestFile(t, f.key, is.KeyPEM, 0o600)
			return CheckSpec{Kind: KindPeer}
		}, keyOf, "key-mismatch", SeverityError, "does not match the public key of"},
		{"expired cert", func(t *testing.T, f *checkFixture) CheckSpec {
			f.replace(t, issueT(t, f.cluster, Request{Kind: KindPeer, Name: "infra0", IPs: ips("10.0.1.10"),
				NotBefore: time.Now().Add(-72 * time.Hour), Validity: 24 * time.Hour}))
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "expired", SeverityError, "expired on"},
		{"not yet valid", func(t *testing.T, f *checkFixture) CheckSpec {
			f.replace(t, issueT(t, f.cluster, Request{Kind: KindPeer, Name: "infra0", IPs: ips("10.0.1.10"),
				NotBefore: time.Now().Add(48 * time.Hour)}))
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "not-yet-valid", SeverityError, "is not valid before"},
		{"expires soon", func(t *testing.T, f *checkFixture) CheckSpec {
			f.replace(t, issueT(t, f.cluster, Request{Kind: KindPeer, Name: "infra0", IPs: ips("10.0.1.10"), Validity: 10 * 24 * time.Hour}))
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "expires-soon", SeverityWarning, "in 9 days"},
		{"cert from another CA", func(t *testing.T, f *checkFixture) CheckSpec {
			f.replace(t, issueT(t, f.other, Request{Kind: KindPeer, Name: "infra0", IPs: ips("10.0.1.10")}))
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "wrong-ca", SeverityError, `was not issued by the CA in`},
		{"client cert used as peer", func(t *testing.T, f *checkFixture) CheckSpec {
			f.replace(t, issueT(t, f.cluster, Request{Kind: KindClient, Name: "infra0"}))
			return CheckSpec{Kind: KindPeer}
		}, crtOf, "usage", SeverityError, "not valid for server auth"},
		{"missing IP SAN", func(t *testing.T, f *checkFixture) CheckSpec {
			return CheckSpec{Kind: KindPeer, IPs: ips("10.0.1.11")}
		}, crtOf, "san-missing", SeverityError, "does not cover IP 10.0.1.11"},
		{"missing DNS SAN (SRV domain)", func(t *testing.T, f *checkFixture) CheckSpec {
			return CheckSpec{Kind: KindPeer, DNSNames: []string{"example.com"}}
		}, crtOf, "san-missing", SeverityError, "does not cover DNS name example.com"},
		{"key readable by others", func(t *testing.T, f *checkFixture) CheckSpec {
			must(t, os.Chmod(f.key, 0o644))
			return CheckSpec{Kind: KindPeer}
		}, keyOf, "key-permissions", SeverityWarning, "readable by others (mode 0644)"},
		{"CA is a leaf", func(t *testing.T, f *checkFixture) CheckSpec {
			crt, _ := os.ReadFile(f.crt)
			writeTestFile(t, f.ca, crt, 0o644)
			return CheckSpec{Kind: KindPeer}
		}, caOf, "not-ca", SeverityError, "is not a CA certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCheckFixture(t)
			spec := tc.setup(t, f)
			probs := Check(f.crt, f.key, f.ca, spec)
			if len(probs) != 1 {
				t.Fatalf("want exactly one problem, got %d: %v", len(probs), probs)
			}
			p := probs[0]
			if p.File != tc.file(f) || p.Code != tc.code || p.Severity != tc.severity || !strings.Contains(p.Message, tc.want) {
				t.Errorf("got %+v; want file %s, code %s, %s, message with %q", p, tc.file(f), tc.code, tc.severity, tc.want)
			}
			if p.Fix == "" {
				t.Errorf("no fix for %+v", p)
			}
			if s := p.String(); !strings.HasPrefix(s, p.File+": ") {
				t.Errorf("String %q does not start with the file", s)
			}
		})
	}
}

// The CA's own expiry: an error once expired (and the leaf with it), a
// warning when close.
func TestCheckCAExpiry(t *testing.T) {
	f := newCheckFixture(t)
	probs := Check(f.crt, f.key, f.ca, CheckSpec{Kind: KindPeer, Now: f.cluster.Cert.NotAfter.Add(time.Hour)})
	if len(probs) != 2 || probs[0].File != f.ca || probs[0].Code != "expired" || probs[1].File != f.crt || probs[1].Code != "expired" {
		t.Errorf("expired CA: %v", probs)
	}
	probs = Check(f.crt, f.key, f.ca, CheckSpec{Kind: KindPeer, Now: f.cluster.Cert.NotAfter.Add(-10 * 24 * time.Hour)})
	var caWarn bool
	for _, p := range probs {
		if p.File == f.ca && p.Code == "expires-soon" && p.Severity == SeverityWarning {
			caWarn = true
		}
	}
	if !caWarn {
		t.Errorf("CA close to expiry: %v", probs)
	}
}

// An expired certificate from another CA: both problems, and the chain
// verdict does not depend on the validity periods overlapping.
func TestCheckExpiredForeign(t *testing.T) {
	f := newCheckFixture(t)
	f.replace(t, issueT(t, f.other, Request{Kind: KindPeer, Name: "infra0", IPs: ips("10.0.1.10"),
		NotBefore: time.Now().Add(-72 * time.Hour), Validity: 24 * time.Hour}))
	probs := Check(f.crt, f.key, f.ca, CheckSpec{Kind: KindPeer})
	if len(probs) != 2 || probs[0].Code != "wrong-ca" || probs[1].Code != "expired" || probs[0].File != f.crt || probs[1].File != f.crt {
		t.Errorf("%v", probs)
	}
	// The same from the right CA is only expired.
	f.replace(t, issueT(t, f.cluster, Request{Kind: KindPeer, Name: "infra0", IPs: ips("10.0.1.10"),
		NotBefore: time.Now().Add(-72 * time.Hour), Validity: 24 * time.Hour}))
	probs = Check(f.crt, f.key, f.ca, CheckSpec{Kind: KindPeer})
	if len(probs) != 1 || probs[0].Code != "expired" {
		t.Errorf("%v", probs)
	}
}

func crtOf(f *checkFixture) string { return f.crt }
func keyOf(f *checkFixture) string { return f.key }
func caOf(f *checkFixture) string  { return f.ca }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func issueT(t *testing.T, ca *CA, r Request) Issued {
	t.Helper()
	is, err := Issue(ca, r)
	if err != nil {
		t.Fatal(err)
	}
	return is
}

func TestScanDir(t *testing.T) {
	f := newCheckFixture(t)
	ca := f.cluster
	write := func(base string, is Issued) {
		t.Helper()
		if err := WriteIssued(f.dir, base, is); err != nil {
			t.Fatal(err)
		}
	}
	write("infra0-client", issueT(t, ca, Request{Kind: KindServer, Name: "infra0", IPs: ips("10.0.1.10", "127.0.0.1")}))
	write("admin", issueT(t, ca, Request{Kind: KindClient, Name: "admin"}))
	write("foreign", issueT(t, f.other, Request{Kind: KindClient, Name: "foreign"}))
	write("old", issueT(t, ca, Request{Kind: KindClient, Name: "old", NotBefore: time.Now().Add(-72 * time.Hour), Validity: 24 * time.Hour}))
	// A client certificate under a member's client-port name lacks server auth.
	write("infra1-client", issueT(t, ca, Request{Kind: KindClient, Name: "infra1"}))
	must(t, os.Remove(filepath.Join(f.dir, "admin.key")))
	// CA copies under the guide's names: one right, one from another CA.
	writeTestFile(t, filepath.Join(f.dir, "ca-peer.crt"), ca.CertPEM, 0o644)
	writeTestFile(t, filepath.Join(f.dir, "ca-client.crt"), f.other.CertPEM, 0o644)

	rep, err := ScanDir(f.dir, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.CA == nil || rep.CA.Subject != "c etcd CA" || rep.CA.Kind != "ca" {
		t.Errorf("CA %+v", rep.CA)
	}
	type row struct {
		kind    string
		chainOK bool
		codes   string
	}
	want := map[string]row{
		"admin.crt":         {"client", true, "missing"},
		"ca-client.crt":     {"ca", false, "wrong-ca"},
		"ca-peer.crt":       {"ca", true, ""},
		"foreign.crt":       {"client", false, "wrong-ca"},
		"infra0-client.crt": {"server", true, ""},
		"infra0-peer.crt":   {"peer", true, ""},
		"infra1-client.crt": {"server", false, "usage"},
		"old.crt":           {"client", true, "expired"},
	}
	if len(rep.Certs) != len(want) {
		t.Fatalf("%d certificates, want %d: %+v", len(rep.Certs), len(want), rep.Certs)
	}
	for _, c := range rep.Certs {
		var codes []string
		for _, p := range c.Problems {
			codes = append(codes, p.Code)
		}
		got := row{c.Kind, c.ChainOK, strings.Join(codes, ",")}
		if w := want[filepath.Base(c.File)]; got != w {
			t.Errorf("%s: %+v, want %+v", filepath.Base(c.File), got, w)
		}
	}
	if rep.ProblemCount() != 5 || len(rep.Problems) != 0 {
		t.Errorf("%d problems (%v in the dir), want 5", rep.ProblemCount(), rep.Problems)
	}
	if c := rep.Certs[4]; c.DaysLeft < 363 || c.DaysLeft > 365 || len(c.IPs) != 2 || c.Subject != "infra0" {
		t.Errorf("infra0-client: %+v", c)
	}
	if c := rep.Certs[len(rep.Certs)-1]; c.DaysLeft != -2 {
		t.Errorf("old.crt: %d days left, want -2", c.DaysLeft)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Error(err)
	}

	// Directory-level problems: a missing CA once, not once per file; a
	// CA key readable by others or not matching.
	must(t, os.Chmod(filepath.Join(f.dir, CAKeyFile), 0o644))
	rep, _ = ScanDir(f.dir, ScanOptions{})
	if len(rep.Problems) != 1 || rep.Problems[0].Code != "key-permissions" {
		t.Errorf("dir problems %v", rep.Problems)
	}
	writeTestFile(t, filepath.Join(f.dir, CAKeyFile), f.other.keyPEM, 0o600)
	rep, _ = ScanDir(f.dir, ScanOptions{})
	if len(rep.Problems) != 1 || rep.Problems[0].Code != "key-mismatch" {
		t.Errorf("dir problems %v", rep.Problems)
	}
	must(t, os.Remove(f.ca))
	rep, _ = ScanDir(f.dir, ScanOptions{})
	if rep.CA != nil || len(rep.Problems) != 1 || rep.Problems[0].Code != "missing" || rep.Problems[0].File != f.ca {
		t.Errorf("dir problems %v", rep.Problems)
	}
	for _, c := range rep.Certs {
		if c.ChainOK {
			t.Errorf("%s: chain OK without a CA", c.File)
		}
	}
	// A host's copy holds no ca.key: that is fine.
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, CACertFile), ca.CertPEM, 0o644)
	if rep, _ := ScanDir(dir, ScanOptions{}); rep.ProblemCount() != 0 {
		t.Errorf("ca.crt alone: %v", rep.Problems)
	}
	if _, err := ScanDir(filepath.Join(dir, "nope"), ScanOptions{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing dir: %v", err)
	}
}

func TestInspect(t *testing.T) {
	f := newCheckFixture(t)
	ci, err := Inspect(f.crt)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Subject != "infra0" || ci.Kind != "peer" || ci.Issuer != "c etcd CA" || strings.Join(ci.Usages, ",") != "server auth,client auth" {
		t.Errorf("%+v", ci)
	}
	if _, err := Inspect(f.key); err == nil || !strings.Contains(err.Error(), f.key) {
		t.Errorf("key as certificate: %v", err)
	}
}
