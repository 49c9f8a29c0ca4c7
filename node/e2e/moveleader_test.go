package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"etcdctl-wizard/node/nodetest"
)

// TestMoveLeader hands leadership over with upstream etcdctl move-leader,
// which finds the leader among its endpoints and asks it.
func TestMoveLeader(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t)})
	c.WaitLeader()
	var st []struct {
		Status struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
			} `json:"header"`
			Leader uint64 `json:"leader"`
		} `json:"Status"`
	}
	if err := json.Unmarshal([]byte(mustCtl(t, c, "endpoint", "status", "-w", "json")), &st); err != nil || len(st) != 3 {
		t.Fatalf("endpoint status: %v %+v", err, st)
	}
	var target uint64
	old := st[0].Status.Leader
	for _, s := range st {
		if s.Status.Header.MemberID != s.Status.Leader {
			target = s.Status.Header.MemberID
		}
	}
	out := mustCtl(t, c, "move-leader", fmt.Sprintf("%x", target))
	if target == 0 || !strings.Contains(out, fmt.Sprintf("Leadership transferred from %x to %x", old, target)) {
		t.Fatalf("move-leader: %q", out)
	}
	if err := json.Unmarshal([]byte(mustCtl(t, c, "endpoint", "status", "-w", "json")), &st); err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.Status.Leader != target {
			t.Fatalf("after move-leader a member sees leader %x, want %x", s.Status.Leader, target)
		}
	}
	if _, errOut, err := c.Etcdctl("move-leader", "1234"); err == nil || !strings.Contains(errOut, "bad leader transferee") {
		t.Fatalf("move-leader to an unknown member: %v %q", err, errOut)
	}
	mustCtl(t, c, "put", "after-move", "yes")
}
