package plan

import (
	"path/filepath"
	"testing"
)

// The IDs a plan predicts are etcd's (SPEC-etcd.md §2.1-2.2 test vectors).
func TestIdentitiesMatchEtcd(t *testing.T) {
	p := mustLoad(t, filepath.Join(plansDir, "static.yaml"))
	want := map[string]string{"infra0": "140fedbeeb74765d", "infra1": "d5dc5f8d75d04e29", "infra2": "8a0a11c6194fc77"}
	ids := Identities(p)
	if len(ids) != 3 {
		t.Fatalf("want 3 identities, got %v", ids)
	}
	for _, id := range ids {
		if IDString(id.MemberID) != want[id.Name] || IDString(id.ClusterID) != "acccc8912db0cd57" {
			t.Errorf("%s: member %s cluster %s, want %s and acccc8912db0cd57", id.Name, IDString(id.MemberID), IDString(id.ClusterID), want[id.Name])
		}
	}

	// etcd's defaults: default=http://localhost:2380 with token etcd-cluster.
	single := &Plan{APIVersion: APIVersion, Kind: KindCluster, Metadata: Metadata{Name: "etcd-cluster"},
		Spec: Spec{Members: []Member{{Name: "default", IP: "127.0.0.1", Transport: TransportLocal,
			Flags: map[string]string{"initial-advertise-peer-urls": "http://localhost:2380", "initial-cluster": "default=http://localhost:2380"}}}}}
	ids = Identities(single)
	if len(ids) != 1 || IDString(ids[0].MemberID) != "8e9e05c52164694d" || IDString(ids[0].ClusterID) != "cdf818194e3a8c32" {
		t.Fatalf("default member: got %+v, want member 8e9e05c52164694d cluster cdf818194e3a8c32", ids)
	}
}

// The token, not the URLs, is what separates two clusters.
func TestTokenChangesClusterID(t *testing.T) {
	p := mustLoad(t, filepath.Join(plansDir, "static.yaml"))
	q := mustLoad(t, filepath.Join(plansDir, "static.yaml"))
	q.Spec.InitialClusterToken = "etcd-cluster-2"
	a, b := Identities(p), Identities(q)
	if a[0].ClusterID == b[0].ClusterID || a[0].MemberID == b[0].MemberID {
		t.Fatalf("a different token must change the IDs: %v vs %v", a, b)
	}
}
