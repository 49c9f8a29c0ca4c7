package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
)

// TestPromoteThroughFollower adds a learner with upstream etcdctl, starts
// it, and promotes it by asking a follower: the follower forwards the
// request to the leader, as etcd does, instead of answering "not leader".
func TestPromoteThroughFollower(t *testing.T) {
	bin := nodetest.BuildNode(t)
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: bin})
	spec := nodetest.NewMemberSpec(t, "infra3")
	out := mustCtl(t, c, "member", "add", "infra3", "--learner", "--peer-urls="+spec.PeerURL)
	m := regexp.MustCompile(`Member\s+([0-9a-f]+) added as learner to cluster\s+([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("member add --learner output: %q", out)
	}
	id := m[1]
	var initial string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "ETCD_INITIAL_CLUSTER="); ok {
			initial = strings.Trim(v, `"`)
		}
	}
	nodetest.StartMember(t, nodetest.MemberOptions{Spec: spec, Binary: bin,
		Args: []string{"--name", "infra3", "--data-dir", spec.DataDir, "--listen-peer-urls", spec.PeerURL, "--listen-client-urls", spec.ClientURL,
			"--advertise-client-urls", spec.ClientURL, "--initial-advertise-peer-urls", spec.PeerURL,
			"--initial-cluster", initial, "--initial-cluster-state", "existing"}})

	follower := c.Member((c.WaitLeader() + 1) % 3).ClientURL()
	// Promoting a voting member is refused with etcd's message, from the
	// leader through the follower.
	voter := strings.Fields(mustCtl(t, c, "member", "list"))[0]
	if _, errOut, err := nodetest.Etcdctl(t, []string{follower}, "member", "promote", strings.TrimSuffix(voter, ",")); err == nil || !strings.Contains(errOut, "can only promote a learner member") {
		t.Fatalf("promote of a voting member: %v %q", err, errOut)
	}
	// The learner may still be catching up: etcd's "not in sync" answer,
	// then success.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, err := nodetest.Etcdctl(t, []string{follower}, "member", "promote", id)
		if err == nil {
			if !regexp.MustCompile(`Member\s+` + id + ` promoted in cluster`).MatchString(out) {
				t.Fatalf("promote output: %q", out)
			}
			break
		}
		if !strings.Contains(errOut, "can only promote a learner member which is in sync with leader") || time.Now().After(deadline) {
			t.Fatalf("promote through a follower: %v %q", err, errOut)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A voting member now (the last column is IsLearner); its name shows
	// once it has published itself.
	for list := mustCtl(t, c, "member", "list"); !strings.Contains(list, id+", started, infra3, "+spec.PeerURL+", "+spec.ClientURL+", false"); list = mustCtl(t, c, "member", "list") {
		if strings.Contains(list, ", true") || time.Now().After(deadline) {
			t.Fatalf("member list after the promote: %s", list)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mustCtl(t, c, "put", "after-promote", "yes")
	if got, _, err := nodetest.Etcdctl(t, []string{spec.ClientURL}, "get", "after-promote", "--print-value-only"); err != nil || got != "yes\n" {
		t.Fatalf("read through the promoted member: %v %q", err, got)
	}
}
