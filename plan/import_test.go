package plan

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func importFiles(t *testing.T, names ...string) *Plan {
	t.Helper()
	var srcs []ImportSource
	for _, n := range names {
		path := filepath.Join(guideDir, n+".sh")
		srcs = append(srcs, ImportSource{Name: path, Data: []byte(readFile(t, path))})
	}
	res, err := Import(srcs)
	if err != nil {
		t.Fatal(err)
	}
	// What import prints must load back as the same plan.
	data, err := Marshal(res.Plan)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(data, "imported.yaml")
	if err != nil {
		t.Fatalf("imported plan does not load: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(back, res.Plan) {
		t.Fatalf("imported plan changes through YAML:\n%s", data)
	}
	return back
}

func errorsOf(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Severity == SeverityError {
			out = append(out, f)
		}
	}
	return out
}

// The guide's error section, imported as written: exactly its three errors,
// in its words.
func TestImportGuideErrorCases(t *testing.T) {
	p := importFiles(t, "error-not-listed", "error-advertise-mismatch", "error-conflicting-cluster-id")
	errs := errorsOf(Validate(p))
	want := []struct{ member, code, words string }{
		{"infra1", "not-in-initial-cluster", "infra1 not listed in the initial cluster config"},
		{"infra0", "advertise-peer-urls-mismatch", "error setting up initial cluster: infra0 has different advertised URLs in the cluster and advertised peer URLs list"},
		// infra3's cluster (its own --initial-cluster, default token) against
		// the cluster its peer infra0 would form.
		{"infra3", "conflicting-cluster-id", "conflicting cluster ID to the target cluster (de83bfe8225735ab != e33cd1f1301c41a0). Exiting."},
	}
	if len(errs) != len(want) {
		t.Fatalf("want exactly %d errors, got:\n%s", len(want), dump(errs))
	}
	for i, w := range want {
		if errs[i].Member != w.member || errs[i].Code != w.code || !strings.Contains(errs[i].Message, w.words) {
			t.Errorf("error %d: got %s %s %q, want %s %s with %q", i, errs[i].Member, errs[i].Code, errs[i].Message, w.member, w.code, w.words)
		}
	}
}

// The guide's third case as it happens: infra3 tries to join the running
// static cluster of infra0..2.
func TestImportConflictAgainstGuideCluster(t *testing.T) {
	p := importFiles(t, "static", "error-conflicting-cluster-id")
	errs := errorsOf(Validate(p))
	if len(errs) != 1 || errs[0].Member != "infra3" ||
		errs[0].Message != "infra3: conflicting cluster ID to the target cluster (de83bfe8225735ab != acccc8912db0cd57). Exiting." {
		t.Fatalf("want infra3's conflict with the guide cluster acccc8912db0cd57, got:\n%s", dump(errs))
	}
}

func TestImportEachErrorCaseAlone(t *testing.T) {
	for name, code := range map[string]string{
		"error-not-listed":         "not-in-initial-cluster",
		"error-advertise-mismatch": "advertise-peer-urls-mismatch",
	} {
		errs := errorsOf(Validate(importFiles(t, name)))
		if len(errs) != 1 || errs[0].Code != code {
			t.Errorf("%s: want one %s, got:\n%s", name, code, dump(errs))
		}
	}
}

// Every good example of the guide imports to a plan that exports the same
// commands; the static one also validates clean.
func TestImportGuideRoundTrip(t *testing.T) {
	for _, ex := range guideExamples {
		t.Run(ex.guide, func(t *testing.T) {
			p := importFiles(t, ex.guide)
			out, err := Export(p, FormatShell)
			if err != nil {
				t.Fatal(err)
			}
			want := guideCommands(readFile(t, filepath.Join(guideDir, ex.guide+".sh")))
			if got := exportedCommands(string(out.Combined)); got != want {
				t.Errorf("round trip differs:\n--- got\n%s\n--- guide\n%s", got, want)
			}
			for _, m := range p.Spec.Members {
				if len(m.Flags) != 0 {
					t.Errorf("%s: the guide's example should fit the plan without overrides, got %v", m.Name, m.Flags)
				}
			}
		})
	}
	if fs := Validate(importFiles(t, "static")); len(fs) != 0 {
		t.Errorf("the guide's static commands must validate clean, got:\n%s", dump(fs))
	}
}

func TestImportEnvFilesRoundTrip(t *testing.T) {
	p := mustLoad(t, filepath.Join(plansDir, "tls-auto.yaml"))
	ex, err := Export(p, FormatEnv)
	if err != nil {
		t.Fatal(err)
	}
	var srcs []ImportSource
	for _, f := range ex.Files {
		srcs = append(srcs, ImportSource{Name: f.Name, Data: f.Data})
	}
	res, err := Import(srcs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Export(res.Plan, FormatEnv)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ex.Files {
		if string(again.Files[i].Data) != string(ex.Files[i].Data) {
			t.Errorf("%s changed through import:\n%s\n---\n%s", ex.Files[i].Name, again.Files[i].Data, ex.Files[i].Data)
		}
	}
}

func TestImportFlagForms(t *testing.T) {
	src := `# forms Go's flag package accepts
etcd-node -name a --initial-advertise-peer-urls=http://10.0.0.1:2380 \
   --listen-peer-urls "http://10.0.0.1:2380" --listen-client-urls 'http://10.0.0.1:2379' \
   --advertise-client-urls http://10.0.0.1:2379 --initial-cluster-token t1 \
   --initial-cluster a=http://10.0.0.1:2380 --pre-vote=false --enable-pprof --heartbeat-interval 200
`
	res, err := Import([]ImportSource{{Name: "forms.sh", Data: []byte(src)}})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Plan.Spec.Members[0]
	want := map[string]string{"pre-vote": "false", "enable-pprof": "true", "heartbeat-interval": "200"}
	if m.Name != "a" || m.IP != "10.0.0.1" || res.Plan.Spec.Node.Listen != ListenIP || !reflect.DeepEqual(m.Flags, want) {
		t.Fatalf("got member %+v listen %q", m, res.Plan.Spec.Node.Listen)
	}
	mc := res.Plan.MemberConfigs()[0]
	if v, _ := mc.Lookup("pre-vote"); v != "false" {
		t.Errorf("pre-vote override lost: %q", v)
	}
}

func TestImportRejectsBadInput(t *testing.T) {
	for name, src := range map[string]string{
		"unterminated quote": "etcd --name 'infra0\n",
		"positional":         "etcd --name infra0 infra1\n",
		"missing value":      "etcd --name\n",
		"no command":         "just some text\n",
		"only etcdctl":       "$ etcdctl member list\n",
		"empty":              "",
		"bad env quoting":    "ETCD_NAME=\"infra0\nETCD_DATA_DIR=/x\n",
		"env with spaces":    "ETCD_NAME=a b\n",
	} {
		if _, err := Import([]ImportSource{{Name: name, Data: []byte(src)}}); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestShellWords(t *testing.T) {
	for in, want := range map[string][]string{
		`a "b c" 'd e' f\ g`:   {"a", "b c", "d e", "f g"},
		`--x="a\"b" --y=''`:    {`--x=a"b`, "--y="},
		`  spaced   out  `:     {"spaced", "out"},
		`"$HOME" '$HOME'`:      {"$HOME", "$HOME"},
		`--url=http://[::1]:1`: {"--url=http://[::1]:1"},
	} {
		got, err := shellWords(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("shellWords(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
