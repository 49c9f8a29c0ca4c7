package plan

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFixturesRoundTrip(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(plansDir, "*.yaml"))
	if err != nil || len(files) < 7 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, f := range files {
		p := mustLoad(t, f)
		data, err := Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		q, err := Parse(data, f)
		if err != nil {
			t.Fatalf("%s: saved plan does not load: %v\n%s", f, err, data)
		}
		if !reflect.DeepEqual(p, q) {
			t.Errorf("%s: plan changed through Save/Load", f)
		}
		again, _ := Marshal(q)
		if !bytes.Equal(data, again) {
			t.Errorf("%s: Marshal is not stable", f)
		}
	}
}

func TestDataDirAbsentVersusEmpty(t *testing.T) {
	absent := parseBase(t)
	if v, _ := absent.MemberConfigs()[0].Lookup("data-dir"); v != DefaultDataDir {
		t.Errorf("absent dataDir: want --data-dir %s, got %q", DefaultDataDir, v)
	}
	empty := mustLoad(t, filepath.Join(plansDir, "static.yaml"))
	if _, set := empty.MemberConfigs()[0].Lookup("data-dir"); set {
		t.Error(`dataDir: "" must pass no --data-dir`)
	}
	data, _ := Marshal(empty)
	if !strings.Contains(string(data), `dataDir: ""`) {
		t.Errorf("an explicit empty dataDir must survive Save:\n%s", data)
	}
}

func TestWithDefaultsLeavesPlanAlone(t *testing.T) {
	p := parseBase(t)
	p.Spec.Members[0].Flags = map[string]string{"heartbeat-interval": "200"}
	before, _ := Marshal(p)
	q := p.WithDefaults()
	q.Spec.Members[0].Flags["heartbeat-interval"] = "300"
	q.Spec.Members[1].Name = "changed"
	after, _ := Marshal(p)
	if !bytes.Equal(before, after) {
		t.Fatalf("WithDefaults or its result changed the original plan")
	}
}

func TestLoadErrorPositions(t *testing.T) {
	src := "apiVersion: etcdctl-wizard/v1\nkind: Cluster\nmetadata:\n  name: x\nspec:\n  node:\n    clientPort: 2379\n    pearPort: 2380\n"
	_, err := Parse([]byte(src), "p.yaml")
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want a LoadError, got %v", err)
	}
	if le.Line != 8 || le.Column != 5 || le.Field != "spec.node.pearPort" || !strings.Contains(le.Hint, `"peerPort"`) {
		t.Fatalf("got %v (line %d col %d)", le, le.Line, le.Column)
	}
	if got := le.Error(); !strings.HasPrefix(got, "p.yaml:8:5: spec.node.pearPort: unknown field") {
		t.Errorf("error text: %s", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var le *LoadError
	if !errors.As(err, &le) || le.Code != CodeFileUnreadable {
		t.Fatalf("want %s, got %v", CodeFileUnreadable, err)
	}
}

func TestSaveIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plan.yaml")
	p := parseBase(t)
	if err := os.WriteFile(path, []byte("old content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, p); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	q, err := Load(path)
	if err != nil || !reflect.DeepEqual(p, q) {
		t.Fatalf("saved plan: %v", err)
	}
	// A folder that does not exist fails cleanly and writes nothing.
	if err := Save(filepath.Join(dir, "missing", "plan.yaml"), p); err == nil {
		t.Fatal("want an error for a missing folder")
	}
}

func TestAliasBombIsRefused(t *testing.T) {
	src := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n" +
		"apiVersion: etcdctl-wizard/v1\nkind: Cluster\nspec:\n  members: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	if _, err := Parse([]byte(src), "bomb.yaml"); err == nil {
		t.Fatal("want an error")
	}
}
