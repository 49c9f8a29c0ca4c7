package plan

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// guideExamples pairs each plan fixture with the guide's commands it must
// export to.
var guideExamples = []struct{ plan, guide string }{
	{"static", "static"},
	{"tls-self-signed", "tls-self-signed"},
	{"tls-auto", "tls-auto"},
	{"discovery-custom", "discovery-custom"},
	{"discovery-public", "discovery-public"},
	{"dns-srv-hostnames", "dns-srv-hostnames"},
	{"dns-srv-ips", "dns-srv-ips"},
}

const (
	plansDir  = "../testdata/plans"
	guideDir  = "../testdata/guide"
	goldenDir = "../testdata/golden"
)

func mustLoad(t testing.TB, path string) *Plan {
	t.Helper()
	p, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return p
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run 'go test ./plan -run Golden -update' to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// guideCommands extracts the commands of a guide block: prompted lines and
// their continuations, prompt removed, etcd renamed to etcd-node.
func guideCommands(text string) string {
	var out []string
	in := false
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "$ "):
			in = true
			l = strings.TrimPrefix(l, "$ ")
			l = regexp.MustCompile(`^etcd `).ReplaceAllString(l, "etcd-node ")
		case !in:
			continue
		}
		out = append(out, l)
		if !strings.HasSuffix(l, "\\") {
			in = false
		}
	}
	return strings.Join(out, "\n")
}

// exportedCommands drops the comments and blank lines of an sh export.
func exportedCommands(sh string) string {
	var out []string
	for _, l := range strings.Split(sh, "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func TestGuideExamplesExportToGuideCommands(t *testing.T) {
	for _, ex := range guideExamples {
		t.Run(ex.plan, func(t *testing.T) {
			p := mustLoad(t, filepath.Join(plansDir, ex.plan+".yaml"))
			if fs := Validate(p); HasErrors(fs) {
				t.Fatalf("the guide's plan has errors: %+v", fs)
			}
			out, err := Export(p, FormatShell)
			if err != nil {
				t.Fatal(err)
			}
			got := exportedCommands(string(out.Combined))
			want := guideCommands(readFile(t, filepath.Join(guideDir, ex.guide+".sh")))
			if want == "" || strings.Count(want, "etcd-node ") != 3 {
				t.Fatalf("fixture %s.sh: expected three guide commands, got %q", ex.guide, want)
			}
			if got != want {
				t.Errorf("export differs from the guide, flag for flag:\n--- got\n%s\n--- guide\n%s", got, want)
			}
		})
	}
}

func TestGoldenExports(t *testing.T) {
	for _, ex := range guideExamples {
		p := mustLoad(t, filepath.Join(plansDir, ex.plan+".yaml"))
		for _, format := range Formats {
			if format == FormatDNS && p.Spec.Bootstrap.Mode != ModeDNSSRV {
				continue
			}
			t.Run(ex.plan+"/"+format, func(t *testing.T) {
				out, err := Export(p, format)
				if err != nil {
					t.Fatal(err)
				}
				checkGolden(t, ex.plan+"."+format, out.Combined)
				// The per-member files hold the same content as stdout.
				for _, f := range out.Files {
					if format != FormatJSON && format != FormatYAML && format != FormatShell && !bytes.Contains(out.Combined, f.Data) {
						t.Errorf("%s: per-member file %s is not part of the combined output", format, f.Name)
					}
				}
			})
		}
	}
}

func TestExportIsDeterministic(t *testing.T) {
	p := mustLoad(t, filepath.Join(plansDir, "tls-self-signed.yaml"))
	for _, format := range []string{FormatShell, FormatEnv, FormatSystemd, FormatJSON, FormatYAML} {
		first, err := Export(p, format)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			again, err := Export(p, format)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first.Combined, again.Combined) {
				t.Fatalf("%s export changed between runs", format)
			}
		}
	}
}
