package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSaveKeepsComments: a rewrite of an annotated plan (a member added,
// another removed, the cluster ID pinned) keeps the notes on what is still
// there and drops the removed member's.
func TestSaveKeepsComments(t *testing.T) {
	const annotated = `# Production etcd for the payments team.
# Owner: ops@example.com
apiVersion: etcdctl-wizard/v1
kind: Cluster
metadata:
  name: payments # the token too
spec:
  tls:
    mode: none
  members:
    # rack A
    - name: infra0
      ip: 10.0.1.10 # the old switch
    # rack B, to be retired
    - name: infra1
      ip: 10.0.1.11
    - name: infra2
      ip: 10.0.1.12
      # keep this one on SSD
`
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte(annotated), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.Members = append(p.Spec.Members[:1], p.Spec.Members[2:]...)
	p.Spec.Members = append(p.Spec.Members, Member{Name: "infra3", IP: "10.0.1.13", Join: true})
	p.Spec.ClusterID = "acccc8912db0cd57"
	if err := Save(path, p); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	for _, want := range []string{"# Production etcd for the payments team.\n# Owner: ops@example.com\n", "name: payments # the token too",
		"# rack A\n", "ip: 10.0.1.10 # the old switch", "# keep this one on SSD", "name: infra3", "clusterID: acccc8912db0cd57"} {
		if !strings.Contains(got, want) {
			t.Errorf("saved plan lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "rack B") || strings.Contains(got, "infra1") {
		t.Errorf("the removed member's note stayed:\n%s", got)
	}
	q, err := Load(path)
	if err != nil {
		t.Fatalf("the saved plan does not load: %v\n%s", err, got)
	}
	want, _ := Marshal(p)
	if have, _ := Marshal(q); string(have) != string(want) {
		t.Errorf("the saved plan reads back differently:\n%s\nwant\n%s", have, want)
	}
}

// TestSaveOverGarbage: a file that is no YAML plan is replaced by the plan.
func TestSaveOverGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(path, []byte("{{{ not yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load("../testdata/plans/static.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := Save(path, p); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("the saved plan does not load: %v", err)
	}
}
