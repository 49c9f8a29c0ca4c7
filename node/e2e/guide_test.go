package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/nodetest"
)

func etcdctlIn(t *testing.T, endpoints []string, stdin string, args ...string) (string, error) {
	t.Helper()
	_, ctl := nodetest.Upstream(t)
	cmd := exec.Command(ctl, append([]string{"--endpoints", strings.Join(endpoints, ","), "--command-timeout", "10s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustCtl(t *testing.T, c *nodetest.Cluster, args ...string) string {
	t.Helper()
	out, errOut, err := c.Etcdctl(args...)
	if err != nil {
		t.Fatalf("etcdctl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// tableHeader returns the column names of an etcdctl -w table output.
func tableHeader(t *testing.T, out string) []string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		// etcdctl draws tables with box-drawing characters.
		line = strings.ReplaceAll(line, "│", "|")
		if strings.HasPrefix(line, "|") {
			var cols []string
			for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
				cols = append(cols, strings.TrimSpace(c))
			}
			return cols
		}
	}
	t.Fatalf("no table in %q", out)
	return nil
}

// TestGuideStaticClusterWithUpstreamEtcdctl runs the guide's static cluster
// and the etcdctl commands operators use, and compares the output shapes
// with the same commands against upstream etcd.
func TestGuideStaticClusterWithUpstreamEtcdctl(t *testing.T) {
	etcd, _ := nodetest.Upstream(t)
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t)})
	up := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: etcd})

	for _, cl := range []*nodetest.Cluster{c, up} {
		if out := mustCtl(t, cl, "put", "foo", "bar"); strings.TrimSpace(out) != "OK" {
			t.Fatalf("put: %q", out)
		}
		mustCtl(t, cl, "put", "foo2", "bar2")
		if out := mustCtl(t, cl, "get", "foo"); out != "foo\nbar\n" {
			t.Fatalf("get: %q", out)
		}
		if out := mustCtl(t, cl, "get", "--prefix", "foo"); out != "foo\nbar\nfoo2\nbar2\n" {
			t.Fatalf("get --prefix: %q", out)
		}
		if out := mustCtl(t, cl, "del", "foo2"); strings.TrimSpace(out) != "1" {
			t.Fatalf("del: %q", out)
		}
		txn := "value(\"foo\") = \"bar\"\n\nput txnkey yes\n\nput txnkey no\n\n"
		out, err := etcdctlIn(t, cl.Endpoints(), txn, "txn", "-i")
		// etcdctl prints its prompts, then the outcome.
		if err != nil || !strings.HasSuffix(out, "failure requests (get, put, del):\nSUCCESS\n\nOK\n") {
			t.Fatalf("txn -i: %v %q", err, out)
		}
		if out := mustCtl(t, cl, "get", "txnkey", "--print-value-only"); out != "yes\n" {
			t.Fatalf("txn result: %q", out)
		}
	}

	// Same table shapes as upstream.
	for _, args := range [][]string{
		{"member", "list", "-w", "table"},
		{"endpoint", "status", "--cluster", "-w", "table"},
		{"endpoint", "health", "--cluster", "-w", "table"},
	} {
		ours, theirs := mustCtl(t, c, args...), mustCtl(t, up, args...)
		if a, b := tableHeader(t, ours), tableHeader(t, theirs); strings.Join(a, "|") != strings.Join(b, "|") {
			t.Errorf("%v: columns %v, upstream %v", args, a, b)
		}
		if strings.Count(ours, "\n") != strings.Count(theirs, "\n") {
			t.Errorf("%v: %d lines, upstream %d:\n%s\n%s", args, strings.Count(ours, "\n"), strings.Count(theirs, "\n"), ours, theirs)
		}
	}

	// endpoint health --cluster: every member healthy.
	out := mustCtl(t, c, "endpoint", "health", "--cluster")
	if n := strings.Count(out, "is healthy: successfully committed proposal"); n != 3 {
		t.Fatalf("endpoint health: %q", out)
	}

	// Member IDs and the cluster ID are etcd's.
	var ids []uint64
	want := map[string]bool{}
	for i := 0; i < 3; i++ {
		m := c.Member(i)
		id := config.MemberID([]string{m.PeerURL()}, "etcd-cluster-1", nil)
		ids = append(ids, id)
		want[config.IDString(id)+", started, "+m.Name()+", "+m.PeerURL()+", "+m.ClientURL()+", false"] = true
	}
	for _, line := range strings.Split(strings.TrimSpace(mustCtl(t, c, "member", "list")), "\n") {
		if !want[line] {
			t.Errorf("member list line %q not expected (want one of %v)", line, want)
		}
	}
	status := mustCtl(t, c, "endpoint", "status", "-w", "json")
	if !strings.Contains(status, `"cluster_id":`+strconv.FormatUint(config.ClusterID(ids), 10)) {
		t.Errorf("endpoint status does not carry cluster id %s: %s", config.IDString(config.ClusterID(ids)), status)
	}
	if regexp.MustCompile(`"dbSize":0[,}]`).MatchString(status) {
		t.Errorf("dbSize must be non-zero: %s", status)
	}

	// compaction
	rev := regexp.MustCompile(`"revision":(\d+)`).FindStringSubmatch(mustCtl(t, c, "get", "foo", "-w", "json"))
	if rev == nil {
		t.Fatal("no revision in get -w json")
	}
	if out := mustCtl(t, c, "compaction", rev[1]); strings.TrimSpace(out) != "compacted revision "+rev[1] {
		t.Fatalf("compaction: %q", out)
	}
	if _, errOut, err := c.Etcdctl("get", "foo", "--rev", "1"); err == nil || !strings.Contains(errOut, "required revision has been compacted") {
		t.Fatalf("read below compaction: %v %q", err, errOut)
	}
}

// TestClientV3 does the same operations through clientv3.
func TestClientV3(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t)})
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	p1, err := cli.Put(ctx, "k1", "v1")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := cli.Put(ctx, "k1", "v2", clientv3.WithPrevKV())
	if err != nil {
		t.Fatal(err)
	}
	if p2.PrevKv == nil || string(p2.PrevKv.Value) != "v1" || p2.Header.Revision != p1.Header.Revision+1 {
		t.Fatalf("prev kv / revision: %+v %+v", p1.Header, p2)
	}
	g, err := cli.Get(ctx, "k1")
	if err != nil || len(g.Kvs) != 1 || g.Kvs[0].Version != 2 || g.Kvs[0].CreateRevision != p1.Header.Revision || g.Kvs[0].ModRevision != p2.Header.Revision {
		t.Fatalf("get: %v %+v", err, g)
	}
	for _, k := range []string{"a/1", "a/2", "a/3"} {
		if _, err := cli.Put(ctx, k, k); err != nil {
			t.Fatal(err)
		}
	}
	g, err = cli.Get(ctx, "a/", clientv3.WithPrefix(), clientv3.WithLimit(2), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend))
	if err != nil || len(g.Kvs) != 2 || string(g.Kvs[0].Key) != "a/3" || !g.More || g.Count != 3 {
		t.Fatalf("prefix/limit/sort: %v %+v", err, g)
	}
	txn, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.Version("k1"), "=", 2)).Then(clientv3.OpPut("t", "1"), clientv3.OpGet("k1")).Else(clientv3.OpPut("t", "0")).Commit()
	if err != nil || !txn.Succeeded || len(txn.Responses) != 2 {
		t.Fatalf("txn: %v %+v", err, txn)
	}
	if _, err := cli.Txn(ctx).Then(clientv3.OpPut("dup", "1"), clientv3.OpPut("dup", "2")).Commit(); err == nil || !strings.Contains(err.Error(), "duplicate key given in txn request") {
		t.Fatalf("txn writing a key twice: %v", err)
	}
	d, err := cli.Delete(ctx, "a/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil || d.Deleted != 3 || len(d.PrevKvs) != 3 {
		t.Fatalf("delete: %v %+v", err, d)
	}
	ml, err := cli.MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list: %v %+v", err, ml)
	}
	var names []string
	for _, m := range ml.Members {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "infra0,infra1,infra2" {
		t.Fatalf("names %v", names)
	}
	for _, ep := range c.Endpoints() {
		st, err := cli.Status(ctx, ep)
		if err != nil || st.DbSize == 0 || st.Leader == 0 || st.RaftIndex == 0 {
			t.Fatalf("status %s: %v %+v", ep, err, st)
		}
	}
	if _, err := cli.Compact(ctx, p2.Header.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Get(ctx, "k1", clientv3.WithRev(p1.Header.Revision)); err == nil || !strings.Contains(err.Error(), "compacted") {
		t.Fatalf("compacted read: %v", err)
	}
	// Request too large is etcd's error.
	big := strings.Repeat("x", 2<<20)
	if _, err := cli.Put(ctx, "big", big); err == nil || !strings.Contains(err.Error(), "request is too large") && !strings.Contains(err.Error(), "larger than max") {
		t.Fatalf("too large: %v", err)
	}
}
