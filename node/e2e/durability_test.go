package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdctl-wizard/node/nodetest"
)

// ackLog records every write a client saw acknowledged.
type ackLog struct {
	mu   sync.Mutex
	revs map[string]int64
}

// load runs writers until stop is closed; each writer uses its own client
// on one member and checks that its own acknowledged revisions increase.
func load(t *testing.T, endpoints []string, writers int, stop <-chan struct{}, acks *ackLog, backwards *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoints[w%len(endpoints)]}, DialTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(w int, cli *clientv3.Client) {
			defer wg.Done()
			defer cli.Close()
			var last int64
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("w%02d-%06d", w, seq)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				resp, err := cli.Put(ctx, key, "v")
				cancel()
				if err != nil {
					continue // not acknowledged: may or may not be there
				}
				if resp.Header.Revision <= last {
					backwards.Add(1)
				}
				last = resp.Header.Revision
				acks.mu.Lock()
				acks.revs[key] = resp.Header.Revision
				acks.mu.Unlock()
			}
		}(w, cli)
	}
	return &wg
}

func verifyAcks(t *testing.T, c *nodetest.Cluster, acks *ackLog) {
	t.Helper()
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "w", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = kv.ModRevision
	}
	acks.mu.Lock()
	defer acks.mu.Unlock()
	if len(acks.revs) == 0 {
		t.Fatal("no write was acknowledged at all")
	}
	lost := 0
	for k, rev := range acks.revs {
		if g, ok := got[k]; !ok || g != rev {
			lost++
			if lost < 10 {
				t.Errorf("acknowledged write %s at revision %d: found=%v revision %d", k, rev, ok, g)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged writes lost", lost, len(acks.revs))
	}
	t.Logf("%d acknowledged writes all present with their revisions (store revision %d)", len(acks.revs), resp.Header.Revision)
}

// TestKill9Durability kills members with SIGKILL under concurrent load: one
// member, then the leader, then all members at once. Every acknowledged
// write must be present afterwards with the revision it was acknowledged
// with, and no client may see revisions go backwards.
func TestKill9Durability(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t), ExtraFlags: []string{"--snapshot-count", "2000"}})
	acks := &ackLog{revs: map[string]int64{}}
	var backwards atomic.Int64
	stop := make(chan struct{})
	wg := load(t, c.Endpoints(), 16, stop, acks, &backwards)

	acked := func() int {
		acks.mu.Lock()
		defer acks.mu.Unlock()
		return len(acks.revs)
	}
	killFollowerThenLeader(t, c, "acknowledged writes", acked, [4]int{500, 1500, 2500, 3500})

	// All members at once, mid-load.
	for i := 0; i < 3; i++ {
		c.Member(i).Kill()
	}
	close(stop)
	wg.Wait()
	for i := 0; i < 3; i++ {
		c.Member(i).Restart()
	}
	c.WaitHealthy()
	verifyAcks(t, c, acks)
	if n := backwards.Load(); n > 0 {
		t.Fatalf("%d acknowledged revisions went backwards", n)
	}
	// A clean stop and restart keeps everything too.
	for i := 0; i < 3; i++ {
		c.Member(i).Stop()
	}
	for i := 0; i < 3; i++ {
		c.Member(i).Restart()
	}
	c.WaitHealthy()
	verifyAcks(t, c, acks)
}

// TestLeaderKillAndSnapshotCatchUp kills the leader: the others elect a new
// one and keep accepting writes; the old leader, far behind, rejoins and
// catches up through a snapshot of the database.
func TestLeaderKillAndSnapshotCatchUp(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t),
		ExtraFlags: []string{"--snapshot-count", "100", "--snapshot-catchup-entries", "50"}})
	mustCtl(t, c, "put", "before", "1")
	leader := c.WaitLeader()
	c.Member(leader).Kill()
	newLeader := c.WaitLeader()
	if newLeader == leader {
		t.Fatal("the killed member is still the leader")
	}
	var live []string
	for i := 0; i < 3; i++ {
		if i != leader {
			live = append(live, c.Member(i).ClientURL())
		}
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: live, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := 0; i < 600; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("after-%04d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	m := c.Member(leader)
	m.Restart()
	m.WaitHealthy()
	// Serializable reads against the restarted member only: its own state.
	out, _, err := nodetest.Etcdctl(t, []string{m.ClientURL()}, "get", "after-", "--prefix", "--count-only", "--consistency=s", "-w", "fields")
	if err != nil {
		t.Fatal(err)
	}
	if !containsLine(out, `"Count" : 600`) {
		t.Fatalf("restarted member did not catch up: %s", out)
	}
	if logs := m.Logs(); !containsLine(logs, "applied snapshot from leader") {
		t.Errorf("the member caught up without a snapshot; log:\n%s", logs)
	}
}

func containsLine(s, sub string) bool { return strings.Contains(s, sub) }
