package e2e

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdctl-wizard/node/nodetest"
)

// The test clusters run etcd's default heartbeat (100ms) and election
// timeout (1s): the minimum lease TTL is 2s, etcd's ceil(1.5 elections).
const minTTL = 2

var grantedRE = regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n$`)

// ctlGrant runs `etcdctl lease grant ttl` and returns the lease ID in hex.
func ctlGrant(t *testing.T, c *nodetest.Cluster, ttl int) string {
	t.Helper()
	out := mustCtl(t, c, "lease", "grant", fmt.Sprint(ttl))
	m := grantedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lease grant printed %q", out)
	}
	return m[1]
}

// ctlFails runs etcdctl, expects it to fail, and returns its "Error:" line
// (clientv3 may log its retries on stderr before it).
func ctlFails(t *testing.T, c *nodetest.Cluster, args ...string) string {
	t.Helper()
	out, errOut, err := c.Etcdctl(args...)
	if err == nil {
		t.Fatalf("etcdctl %s succeeded: %s", strings.Join(args, " "), out)
	}
	for _, l := range strings.Split(errOut, "\n") {
		if strings.HasPrefix(l, "Error: ") {
			return l + "\n"
		}
	}
	t.Fatalf("etcdctl %s printed no error: %s", strings.Join(args, " "), errOut)
	return ""
}

func expectOut(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("etcdctl printed\n%q\nwant\n%q", got, want)
	}
}

// TestLeaseEtcdctl drives every lease command of upstream etcdctl and checks
// etcd's output and errors, byte for byte; the same script runs against
// upstream etcd, so the expectations are etcd's own.
func TestLeaseEtcdctl(t *testing.T) {
	t.Run("etcd-node", func(t *testing.T) {
		leaseEtcdctlScript(t, nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t)}))
	})
	t.Run("upstream etcd", func(t *testing.T) {
		etcd, _ := nodetest.Upstream(t)
		leaseEtcdctlScript(t, nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: etcd}))
	})
}

func leaseEtcdctlScript(t *testing.T, c *nodetest.Cluster) {
	id := ctlGrant(t, c, 5)
	expectOut(t, mustCtl(t, c, "put", "--lease="+id, "k1", "v"), "OK\n")
	expectOut(t, mustCtl(t, c, "put", "--lease="+id, "k0", "v"), "OK\n")
	// etcd lists the keys in map order; etcd-node sorts them.
	ttlRE := regexp.MustCompile(`^lease ` + id + ` granted with TTL\(5s\), remaining\([45]s\), attached keys\(\[(k0 k1|k1 k0)\]\)\n$`)
	if out := mustCtl(t, c, "lease", "timetolive", id, "--keys"); !ttlRE.MatchString(out) {
		t.Fatalf("timetolive --keys printed %q", out)
	}
	if out := mustCtl(t, c, "lease", "timetolive", id); !regexp.MustCompile(`^lease ` + id + ` granted with TTL\(5s\), remaining\([45]s\)\n$`).MatchString(out) {
		t.Fatalf("timetolive printed %q", out)
	}
	expectOut(t, mustCtl(t, c, "lease", "list"), "found 1 leases\n"+id+"\n")
	expectOut(t, mustCtl(t, c, "lease", "keep-alive", "--once", id), "lease "+id+" keepalived with TTL(5)\n")

	// A key moved to no lease is detached; one deleted too.
	expectOut(t, mustCtl(t, c, "put", "k1", "unleased"), "OK\n")
	if out := mustCtl(t, c, "lease", "timetolive", id, "--keys"); !strings.HasSuffix(out, "attached keys([k0])\n") {
		t.Fatalf("after moving k1 off the lease: %q", out)
	}

	expectOut(t, mustCtl(t, c, "lease", "revoke", id), "lease "+id+" revoked\n")
	expectOut(t, mustCtl(t, c, "get", "k0"), "")
	expectOut(t, mustCtl(t, c, "get", "k1", "--print-value-only"), "unleased\n")
	expectOut(t, mustCtl(t, c, "lease", "timetolive", id), "lease "+id+" already expired\n")
	expectOut(t, mustCtl(t, c, "lease", "list"), "found 0 leases\n")

	// etcd's errors.
	expectOut(t, ctlFails(t, c, "put", "--lease="+id, "k", "v"), "Error: etcdserver: requested lease not found\n")
	expectOut(t, ctlFails(t, c, "lease", "revoke", id), "Error: failed to revoke lease (etcdserver: requested lease not found)\n")
	expectOut(t, ctlFails(t, c, "lease", "keep-alive", "--once", id), "Error: etcdserver: requested lease not found\n")
	expectOut(t, ctlFails(t, c, "lease", "grant", "9000000001"), "Error: failed to grant lease (etcdserver: too large lease TTL)\n")
	// A TTL below the minimum is raised to it, as etcd does.
	short := ctlGrant(t, c, 1)
	if out := mustCtl(t, c, "lease", "timetolive", short); !strings.Contains(out, fmt.Sprintf("granted with TTL(%ds)", minTTL)) {
		t.Fatalf("TTL 1 granted as %q, want the minimum %ds", out, minTTL)
	}

	// A client-chosen ID (etcdctl cannot choose one): taken twice is refused.
	cli := c.Client(t)
	lc := pb.NewLeaseClient(cli.ActiveConnection())
	ctx := context.Background()
	if resp, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 0x1234, TTL: 30}); err != nil || resp.ID != 0x1234 || resp.TTL != 30 {
		t.Fatalf("grant with an ID: %v, %v", resp, err)
	}
	if _, err := lc.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: 0x1234, TTL: 30}); !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseExist) || rpctypes.ErrorDesc(err) != "etcdserver: lease already exists" {
		t.Fatalf("grant of an ID in use: %v", err)
	}
	// Txn puts are checked too.
	_, err := cli.Txn(ctx).Then(clientv3.OpPut("t1", "v"), clientv3.OpPut("t2", "v", clientv3.WithLease(0x99))).Commit()
	if !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseNotFound) {
		t.Fatalf("txn put with an unknown lease: %v", err)
	}
	expectOut(t, mustCtl(t, c, "get", "t1"), "")
}

// waitDelete waits for DELETE events of keys, all at one revision, and
// returns when they arrived.
func waitDelete(t *testing.T, wch clientv3.WatchChan, keys ...string) time.Time {
	t.Helper()
	evs := recvEvents(t, wch, len(keys))
	for i, ev := range evs {
		if ev.Type != mvccpb.DELETE || string(ev.Kv.Key) != keys[i] || ev.Kv.ModRevision != evs[0].Kv.ModRevision {
			t.Fatalf("event %d: %v %s@%d, want DELETE %s at one revision", i, ev.Type, ev.Kv.Key, ev.Kv.ModRevision, keys[i])
		}
	}
	return time.Now()
}

// expiryBound is how late a lease may be revoked after its TTL: the expiry
// loop looks every 500ms, then a revoke goes through raft.
const expiryBound = 2 * time.Second

// TestLeaseExpiry: a lease without keep-alives goes at its TTL with all its
// keys at one revision; one kept alive through a follower stays for several
// TTLs and goes once the keep-alives stop.
func TestLeaseExpiry(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t)})
	leader := c.WaitLeader()
	follower := memberClient(t, c.Member((leader+1)%3).ClientURL())
	watcher := memberClient(t, c.Member((leader+2)%3).ClientURL())

	t.Run("no keep-alive", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wch := watcher.Watch(ctx, "idle/", clientv3.WithPrefix())
		start := time.Now()
		l, err := follower.Grant(ctx, minTTL)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"idle/a", "idle/b", "idle/c"} {
			if _, err := follower.Put(ctx, k, "v", clientv3.WithLease(l.ID)); err != nil {
				t.Fatal(err)
			}
		}
		recvEvents(t, wch, 3) // the puts
		gone := waitDelete(t, wch, "idle/a", "idle/b", "idle/c")
		if d := gone.Sub(start); d < minTTL*time.Second || d > minTTL*time.Second+expiryBound {
			t.Fatalf("keys of a %ds lease deleted after %v", minTTL, d)
		}
		if resp, err := follower.TimeToLive(ctx, l.ID); err != nil || resp.TTL != -1 {
			t.Fatalf("time to live after expiry: %+v, %v", resp, err)
		}
	})

	t.Run("keep-alive through a follower", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wch := watcher.Watch(ctx, "kept/", clientv3.WithPrefix())
		l, err := follower.Grant(ctx, minTTL)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := follower.Put(ctx, "kept/a", "v", clientv3.WithLease(l.ID)); err != nil {
			t.Fatal(err)
		}
		recvEvents(t, wch, 1)
		kctx, stopKeepAlive := context.WithCancel(ctx)
		ka, err := follower.KeepAlive(kctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		answers := 0
		deadline := time.After(3 * minTTL * time.Second)
	keep:
		for {
			select {
			case resp, ok := <-ka:
				if !ok {
					t.Fatal("keep-alive channel closed: the lease expired")
				}
				if resp.TTL != minTTL {
					t.Fatalf("keep-alive answered TTL %d", resp.TTL)
				}
				answers++
			case resp := <-wch:
				t.Fatalf("lease kept alive lost its key: %+v", resp.Events)
			case <-deadline:
				break keep
			}
		}
		if answers < 3 {
			t.Fatalf("%d keep-alive answers in %d TTLs", answers, 3)
		}
		ttl, err := follower.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
		if err != nil || ttl.TTL <= 0 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "kept/a" {
			t.Fatalf("time to live through the follower: %+v, %v", ttl, err)
		}
		stopKeepAlive()
		stopped := time.Now()
		gone := waitDelete(t, wch, "kept/a")
		if d := gone.Sub(stopped); d > minTTL*time.Second+expiryBound {
			t.Fatalf("key deleted %v after the keep-alives stopped", d)
		}
	})
}

// TestLeaseLeaderFailover kills -9 the leader: a lease kept alive survives
// (keep-alives resume on the new leader), and a lease without keep-alives
// is not expired before its TTL because of the election.
func TestLeaseLeaderFailover(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t)})
	leader := c.WaitLeader()
	survivor := memberClient(t, c.Member((leader+1)%3).ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	kept, err := survivor.Grant(ctx, minTTL)
	if err != nil {
		t.Fatal(err)
	}
	const idleTTL = 4
	start := time.Now()
	idle, err := survivor.Grant(ctx, idleTTL)
	if err != nil {
		t.Fatal(err)
	}
	for k, id := range map[string]clientv3.LeaseID{"kept": kept.ID, "idle": idle.ID} {
		if _, err := survivor.Put(ctx, k, "v", clientv3.WithLease(id)); err != nil {
			t.Fatal(err)
		}
	}
	wch := survivor.Watch(ctx, "idle")
	ka, err := survivor.KeepAlive(ctx, kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ka { // drain; a close is detected below through the key
		}
	}()

	c.Member(leader).Kill()
	if nl := c.WaitLeader(); nl == leader {
		t.Fatal("the killed member is still the leader")
	}
	gone := waitDelete(t, wch, "idle")
	if d := gone.Sub(start); d < idleTTL*time.Second {
		t.Fatalf("a %ds lease expired after %v, across a leader change", idleTTL, d)
	}
	// By now the new leader has tracked the kept lease for longer than its
	// TTL: only forwarded keep-alives can have saved it.
	resp, err := survivor.TimeToLive(ctx, kept.ID, clientv3.WithAttachedKeys())
	if err != nil || resp.TTL <= 0 || len(resp.Keys) != 1 {
		t.Fatalf("kept lease after the failover: %+v, %v", resp, err)
	}
	if g, err := survivor.Get(ctx, "kept"); err != nil || len(g.Kvs) != 1 {
		t.Fatalf("kept key after the failover: %v, %v", g, err)
	}
}

// TestLeaseDurability: leases and their keys survive kill -9 of every
// member, and a member that catches up through a snapshot of the database
// rebuilds them from it (a revoke then deletes the same keys there).
func TestLeaseDurability(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t),
		ExtraFlags: []string{"--snapshot-count", "100", "--snapshot-catchup-entries", "50"}})
	id := ctlGrant(t, c, 60)
	mustCtl(t, c, "put", "--lease="+id, "a/1", "v")
	for i := 0; i < 3; i++ {
		c.Member(i).Kill()
	}
	for i := 0; i < 3; i++ {
		c.Member(i).Restart()
	}
	c.WaitHealthy()
	if out := mustCtl(t, c, "lease", "timetolive", id, "--keys"); !strings.HasPrefix(out, "lease "+id+" granted with TTL(60s), remaining(") || !strings.HasSuffix(out, "attached keys([a/1])\n") {
		t.Fatalf("after kill -9 of every member: %q", out)
	}

	leader := c.WaitLeader()
	lag := c.Member((leader + 1) % 3)
	lag.Kill()
	live := []string{c.Member(leader).ClientURL(), c.Member((leader + 2) % 3).ClientURL()}
	cli, err := clientv3.New(clientv3.Config{Endpoints: live, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	l2, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"b/1", "b/2"} {
		if _, err := cli.Put(ctx, k, "v", clientv3.WithLease(l2.ID)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 300; i++ { // past --snapshot-count: the lagging member needs a snapshot
		if _, err := cli.Put(ctx, fmt.Sprintf("fill/%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	lag.Restart()
	lag.WaitHealthy()
	if !strings.Contains(lag.Logs(), "applied snapshot from leader") {
		t.Fatal("the lagging member did not catch up through a snapshot")
	}
	lagCtl := func(args ...string) string {
		out, errOut, err := nodetest.Etcdctl(t, []string{lag.ClientURL()}, args...)
		if err != nil {
			t.Fatalf("etcdctl %v on the restarted member: %v %s", args, err, errOut)
		}
		return out
	}
	want := fmt.Sprintf("found 2 leases\n%s\n%016x\n", id, l2.ID)
	if id > fmt.Sprintf("%016x", l2.ID) {
		want = fmt.Sprintf("found 2 leases\n%016x\n%s\n", l2.ID, id)
	}
	expectOut(t, lagCtl("lease", "list"), want)
	rv, err := cli.Revoke(ctx, l2.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The revoke was applied on the restarted member with the attachments
	// it rebuilt from the snapshot: its own history shows both keys deleted.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wch := memberClient(t, lag.ClientURL()).Watch(wctx, "b/", clientv3.WithPrefix(), clientv3.WithRev(rv.Header.Revision))
	waitDelete(t, wch, "b/1", "b/2")
	expectOut(t, lagCtl("get", "a/1", "--print-value-only", "--consistency=s"), "v\n")
}
