package e2e

import (
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
)

// waitProgress polls progress until it reaches n, failing the test when the
// workload stalls.
func waitProgress(t *testing.T, what string, progress func() int, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if progress() >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s stalled below %d", what, n)
}

// killFollowerThenLeader is the fault schedule of the load tests: once the
// workload made marks[0] progress, SIGKILL a follower; at marks[1] restart
// it; then SIGKILL the leader; at marks[2] restart it; return at marks[3].
func killFollowerThenLeader(t *testing.T, c *nodetest.Cluster, what string, progress func() int, marks [4]int) {
	t.Helper()
	waitProgress(t, what, progress, marks[0])
	follower := (c.WaitLeader() + 1) % 3
	c.Member(follower).Kill()
	waitProgress(t, what, progress, marks[1])
	c.Member(follower).Restart()
	c.Member(follower).WaitHealthy()
	leader := c.WaitLeader()
	c.Member(leader).Kill()
	waitProgress(t, what, progress, marks[2])
	c.Member(leader).Restart()
	c.WaitHealthy()
	waitProgress(t, what, progress, marks[3])
}
