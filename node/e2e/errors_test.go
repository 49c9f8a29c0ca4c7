package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/nodetest"
)

// The guide's error cases, run as real processes. The first two fail before
// any listener opens, so the guide's 10.0.1.x addresses are used verbatim.
func TestGuideErrorCases(t *testing.T) {
	bin := nodetest.BuildNode(t)
	cases := []struct {
		name string
		args string
		want string
	}{
		{"not listed", `--name infra1 --initial-advertise-peer-urls http://10.0.1.11:2380
  --listen-peer-urls https://10.0.1.11:2380
  --listen-client-urls http://10.0.1.11:2379,http://127.0.0.1:2379
  --advertise-client-urls http://10.0.1.11:2379
  --initial-cluster infra0=http://10.0.1.10:2380
  --initial-cluster-state new`, "etcd-node: infra1 not listed in the initial cluster config"},
		{"different advertised urls", `--name infra0 --initial-advertise-peer-urls http://127.0.0.1:2380
  --listen-peer-urls http://10.0.1.10:2380
  --listen-client-urls http://10.0.1.10:2379,http://127.0.0.1:2379
  --advertise-client-urls http://10.0.1.10:2379
  --initial-cluster infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380
  --initial-cluster-state=new`, "etcd-node: error setting up initial cluster: infra0 has different advertised URLs in the cluster and advertised peer URLs list"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := nodetest.RunExpectExit(t, bin, strings.Fields(tc.args), nil, 20*time.Second)
			// The guide shows "etcd:"; etcd-node prints its own name.
			want := strings.Replace(tc.want, "etcd-node:", filepath.Base(bin)+":", 1)
			// JSON log lines (warnings) may come first, as with etcd.
			if code != 1 || !strings.HasPrefix(out, want) && !strings.Contains(out, "\n"+want) {
				t.Fatalf("exit %d, output:\n%s\nwant prefix %q", code, out, want)
			}
		})
	}
}

// TestGuideConflictingClusterID starts infra3 with a different initial
// cluster and token against a running cluster: it must stop with the
// guide's message showing its own and the running cluster's IDs.
func TestGuideConflictingClusterID(t *testing.T) {
	bin := nodetest.BuildNode(t)
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: bin})
	spec := nodetest.NewMemberSpec(t, "infra3")
	initial := "infra0=" + c.Member(0).PeerURL() + ",infra1=" + c.Member(1).PeerURL() + ",infra3=" + spec.PeerURL
	args := []string{"--name", "infra3", "--initial-advertise-peer-urls", spec.PeerURL,
		"--listen-peer-urls", spec.PeerURL, "--listen-client-urls", spec.ClientURL, "--advertise-client-urls", spec.ClientURL,
		"--initial-cluster", initial, "--initial-cluster-state=new", "--data-dir", spec.DataDir}
	code, out := nodetest.RunExpectExit(t, bin, args, nil, 30*time.Second)

	local := config.ClusterID([]uint64{
		config.MemberID([]string{c.Member(0).PeerURL()}, "etcd-cluster", nil),
		config.MemberID([]string{c.Member(1).PeerURL()}, "etcd-cluster", nil),
		config.MemberID([]string{spec.PeerURL}, "etcd-cluster", nil),
	})
	var ids []uint64
	for i := 0; i < 3; i++ {
		ids = append(ids, config.MemberID([]string{c.Member(i).PeerURL()}, "etcd-cluster-1", nil))
	}
	want := filepath.Base(bin) + ": " + config.ConflictingClusterIDMessage(local, config.ClusterID(ids))
	if code != 1 || !strings.Contains(out, want) {
		t.Fatalf("exit %d, output:\n%s\nwant %q", code, out, want)
	}
	// The running cluster is unharmed.
	if out := mustCtl(t, c, "endpoint", "health", "--cluster"); strings.Count(out, "is healthy") != 3 {
		t.Fatalf("cluster after the conflict: %s", out)
	}
}

func TestBadInput(t *testing.T) {
	bin := nodetest.BuildNode(t)
	cases := []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"unknown flag", []string{"--nmae", "x"}, nil, 2, "flag provided but not defined: -nmae"},
		{"bad url", []string{"--listen-peer-urls", "10.0.0.1:2380"}, nil, 2, "invalid value \"10.0.0.1:2380\" for flag -listen-peer-urls"},
		{"bad url scheme", []string{"--listen-peer-urls", "tcp://10.0.0.1:2380"}, nil, 2, "URL scheme must be http, https, unix, or unixs"},
		{"domain in listen url", []string{"--listen-peer-urls", "http://example.com:2380"}, nil, 1, "expected IP in URL for binding (http://example.com:2380)"},
		{"flag and env", []string{"--name", "a"}, []string{"ETCD_NAME=b"}, 1, "conflicting environment variable \"ETCD_NAME\" is shadowed"},
		{"bad env value", nil, []string{"ETCD_SNAPSHOT_COUNT=lots"}, 1, "invalid value \"lots\" for ETCD_SNAPSHOT_COUNT"},
		{"listen without advertise", []string{"--listen-client-urls", "http://127.0.0.1:2379"}, nil, 1, "--advertise-client-urls is required"},
		{"proxy", []string{"--proxy", "on"}, nil, 1, "gateway start"},
		{"discovery url not http", []string{"--name", "a", "--discovery", "ftp://127.0.0.1/x"}, nil, 1, "invalid discovery URL \"ftp://127.0.0.1/x\""},
		{"https without certificates", []string{"--name", "a", "--listen-client-urls", "https://127.0.0.1:1", "--advertise-client-urls", "https://127.0.0.1:1"}, nil, 1, "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:1 with HTTPS scheme"},
		{"unreadable data dir", []string{"--name", "a", "--data-dir", "/proc/etcd-node-cannot-write-here"}, nil, 1, "/proc/etcd-node-cannot-write-here"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := nodetest.RunExpectExit(t, bin, tc.args, tc.env, 20*time.Second)
			if code != tc.code || !strings.Contains(out, tc.want) || strings.Contains(out, "panic") {
				t.Fatalf("exit %d, output:\n%s\nwant exit %d and %q", code, out, tc.code, tc.want)
			}
		})
	}
	// --help and --version exit 0.
	for _, f := range []string{"--help", "--version"} {
		if code, out := nodetest.RunExpectExit(t, bin, []string{f}, nil, 10*time.Second); code != 0 || out == "" {
			t.Errorf("%s: exit %d %q", f, code, out)
		}
	}
}

// TestCorruptWALTail truncates the last WAL record of a stopped member: it
// must repair the torn tail, start, and keep every earlier write.
func TestCorruptWALTail(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t)})
	for i := 0; i < 20; i++ {
		mustCtl(t, c, "put", "key", "v")
	}
	m := c.Member(2)
	m.Stop()
	segs, _ := filepath.Glob(filepath.Join(m.DataDir(), "member", "wal", "*.wal"))
	if len(segs) == 0 {
		t.Fatal("no WAL segment")
	}
	last := segs[len(segs)-1]
	data, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	end := len(data)
	for end > 0 && data[end-1] == 0 {
		end--
	}
	if err := os.WriteFile(last, append(data[:end-3], make([]byte, len(data)-end+3)...), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Restart()
	m.WaitHealthy()
	out, _, err := nodetest.Etcdctl(t, []string{m.ClientURL()}, "get", "key", "--consistency=s", "--print-value-only")
	if err != nil || out != "v\n" {
		t.Fatalf("after repair: %v %q", err, out)
	}
	if !strings.Contains(m.Logs(), "repaired a torn write") {
		t.Errorf("no repair warning in the log")
	}
}

// TestPeerPortAnswersWhileStarting: a member still bootstrapping answers
// its peer port at once with 503, so other members' start-up checks never
// wait for a timeout on it. The member here waits for a peer that never
// answers (joining an existing cluster), then gives up with etcd's error.
func TestPeerPortAnswersWhileStarting(t *testing.T) {
	bin := nodetest.BuildNode(t)
	spec := nodetest.NewMemberSpec(t, "late")
	// A "peer" that accepts connections and never answers keeps the member
	// in its bootstrap (fetching the cluster's members) for a while.
	silent := nodetest.NewMemberSpec(t, "silent")
	ln, err := net.Listen("tcp", strings.TrimPrefix(silent.PeerURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, h := range held {
					h.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	m := nodetest.StartMember(t, nodetest.MemberOptions{Spec: spec, Binary: bin, Args: []string{
		"--name", "late", "--data-dir", spec.DataDir,
		"--listen-peer-urls", spec.PeerURL, "--initial-advertise-peer-urls", spec.PeerURL,
		"--listen-client-urls", spec.ClientURL, "--advertise-client-urls", spec.ClientURL,
		"--initial-cluster", "late=" + spec.PeerURL + ",silent=" + silent.PeerURL, "--initial-cluster-state", "existing"}})
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(spec.PeerURL + "/members")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "member is starting") {
				t.Fatalf("peer port while starting: %d %q", resp.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peer port never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code := m.WaitExit(30 * time.Second); code != 1 || !strings.Contains(m.Logs(), "cannot fetch cluster info from peer urls") {
		t.Fatalf("exit %d, log:\n%s", code, m.Logs())
	}
}
