package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCertsWorkflow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	steps := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"certs", "init", "--dir", dir, "--name", "etcd-cluster-1"}, 0,
			[]string{`created CA "etcd-cluster-1 etcd CA"`, "keep ca.key on this machine"}},
		{[]string{"certs", "init", "--dir", dir}, 0, []string{`reusing CA "etcd-cluster-1 etcd CA"`}},
		{[]string{"certs", "issue", "--dir", dir, "--member", "infra0", "--ip", "10.0.1.10", "--hostname", "infra0.example.com", "--srv-domain", "example.com"}, 0,
			[]string{"wrote infra0-peer.crt and infra0-peer.key: peer certificate for infra0 (server and client auth), SANs 10.0.1.10, infra0.example.com, example.com,",
				"wrote infra0-client.crt and infra0-client.key: client-port certificate for infra0 (server and client auth), SANs 10.0.1.10, 127.0.0.1, infra0.example.com, localhost, example.com,"}},
		// Idempotent: a valid pair is kept.
		{[]string{"certs", "issue", "--dir", dir, "--member", "infra0", "--ip", "10.0.1.10", "--hostname", "infra0.example.com", "--srv-domain", "example.com"}, 0,
			[]string{"kept infra0-peer.crt and infra0-peer.key", "kept infra0-client.crt"}},
		// A different address does not fit: refused without --force,
		// and nothing is written.
		{[]string{"certs", "issue", "--dir", dir, "--member", "infra0", "--ip", "10.0.1.20"}, 1,
			[]string{"infra0-peer.crt already exists and does not fit the request", "does not cover IP 10.0.1.20", "use --force"}},
		{[]string{"certs", "issue", "--dir", dir, "--member", "infra0", "--ip", "10.0.1.20", "--force", "--loopback=false"}, 0,
			[]string{"wrote infra0-peer.crt", "wrote infra0-client.crt and infra0-client.key: client-port certificate for infra0 (server and client auth), SANs 10.0.1.20, valid until"}},
		{[]string{"certs", "issue", "--dir", dir, "--client", "admin", "--validity", "90d"}, 0,
			[]string{"wrote admin.crt and admin.key: client certificate for admin (client auth), SANs none, valid until " + time.Now().Add(90*24*time.Hour).UTC().Format("2006-01-02")}},
		{[]string{"certs", "check", "--dir", dir}, 0,
			[]string{`CA ca.crt: "etcd-cluster-1 etcd CA"`, "FILE", "admin.crt", "client", "infra0-peer.crt", "peer", "10.0.1.20", "ok", "3 certificates, 0 errors, 0 warnings"}},
		// Expiring within --warn-days is a problem: exit 1.
		{[]string{"certs", "check", "--dir", dir, "--warn-days", "100"}, 1,
			[]string{"warning", "admin.crt: expires on", "1 warning"}},
		{[]string{"certs", "check", "--dir", dir, "--warn-days", "0"}, 0, []string{"0 warnings"}},
	}
	for _, s := range steps {
		code, out, errOut := runCLI(t, "", s.args...)
		all := out + errOut
		if code != s.code {
			t.Fatalf("%v: exit %d, want %d\n%s", s.args, code, s.code, all)
		}
		for _, w := range s.want {
			if !strings.Contains(all, w) {
				t.Errorf("%v: output lacks %q:\n%s", s.args, w, all)
			}
		}
	}
	for name, mode := range map[string]os.FileMode{"ca.key": 0o600, "ca.crt": 0o644, "infra0-peer.key": 0o600, "admin.key": 0o600, "admin.crt": 0o644} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want mode %04o", name, fi, err, mode)
		}
	}

	code, out, _ := runCLI(t, "", "certs", "check", "--dir", dir, "-o", "json")
	var rep struct {
		CA    struct{ Subject string }
		Certs []struct {
			File    string
			Kind    string
			ChainOK bool
			IPs     []string
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if rep.CA.Subject != "etcd-cluster-1 etcd CA" || len(rep.Certs) != 3 || !rep.Certs[0].ChainOK || rep.Certs[2].Kind != "peer" {
		t.Errorf("json report %+v", rep)
	}

	// A certificate from another CA breaks the chain: named, exit 1.
	other := filepath.Join(t.TempDir(), "other")
	for _, args := range [][]string{{"certs", "init", "--dir", other}, {"certs", "issue", "--dir", other, "--client", "intruder"}} {
		if code, out, errOut := runCLI(t, "", args...); code != 0 {
			t.Fatalf("%v: %d %s %s", args, code, out, errOut)
		}
	}
	for _, ext := range []string{".crt", ".key"} {
		b, err := os.ReadFile(filepath.Join(other, "intruder"+ext))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "intruder"+ext), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ = runCLI(t, "", "certs", "check", "--dir", dir)
	if code != 1 || !strings.Contains(out, "broken") || !strings.Contains(out, filepath.Join(dir, "intruder.crt")+`: was not issued by the CA in`) {
		t.Errorf("foreign certificate: exit %d\n%s", code, out)
	}
}

func TestCertsErrors(t *testing.T) {
	empty := t.TempDir()
	withCA := t.TempDir()
	if code, _, errOut := runCLI(t, "", "certs", "init", "--dir", withCA); code != 0 {
		t.Fatal(errOut)
	}
	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, "ca.crt"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"certs", "init"}, `required flag(s) "dir" not set`},
		{[]string{"certs", "init", "--dir", empty, "--validity", "10m"}, "use at least 1h"},
		{[]string{"certs", "init", "--dir", empty, "--validity", "forever"}, "use a duration such as"},
		{[]string{"certs", "init", "--dir", garbage}, "ca.key: CA key does not exist but"},
		{[]string{"certs", "issue", "--dir", empty, "--client", "admin"}, "ca.crt: CA certificate does not exist; run `etcdctl-wizard certs init --dir"},
		{[]string{"certs", "issue", "--dir", withCA}, "give --member NAME --ip IP"},
		{[]string{"certs", "issue", "--dir", withCA, "--member", "a", "--client", "b"}, "not both"},
		{[]string{"certs", "issue", "--dir", withCA, "--member", "infra0"}, "--member needs --ip"},
		{[]string{"certs", "issue", "--dir", withCA, "--member", "infra0", "--ip", "10.0.1"}, `--ip "10.0.1" is not an IP address`},
		{[]string{"certs", "issue", "--dir", withCA, "--member", "infra0", "--ip", "0.0.0.0"}, "listen-everywhere"},
		{[]string{"certs", "issue", "--dir", withCA, "--member", "infra0", "--ip", "10.0.1.10", "--san", "0.0.0.0"}, "not an address clients connect to"},
		{[]string{"certs", "issue", "--dir", withCA, "--member", "infra0", "--ip", "10.0.1.10", "--san", "bad host"}, "labels hold"},
		{[]string{"certs", "issue", "--dir", withCA, "--member", "in/fra0", "--ip", "10.0.1.10"}, "--member: name"},
		{[]string{"certs", "issue", "--dir", withCA, "--client", "admin", "--ip", "10.0.1.10"}, "--ip applies to --member only"},
		{[]string{"certs", "issue", "--dir", withCA, "--client", "ca"}, "clashes"},
		{[]string{"certs", "issue", "--dir", withCA, "--client", "infra0-peer"}, "clashes"},
		{[]string{"certs", "issue", "--dir", withCA, "--client", "admin", "--validity", "0d"}, "use a duration such as"},
		{[]string{"certs", "check", "--dir", filepath.Join(empty, "nope")}, "certificate directory does not exist"},
		{[]string{"certs", "check", "--dir", withCA, "-o", "xml"}, "use text or json"},
		{[]string{"certs", "check", "--dir", withCA, "--warn-days", "-1"}, "use 0 or more"},
	} {
		code, _, errOut := runCLI(t, "", tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 with %q", tc.args, code, errOut, tc.want)
		}
	}
	// The failed init left the half-broken directory as it was.
	if entries, _ := os.ReadDir(garbage); len(entries) != 1 {
		t.Errorf("garbage dir now has %d entries", len(entries))
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("a failed command wrote into %s", empty)
	}
	// A CA directory with garbage is reported by check, naming the file.
	code, out, _ := runCLI(t, "", "certs", "check", "--dir", garbage)
	if code != 1 || !strings.Contains(out, filepath.Join(garbage, "ca.crt")+": not a usable PEM certificate") {
		t.Errorf("check of garbage: exit %d\n%s", code, out)
	}
}

func TestParseValidity(t *testing.T) {
	for in, want := range map[string]time.Duration{"1y": 365 * 24 * time.Hour, "90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "1h30m": 90 * time.Minute} {
		if got, err := certsParseValidity("--validity", in); err != nil || got != want {
			t.Errorf("%q: %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "y", "-1d", "1.5y", "101y", "30m", "1w"} {
		if _, err := certsParseValidity("--validity", in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

// writePlan copies a guide plan into a temporary directory, with its TLS
// dir there, and applies edits to the YAML.
func writePlan(t *testing.T, name string, edits ...string) (dir, file string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(plans, name))
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	s := string(b)
	for i := 0; i+1 < len(edits); i += 2 {
		if !strings.Contains(s, edits[i]) {
			t.Fatalf("%s lacks %q", name, edits[i])
		}
		s = strings.Replace(s, edits[i], edits[i+1], 1)
	}
	file = filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

// The guide's self-signed plan: issue -f makes the CA, the trusted-CA
// copies the flags name and every member's pair; check -f then finds
// nothing. Switching the plan to DNS SRV makes check -f ask for the SRV
// domain in every certificate (SPEC §6), and issue -f --force adds it.
func TestCertsFromPlan(t *testing.T) {
	dir, file := writePlan(t, "tls-self-signed.yaml")
	pki := filepath.Join(dir, "pki")
	code, out, errOut := runCLI(t, "", "certs", "issue", "-f", file, "--dir", pki)
	if code != 0 {
		t.Fatalf("issue -f: %d %s", code, errOut)
	}
	for _, w := range []string{`created CA "etcd-cluster-1 etcd CA"`, "wrote ca-client.crt: a copy of ca.crt", "wrote ca-peer.crt",
		"wrote infra0-peer.crt and infra0-peer.key: peer certificate for infra0 (server and client auth), SANs 10.0.1.10, infra0.example.com,",
		"wrote infra2-client.crt and infra2-client.key: client-port certificate for infra2 (server and client auth), SANs 10.0.1.12, 127.0.0.1, infra2.example.com, localhost,"} {
		if !strings.Contains(out, w) {
			t.Errorf("issue -f output lacks %q:\n%s", w, out)
		}
	}
	for _, f := range []string{"ca-client.crt", "ca-peer.crt"} {
		a, _ := os.ReadFile(filepath.Join(pki, f))
		b, _ := os.ReadFile(filepath.Join(pki, "ca.crt"))
		if len(a) == 0 || string(a) != string(b) {
			t.Errorf("%s is not a copy of ca.crt", f)
		}
	}
	code, out, _ = runCLI(t, "", "certs", "check", "-f", file, "--dir", pki)
	if code != 0 || !strings.Contains(out, "8 certificates, 0 errors, 0 warnings") || !strings.Contains(out, "ca-peer.crt") {
		t.Errorf("check -f: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "certs", "issue", "-f", file, "--dir", pki, "--member", "infra1")
	if code != 0 || strings.Count(out, "kept ") != 2 || strings.Contains(out, "wrote") {
		t.Errorf("issue -f --member again: exit %d\n%s", code, out)
	}

	// The same members in DNS SRV mode.
	plan, _ := os.ReadFile(file)
	srv := strings.Replace(string(plan), "mode: static", "mode: dns-srv\n    dnsSRV:\n      domain: example.com", 1)
	srvFile := filepath.Join(dir, "srv.yaml")
	if err := os.WriteFile(srvFile, []byte(srv), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runCLI(t, "", "certs", "check", "-f", srvFile, "--dir", pki)
	if code != 1 || strings.Count(out, "does not cover DNS name example.com") != 6 ||
		!strings.Contains(out, "which the plan needs; reissue it with `etcdctl-wizard certs issue -f "+srvFile+" --member infra0 --force`") {
		t.Errorf("check -f srv: exit %d\n%s", code, out)
	}
	code, _, errOut = runCLI(t, "", "certs", "issue", "-f", srvFile, "--dir", pki)
	if code != 1 || !strings.Contains(errOut, "infra0-peer.crt: does not cover DNS name example.com") || !strings.Contains(errOut, "use --force") {
		t.Errorf("issue -f srv without --force: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "certs", "issue", "-f", srvFile, "--dir", pki, "--force"); code != 0 {
		t.Fatalf("issue -f srv --force: %s", errOut)
	}
	if code, out, _ := runCLI(t, "", "certs", "check", "-f", srvFile, "--dir", pki); code != 0 {
		t.Errorf("check -f srv after reissue: exit %d\n%s", code, out)
	}

	// A member whose files are missing is named with the command to run.
	for _, ext := range []string{".crt", ".key"} {
		if err := os.Remove(filepath.Join(pki, "infra2-peer"+ext)); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ = runCLI(t, "", "certs", "check", "-f", srvFile, "--dir", pki)
	if code != 1 || !strings.Contains(out, "infra2-peer.crt: the plan needs the peer certificate for infra2 but it does not exist; run `etcdctl-wizard certs issue -f") {
		t.Errorf("check -f with a missing member file: exit %d\n%s", code, out)
	}
	// Without --dir, the plan's spec.tls.dir (./pki) is taken from the plan
	// file's folder, not from the working directory (this package's).
	code2, out2, _ := runCLI(t, "", "certs", "check", "-f", srvFile)
	if code2 != code || out2 != out {
		t.Errorf("check -f without --dir: exit %d\n%s\nwant exit %d\n%s", code2, out2, code, out)
	}
}

func TestCertsFromPlanErrors(t *testing.T) {
	_, noTLS := writePlan(t, "static.yaml")
	_, noDir := writePlan(t, "tls-self-signed.yaml", "    dir: ./pki\n", "")
	_, pem := writePlan(t, "tls-self-signed.yaml", "key: /path/to/{name}-client.key", "key: /path/to/{name}-client-key.pem")
	_, good := writePlan(t, "tls-self-signed.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"certs", "issue", "-f", noTLS}, `spec.tls.mode is "none"`},
		{[]string{"certs", "check", "-f", noTLS}, `spec.tls.mode is "none"`},
		{[]string{"certs", "issue", "-f", noDir}, "spec.tls.dir is empty: set it or give --dir"},
		{[]string{"certs", "issue", "-f", pem, "--dir", t.TempDir()}, "the wizard writes <base>.crt and <base>.key"},
		{[]string{"certs", "issue", "-f", good, "--dir", t.TempDir(), "--member", "infra9"}, "--member infra9 is not in the plan (members: infra0, infra1, infra2)"},
		{[]string{"certs", "issue", "-f", good, "--dir", t.TempDir(), "--ip", "10.0.0.1"}, "--ip cannot be used with -f"},
		{[]string{"certs", "issue", "-f", filepath.Join(t.TempDir(), "nope.yaml")}, "nope.yaml"},
		{[]string{"certs", "check"}, "give --dir DIR or -f PLAN"},
		{[]string{"certs", "issue", "--client", "a"}, "give --dir DIR"},
	} {
		code, _, errOut := runCLI(t, "", tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 with %q", tc.args, code, errOut, tc.want)
		}
	}
}
