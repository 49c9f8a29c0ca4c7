package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/node/nodetest/proc"
)

// watchProc is a running `etcdctl watch`; lines delivers its stdout.
type watchProc struct {
	lines chan string
}

func startEtcdctlWatch(t *testing.T, endpoint string, args ...string) *watchProc {
	t.Helper()
	_, ctl := nodetest.Upstream(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, ctl, append([]string{"--endpoints=" + endpoint, "watch"}, args...)...)
	cmd.Env = proc.CleanEnv(nil)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &watchProc{lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
	}()
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	return w
}

// next returns n lines of output, failing the test if they do not come.
func (w *watchProc) next(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	timeout := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case l, ok := <-w.lines:
			if !ok {
				t.Fatalf("etcdctl watch exited after %q", out)
			}
			out = append(out, l)
		case <-timeout:
			t.Fatalf("etcdctl watch printed %q, want %d lines", out, n)
		}
	}
	return out
}

func expectLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("etcdctl watch printed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestWatchEtcdctl drives upstream etcdctl watch against one member while
// upstream etcdctl writes through another; the output must be etcd's.
func TestWatchEtcdctl(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t)})
	m0, m1 := c.Member(0).ClientURL(), c.Member(1).ClientURL()
	put := func(k, v string) {
		t.Helper()
		if out, errOut, err := nodetest.Etcdctl(t, []string{m1}, "put", k, v); err != nil {
			t.Fatalf("put: %v\n%s%s", err, out, errOut)
		}
	}

	// Plain `watch foo` starts at the current revision: write until the
	// watcher is there, then every later write must be printed in order.
	w := startEtcdctlWatch(t, m0, "foo")
	first := -1
	for i := 0; first < 0; i++ {
		put("foo", fmt.Sprintf("v%d", i))
		select {
		case l := <-w.lines:
			expectLines(t, []string{l}, "PUT")
			got := w.next(t, 2)
			if got[0] != "foo" {
				t.Fatalf("key line %q", got[0])
			}
			fmt.Sscanf(got[1], "v%d", &first)
		case <-time.After(200 * time.Millisecond):
			if i > 50 {
				t.Fatal("etcdctl watch foo printed nothing")
			}
		}
	}
	// Drain the writes made before the first event was read.
	rev := currentRev(t, c)
	put("foo", "last")
	put("bar", "ignored")
	if _, _, err := nodetest.Etcdctl(t, []string{m1}, "del", "foo"); err != nil {
		t.Fatal(err)
	}
	var tail []string
	for {
		tail = append(tail, w.next(t, 3)...)
		if tail[len(tail)-1] == "last" {
			break
		}
	}
	expectLines(t, tail[len(tail)-3:], "PUT", "foo", "last")
	expectLines(t, w.next(t, 3), "DELETE", "foo", "")

	// --prefix --rev replays history, --prev-kv adds the previous pair.
	expectLines(t, startEtcdctlWatch(t, m0, "fo", "--prefix", "--rev", fmt.Sprint(rev+1)).next(t, 6),
		"PUT", "foo", "last", "DELETE", "foo", "")
	expectLines(t, startEtcdctlWatch(t, m0, "foo", "--prev-kv", "--rev", fmt.Sprint(rev+1)).next(t, 10),
		"PUT", "foo", fmt.Sprintf("v%d", lastValue(t, c, rev)), "foo", "last",
		"DELETE", "foo", "last", "foo", "")
}

func currentRev(t *testing.T, c *nodetest.Cluster) int64 {
	t.Helper()
	resp, err := c.Client(t).Get(context.Background(), "foo")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// lastValue is foo's value number at rev.
func lastValue(t *testing.T, c *nodetest.Cluster, rev int64) int {
	t.Helper()
	out := mustCtl(t, c, "get", "foo", "--print-value-only", "--rev", fmt.Sprint(rev))
	var n int
	fmt.Sscanf(strings.TrimSpace(out), "v%d", &n)
	return n
}
