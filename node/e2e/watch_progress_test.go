package e2e

import (
	"context"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/node/nodetest/proc"
)

// TestWatchProgressNotifyAndRequireLeader: with
// --watch-progress-notify-interval a quiet watcher that asked for progress
// gets periodic empty responses carrying the current revision; a watch
// opened with the require-leader metadata ends with "no leader" once its
// member lost the leader.
func TestWatchProgressNotifyAndRequireLeader(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t),
		ExtraFlags: []string{"--watch-progress-notify-interval", "300ms"}})
	lead := c.WaitLeader()
	follower := (lead + 1) % 3
	cli, err := proc.NewClient([]string{c.Member(follower).ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	put, err := cli.Put(ctx, "quiet/x", "1")
	if err != nil {
		t.Fatal(err)
	}

	wch := cli.Watch(ctx, "quiet/", clientv3.WithPrefix(), clientv3.WithProgressNotify(), clientv3.WithRev(put.Header.Revision+1))
	start := time.Now()
	var progress int
	for progress < 2 {
		select {
		case resp := <-wch:
			if err := resp.Err(); err != nil {
				t.Fatalf("watch: %v", err)
			}
			if !resp.IsProgressNotify() {
				t.Fatalf("a quiet watch got %d events", len(resp.Events))
			}
			if resp.Header.Revision != put.Header.Revision {
				t.Errorf("progress at revision %d, want %d", resp.Header.Revision, put.Header.Revision)
			}
			progress++
		case <-ctx.Done():
			t.Fatalf("%d progress notifications in %v", progress, time.Since(start))
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("two progress notifications took %v with a 300 ms interval", d)
	}

	// Require-leader: the other two members gone, the follower has no
	// leader, and the watch ends with etcd's error instead of hanging.
	lctx := clientv3.WithRequireLeader(ctx)
	lch := cli.Watch(lctx, "quiet/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if resp := <-lch; !resp.Created {
		t.Fatalf("require-leader watch not created: %v", resp.Err())
	}
	for i := 0; i < 3; i++ {
		if i != follower {
			c.Member(i).Kill()
		}
	}
	start = time.Now()
	for {
		select {
		case resp, ok := <-lch:
			if !ok {
				t.Fatal("the require-leader watch closed without an error")
			}
			if err := resp.Err(); err != nil {
				if err != rpctypes.ErrNoLeader {
					t.Fatalf("require-leader watch ended with %v, want %v", err, rpctypes.ErrNoLeader)
				}
				t.Logf("require-leader watch ended %v after the leader was lost: %v", time.Since(start).Round(time.Millisecond), err)
				return
			}
		case <-ctx.Done():
			t.Fatalf("the require-leader watch still runs %v after its member lost the leader", time.Since(start))
		}
	}
}
