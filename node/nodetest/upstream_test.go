package nodetest

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest/proc"
)

// memberID recomputes etcd's static-bootstrap member ID independently of any product code: the
// first 8 bytes (big-endian) of sha1(sorted peer URLs concatenated + token).
func memberID(t *testing.T, peerURLs []string, token string) string {
	t.Helper()
	norm := make([]string, len(peerURLs))
	for i, s := range peerURLs {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("peer URL %q: %v", s, err)
		}
		norm[i] = u.String()
	}
	sort.Strings(norm)
	sum := sha1.Sum([]byte(strings.Join(norm, "") + token))
	return fmt.Sprintf("%x", binary.BigEndian.Uint64(sum[:8]))
}

func TestMemberIDVectors(t *testing.T) {
	// Vectors from SPEC-etcd.md §2.2, verified there against upstream.
	tests := []struct {
		urls  []string
		token string
		want  string
	}{
		{[]string{"http://localhost:2380"}, "etcd-cluster", "8e9e05c52164694d"},
		{[]string{"http://10.0.1.10:2380"}, "etcd-cluster-1", "140fedbeeb74765d"},
		{[]string{"http://10.0.1.11:2380"}, "etcd-cluster-1", "d5dc5f8d75d04e29"},
		{[]string{"http://10.0.1.12:2380"}, "etcd-cluster-1", "8a0a11c6194fc77"},
		{[]string{"http://10.0.0.8:2379"}, "", fmt.Sprintf("%x", uint64(14544069596553697298))},
		{[]string{"http://10.0.0.2:2379", "http://10.0.0.1:2379"}, "", fmt.Sprintf("%x", uint64(16552244735972308939))},
	}
	for _, tc := range tests {
		if got := memberID(t, tc.urls, tc.token); got != tc.want {
			t.Errorf("memberID(%v, %q) = %s, want %s", tc.urls, tc.token, got, tc.want)
		}
	}
}

// TestUpstreamCluster validates the harness itself against upstream etcd: the static flags bring
// up a 3-member cluster, etcdctl sees what the flags imply, and the member controls work.
func TestUpstreamCluster(t *testing.T) {
	etcd, _ := Upstream(t)
	const token = "harness-token"
	c := StartCluster(t, ClusterOptions{Binary: etcd, Size: 3, Token: token})
	leader := c.WaitLeader()

	ids := make([]string, 3)
	for i := range ids {
		ids[i] = memberID(t, []string{c.Member(i).PeerURL()}, token)
	}

	run := func(args ...string) string {
		t.Helper()
		out, stderr, err := c.Etcdctl(args...)
		if err != nil {
			t.Fatalf("%v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
		}
		return out
	}

	if out := run("put", "foo", "bar"); out != "OK\n" {
		t.Errorf("put: got %q, want %q", out, "OK\n")
	}
	if out := run("get", "foo"); out != "foo\nbar\n" {
		t.Errorf("get: got %q, want %q", out, "foo\nbar\n")
	}

	list := run("member", "list", "-w", "table")
	for i, id := range ids {
		m := c.Member(i)
		row := findRow(t, list, id)
		for _, want := range []string{"started", m.Name(), m.PeerURL(), m.ClientURL(), "false"} {
			if !containsCell(row, want) {
				t.Errorf("member list row for %s lacks %q: %q", id, want, row)
			}
		}
	}
	started := 0
	for _, line := range strings.Split(list, "\n") {
		if containsCell(line, "started") {
			started++
		}
	}
	if started != 3 {
		t.Errorf("member list: %d started rows, want 3:\n%s", started, list)
	}

	health := run("endpoint", "health", "--cluster")
	for i := range ids {
		want := c.Member(i).ClientURL() + " is healthy: successfully committed proposal"
		if !strings.Contains(health, want) {
			t.Errorf("endpoint health lacks %q:\n%s", want, health)
		}
	}

	status := run("endpoint", "status", "--cluster", "-w", "table")
	leaders := 0
	for i, id := range ids {
		row := findRow(t, status, id)
		if !containsCell(row, c.Member(i).ClientURL()) || !containsCell(row, "3.7.3") {
			t.Errorf("endpoint status row for %s: %q", id, row)
		}
		if isLeader := column(t, status, row, "IS LEADER") == "true"; isLeader {
			leaders++
			if i != leader {
				t.Errorf("endpoint status names %s leader, WaitLeader said %s", c.Member(i).Name(), c.Member(leader).Name())
			}
		}
	}
	if leaders != 1 {
		t.Errorf("endpoint status: %d leaders, want 1:\n%s", leaders, status)
	}

	// A follower killed and restarted keeps its data; a paused one comes back.
	follower := c.Member((leader + 1) % 3)
	oldPid := follower.Pid()
	follower.Kill()
	if follower.Running() {
		t.Fatal("member still running after Kill")
	}
	run("put", "after-kill", "v")
	follower.Restart()
	if follower.Pid() == oldPid {
		t.Error("Restart kept the old pid")
	}
	follower.WaitHealthy()
	out, stderr, err := Etcdctl(t, []string{follower.ClientURL()}, "get", "after-kill", "--consistency=s", "--print-value-only")
	if err != nil || out != "v\n" {
		t.Errorf("restarted member: get after-kill = %q, %v (%s)", out, err, stderr)
	}
	if !strings.Contains(follower.Logs(), "=== harness: starting "+follower.Name()) {
		t.Error("member log lacks the harness start marker")
	}

	follower.Pause()
	if st, err := proc.State(follower.Pid()); err != nil || st != "T" {
		t.Errorf("paused member state %q (%v), want T", st, err)
	}
	run("put", "while-paused", "v")
	follower.Resume()
	follower.WaitHealthy()
	if st, err := proc.State(follower.Pid()); err != nil || st == "T" {
		t.Errorf("member state %q (%v) after Resume", st, err)
	}
	c.WaitLeader()

	// etcd re-raises SIGTERM after its shutdown handlers, so "ended by SIGTERM" is a clean stop;
	// Stop itself fails the test if it had to fall back to SIGKILL.
	follower.Stop()
	if err := follower.Proc().ExitErr(); err != nil {
		var exitErr *exec.ExitError
		if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
			t.Errorf("after Stop: %v, want exit 0 or SIGTERM", err)
		}
	}
}

// TestExtraMember starts single members with error-case flags and a joining member.
func TestExtraMember(t *testing.T) {
	etcd, _ := Upstream(t)

	t.Run("name not in initial cluster", func(t *testing.T) {
		spec := NewMemberSpec(t, "infra1")
		args := spec.StaticFlags("tok", "infra0="+spec.PeerURL, "new")
		code, out := RunExpectExit(t, etcd, args, nil, 20*time.Second)
		if code != 1 || !strings.Contains(out, `couldn't find local name \"infra1\" in the initial cluster configuration`) {
			t.Errorf("exit %d, output:\n%s", code, out)
		}
	})

	t.Run("join by member add", func(t *testing.T) {
		c := StartCluster(t, ClusterOptions{Binary: etcd, Size: 1})
		spec := NewMemberSpec(t, "infra1")
		out, stderr, err := c.Etcdctl("member", "add", spec.Name, "--peer-urls="+spec.PeerURL)
		if err != nil {
			t.Fatalf("member add: %v\n%s%s", err, out, stderr)
		}
		initial := c.InitialCluster() + "," + spec.Name + "=" + spec.PeerURL
		m := StartMember(t, MemberOptions{Spec: spec, Binary: etcd, Args: spec.StaticFlags(c.Config.Token, initial, "existing")})
		m.WaitHealthy()
		list, _, err := c.Etcdctl("member", "list")
		if err != nil || strings.Count(list, ", started, ") != 2 {
			t.Errorf("member list after join (%v):\n%s", err, list)
		}
	})
}

// column returns the cell of row under the header named name in an etcdctl -w table output.
func column(t *testing.T, table, row, name string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") && !strings.HasPrefix(line, "│") {
			continue
		}
		for i, h := range cells(line) {
			if h == name {
				if c := cells(row); i < len(c) {
					return c[i]
				}
				t.Fatalf("row %q has no column %d (%s)", row, i, name)
			}
		}
		break
	}
	t.Fatalf("no column %q in:\n%s", name, table)
	return ""
}

func findRow(t *testing.T, table, id string) string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if containsCell(line, id) {
			return line
		}
	}
	t.Fatalf("no row with %s in:\n%s", id, table)
	return ""
}

// cells splits a table row; etcdctl 3.7 draws tables with box characters, older ones with '|'.
func cells(row string) []string {
	row = strings.ReplaceAll(row, "│", "|")
	parts := strings.Split(strings.Trim(strings.TrimSpace(row), "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func containsCell(row, want string) bool {
	for _, c := range cells(row) {
		if c == want {
			return true
		}
	}
	return false
}
