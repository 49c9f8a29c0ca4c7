package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdctl-wizard/node/nodetest"
)

// TestWatchAcrossSnapshotInstall pauses a follower with watchers attached
// while the others write (and compact) far beyond the log the leader keeps:
// on resume the follower installs a database snapshot. Its watchers must get
// every event in order, or be canceled with the compaction revision; never
// skip revisions silently.
func TestWatchAcrossSnapshotInstall(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t),
		ExtraFlags: []string{"--snapshot-count", "100", "--snapshot-catchup-entries", "50"}})
	leader := c.WaitLeader()
	lcli := memberClient(t, c.Member(leader).ClientURL())
	fi := (leader + 1) % 3
	fcli := memberClient(t, c.Member(fi).ClientURL())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start, err := lcli.Put(ctx, "s/start", "v")
	if err != nil {
		t.Fatal(err)
	}
	// One watcher that will fall below the compaction, one that will not.
	whole := fcli.Watch(ctx, "s/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision))
	recvEvents(t, whole, 1)
	c.Member(fi).Pause()
	putN(t, lcli, "s/a", 1500, 16)
	mid, err := lcli.Put(ctx, "s/mid", "v")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lcli.Compact(ctx, mid.Header.Revision); err != nil {
		t.Fatal(err)
	}
	putN(t, lcli, "s/b", 1500, 16)
	c.Member(fi).Resume()

	// The compaction happened in the snapshot: the watcher that was at the
	// head before the pause is behind it now.
	var evs []*clientv3.Event
	timeout := time.After(20 * time.Second)
	compacted := int64(0)
	for compacted == 0 && len(evs) < 3001 {
		select {
		case resp, ok := <-whole:
			if !ok {
				t.Fatalf("watch closed after %d events", len(evs))
			}
			if resp.CompactRevision != 0 {
				compacted = resp.CompactRevision
				break
			}
			if err := resp.Err(); err != nil {
				t.Fatal(err)
			}
			evs = append(evs, resp.Events...)
		case <-timeout:
			t.Fatalf("%d events, no compaction", len(evs))
		}
	}
	checkIncreasing(t, evs, start.Header.Revision+1)
	if compacted != 0 && compacted != mid.Header.Revision {
		t.Fatalf("canceled at compaction %d, want %d", compacted, mid.Header.Revision)
	}
	// The member logs the install after its watchers were reset, so the
	// line may trail the cancel the watcher just got.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(c.Member(fi).Logs(), "applied snapshot from leader"); {
		if time.Now().After(deadline) {
			t.Fatal("the follower caught up without a snapshot: the test did not test it")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("watcher from before the snapshot: %d events, compact revision %d", len(evs), compacted)
	// A new watcher from the compaction revision on the follower gets everything since.
	late := recvEvents(t, fcli.Watch(ctx, "s/", clientv3.WithPrefix(), clientv3.WithRev(mid.Header.Revision)), 1501)
	checkIncreasing(t, late, mid.Header.Revision)
	if k := string(late[0].Kv.Key); k != "s/mid" {
		t.Fatalf("first event %s", k)
	}
}
