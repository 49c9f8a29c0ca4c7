package plan

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func addFiles(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
}

// FuzzParse: any input either loads or gives a LoadError, never a panic; a
// plan that loads survives Save and Load unchanged, and validating and
// exporting it never panics.
func FuzzParse(f *testing.F) {
	addFiles(f, filepath.Join(plansDir, "*.yaml"))
	f.Add([]byte(basePlan))
	f.Add([]byte("apiVersion: etcdctl-wizard/v1\nkind: Cluster\nspec:\n  members:\n  - {name: a, ip: 10.0.0.1, flags: {initial-cluster: 'a=http://x:1'}}\n"))
	f.Add([]byte("a: &a [x]\nb: [*a, *a]\n"))
	f.Add([]byte("---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if _, ok := err.(*LoadError); !ok {
				t.Fatalf("error is not a *LoadError: %T %v", err, err)
			}
			return
		}
		out, err := Marshal(p)
		if err != nil {
			t.Fatalf("a loaded plan does not marshal: %v", err)
		}
		q, err := Parse(out, "again.yaml")
		if err != nil {
			t.Fatalf("a saved plan does not load: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("plan changed through Save/Load:\n%s", out)
		}
		Validate(p)
		for _, format := range []string{FormatShell, FormatJSON} {
			_, _ = Export(p, format)
		}
	})
}

// FuzzImport: any text either imports or errors, never panics, and an
// imported plan validates and exports without panicking.
func FuzzImport(f *testing.F) {
	addFiles(f, filepath.Join(guideDir, "*.sh"))
	f.Add([]byte("ETCD_NAME=\"a\"\nETCD_INITIAL_CLUSTER=a=http://10.0.0.1:2380\n"))
	f.Add([]byte("etcd --name 'a b' --x=\"y\\\"z\" \\\n --auto-tls\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Import([]ImportSource{{Name: "fuzz.sh", Data: data}})
		if err != nil {
			return
		}
		Validate(res.Plan)
		if _, err := Marshal(res.Plan); err != nil {
			t.Fatalf("imported plan does not marshal: %v", err)
		}
		_, _ = Export(res.Plan, FormatShell)
	})
}
