package e2e

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
)

// TestMemberAddJoinRemove grows the cluster by runtime reconfiguration
// with upstream etcdctl and the environment it prints, then shrinks it.
func TestMemberAddJoinRemove(t *testing.T) {
	bin := nodetest.BuildNode(t)
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: bin})
	spec := nodetest.NewMemberSpec(t, "infra3")
	out := mustCtl(t, c, "member", "add", "infra3", "--peer-urls="+spec.PeerURL)
	m := regexp.MustCompile(`Member\s+([0-9a-f]+) added to cluster\s+([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("member add output: %q", out)
	}
	newID := m[1]
	env := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(k, "ETCD_") {
			env[k] = strings.Trim(v, `"`)
		}
	}
	if env["ETCD_NAME"] != "infra3" || env["ETCD_INITIAL_CLUSTER_STATE"] != "existing" || !strings.Contains(env["ETCD_INITIAL_CLUSTER"], "infra3="+spec.PeerURL) {
		t.Fatalf("printed environment: %v", env)
	}
	list := mustCtl(t, c, "member", "list")
	if !strings.Contains(list, newID+", unstarted, , "+spec.PeerURL) {
		t.Fatalf("new member not listed as unstarted: %s", list)
	}
	// Start it the way the guide says: the printed variables plus URLs.
	joiner := nodetest.StartMember(t, nodetest.MemberOptions{Spec: spec, Binary: bin,
		Args: []string{"--data-dir", spec.DataDir, "--listen-peer-urls", spec.PeerURL, "--listen-client-urls", spec.ClientURL, "--advertise-client-urls", spec.ClientURL},
		Env: []string{"ETCD_NAME=" + env["ETCD_NAME"], "ETCD_INITIAL_CLUSTER=" + env["ETCD_INITIAL_CLUSTER"],
			"ETCD_INITIAL_ADVERTISE_PEER_URLS=" + env["ETCD_INITIAL_ADVERTISE_PEER_URLS"], "ETCD_INITIAL_CLUSTER_STATE=existing"}})
	joiner.WaitHealthy()
	mustCtl(t, c, "put", "after-join", "yes")
	got, _, err := nodetest.Etcdctl(t, []string{spec.ClientURL}, "get", "after-join", "--print-value-only")
	if err != nil || got != "yes\n" {
		t.Fatalf("read through the new member: %v %q", err, got)
	}
	list = mustCtl(t, c, "member", "list")
	if !strings.Contains(list, newID+", started, infra3, "+spec.PeerURL+", "+spec.ClientURL) || strings.Count(list, "started") != 4 {
		t.Fatalf("member list after join: %s", list)
	}

	// Remove it: it leaves, the rest go on.
	out = mustCtl(t, c, "member", "remove", newID)
	if !regexp.MustCompile(`Member\s+` + newID + ` removed from cluster`).MatchString(out) {
		t.Fatalf("member remove: %q", out)
	}
	if code := joiner.WaitExit(30 * time.Second); code != 0 {
		t.Errorf("removed member exit code %d", code)
	}
	if list = mustCtl(t, c, "member", "list"); strings.Contains(list, newID) {
		t.Fatalf("removed member still listed: %s", list)
	}
	mustCtl(t, c, "put", "after-remove", "yes")
	// Removing an unknown member is etcd's error.
	if _, errOut, err := c.Etcdctl("member", "remove", "1234"); err == nil || !strings.Contains(errOut, "member not found") {
		t.Fatalf("remove unknown: %v %q", err, errOut)
	}
}

// TestRestartIgnoresInitialCluster restarts a member with nonsense
// --initial-cluster* flags: with a WAL they are ignored, as in etcd.
func TestRestartIgnoresInitialCluster(t *testing.T) {
	bin := nodetest.BuildNode(t)
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: bin})
	mustCtl(t, c, "put", "k", "v")
	m := c.Member(1)
	m.Stop()
	args := append([]string(nil), m.Args()...)
	for i := range args {
		switch args[i] {
		case "--initial-cluster":
			args[i+1] = "somebody=http://127.0.0.1:1"
		case "--initial-cluster-token":
			args[i+1] = "another-token"
		}
	}
	// A new cluster's members advance their first election once a quorum
	// of peers is connected (--initial-election-tick-advance).
	advanced := 0
	for i := 0; i < 3; i++ {
		if strings.Contains(c.Member(i).Logs(), "advanced ticks of a new cluster's first election") {
			advanced++
		}
	}
	if advanced == 0 {
		t.Error("no member of the new cluster advanced its election ticks")
	}
	r := nodetest.StartMember(t, nodetest.MemberOptions{Spec: m.Proc().MemberSpec, Binary: bin, Args: args})
	r.WaitHealthy()
	// A restarted member must hear from the leader first: no advance.
	if strings.Contains(r.Logs(), "advanced ticks") {
		t.Error("a restarted member advanced its election ticks")
	}
	got, _, err := nodetest.Etcdctl(t, []string{m.ClientURL()}, "get", "k", "--print-value-only")
	if err != nil || got != "v\n" {
		t.Fatalf("restarted member: %v %q", err, got)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHTTPEndpoints checks /health, /livez, /readyz, /version and /metrics
// with etcd's metric names.
func TestHTTPEndpoints(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t)})
	mustCtl(t, c, "put", "k", "v")
	base := c.Member(0).ClientURL()
	for _, tc := range []struct{ path, want string }{
		{"/health", `{"health":"true","reason":""}`},
		{"/livez", "ok"},
		{"/readyz", "ok"},
		{"/readyz?verbose", "[+]linearizable_read ok"},
		{"/version", `"etcdserver":"3.7.3"`},
		{"/version", `"etcdcluster":"3.7.0"`},
	} {
		code, body := httpGet(t, base+tc.path)
		if code != 200 || !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: %d %q, want %q", tc.path, code, body, tc.want)
		}
	}
	_, metrics := httpGet(t, base+"/metrics")
	for _, name := range []string{"etcd_server_has_leader 1", "etcd_server_leader_changes_seen_total", "etcd_server_proposals_committed_total",
		"etcd_server_proposals_applied_total", "etcd_server_proposals_pending", "etcd_server_proposals_failed_total",
		"etcd_disk_wal_fsync_duration_seconds_bucket", "etcd_disk_backend_commit_duration_seconds_bucket", "etcd_mvcc_db_total_size_in_bytes"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// With a majority down, /health says so (no leader).
	c.Member(1).Kill()
	c.Member(2).Kill()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body := httpGet(t, base+"/health")
		if code == 503 && strings.Contains(body, "RAFT NO LEADER") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health with no quorum: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
