package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	plans = "../../testdata/plans"
	guide = "../../testdata/guide"
)

// runCLI runs the wizard in-process and returns its exit status and output.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"plan", "validate", "--nope"}, "unknown flag: --nope"},
		{[]string{"plan", "validate"}, `required flag(s) "file" not set`},
		{[]string{"plan", "export", "-f", filepath.Join(plans, "static.yaml"), "--format", "xml"}, `unknown format "xml"`},
		{[]string{"plan", "import"}, "requires at least 1 arg"},
		{[]string{"plan", "validate", "-f", filepath.Join(plans, "static.yaml"), "-o", "xml"}, "use text or json"},
	} {
		code, _, stderr := runCLI(t, "", tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 with %q", tc.args, code, stderr, tc.want)
		}
	}
	if _, _, stderr := runCLI(t, "", "plan", "validate", "--nope"); !strings.Contains(stderr, "--help") {
		t.Errorf("a usage error should point to --help: %q", stderr)
	}
}

func TestRootAndVersion(t *testing.T) {
	// Without a terminal the root command points to the other commands
	// (tui_test.go); --help prints the usage.
	code, out, _ := runCLI(t, "", "--help")
	if code != 0 || !strings.Contains(out, "plan") || !strings.Contains(out, "Usage:") {
		t.Errorf("root --help: exit %d, %q", code, out)
	}
	code, out, _ = runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "etcdctl-wizard ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}

func TestValidateGuidePlans(t *testing.T) {
	code, out, _ := runCLI(t, "", "plan", "validate", "-f", filepath.Join(plans, "static.yaml"))
	if code != 0 || !strings.Contains(out, "valid, 0 warnings") || !strings.Contains(out, "cluster acccc8912db0cd57") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// The guide's three error commands, imported through stdin and validated:
// exit 1, exactly three errors, grouped by member, in the guide's words.
func TestImportThenValidateGuideErrors(t *testing.T) {
	var input strings.Builder
	for _, f := range []string{"error-not-listed.sh", "error-advertise-mismatch.sh", "error-conflicting-cluster-id.sh"} {
		b, err := os.ReadFile(filepath.Join(guide, f))
		if err != nil {
			t.Fatal(err)
		}
		input.Write(b)
	}
	code, planYAML, stderr := runCLI(t, input.String(), "plan", "import", "-")
	if code != 0 {
		t.Fatalf("import: exit %d: %s", code, stderr)
	}
	code, out, _ := runCLI(t, planYAML, "plan", "validate", "-f", "-")
	if code != 1 {
		t.Fatalf("validate: want exit 1, got %d:\n%s", code, out)
	}
	for _, want := range []string{
		"infra1:\n", "infra1 not listed in the initial cluster config",
		"infra0:\n", "error setting up initial cluster: infra0 has different advertised URLs in the cluster and advertised peer URLs list",
		"infra3:\n", "conflicting cluster ID to the target cluster (",
		": 3 errors,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}

	code, js, _ := runCLI(t, planYAML, "plan", "validate", "-f", "-", "--output", "json")
	var rep validateReport
	if err := json.Unmarshal([]byte(js), &rep); err != nil || code != 1 {
		t.Fatalf("json: exit %d, %v\n%s", code, err, js)
	}
	if rep.Valid || rep.Errors != 3 {
		t.Errorf("json report: %+v", rep)
	}
}

func TestValidateLoadErrorIsAFinding(t *testing.T) {
	code, out, _ := runCLI(t, "apiVersion: etcdctl-wizard/v1\nkind: Cluster\nspec:\n  memberz: []\n", "plan", "validate", "-f", "-", "-o", "json")
	var rep validateReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 {
		t.Fatalf("exit %d, %v\n%s", code, err, out)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Code != "unknown-field" || rep.Findings[0].Line != 4 || rep.Findings[0].Column != 3 {
		t.Errorf("findings: %+v", rep.Findings)
	}
}

func TestExportToDirectory(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI(t, "", "plan", "export", "-f", filepath.Join(plans, "static.yaml"), "--format", "env", "-o", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, m := range []string{"infra0", "infra1", "infra2"} {
		st, err := os.Stat(filepath.Join(dir, m+".env"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s.env: %v %v", m, err, st)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "infra1.env"))
	if !strings.Contains(string(b), `ETCD_NAME="infra1"`) {
		t.Errorf("infra1.env:\n%s", b)
	}
}

func TestExportRefusesInvalidPlan(t *testing.T) {
	bad := "apiVersion: etcdctl-wizard/v1\nkind: Cluster\nmetadata: {name: c}\nspec:\n  members:\n  - {name: a, ip: 10.0.0.1, clientPort: 2380}\n"
	code, out, stderr := runCLI(t, bad, "plan", "export", "-f", "-")
	if code != 1 || out != "" || !strings.Contains(stderr, "client-peer-port-clash") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, _ = runCLI(t, bad, "plan", "export", "-f", "-", "--skip-validation")
	if code != 0 || !strings.Contains(out, "etcd-node --name a") {
		t.Fatalf("--skip-validation: exit %d, %q", code, out)
	}
}

func TestImportWritesFile(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "plan.yaml")
	code, out, stderr := runCLI(t, "", "plan", "import", filepath.Join(guide, "static.sh"), "-o", dst)
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, _ = runCLI(t, "", "plan", "export", "-f", dst, "--format", "sh")
	if code != 0 || strings.Count(out, "etcd-node --name infra") != 3 {
		t.Fatalf("export of the imported plan: exit %d\n%s", code, out)
	}
	if code, _, stderr := runCLI(t, "", "plan", "import", filepath.Join(t.TempDir(), "missing.sh")); code != 1 || stderr == "" {
		t.Errorf("missing input: exit %d, %q", code, stderr)
	}
}
