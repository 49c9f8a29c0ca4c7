package proc

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a child process: it prints a line, then either exits
// on SIGTERM with status 3 or ignores it, and sleeps until killed.
const helperEnv = "PROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		fmt.Println("helper started", os.Getpid())
		if mode == "ignore-term" {
			signal.Ignore(syscall.SIGTERM)
		} else {
			ch := make(chan os.Signal, 1)
			signal.Notify(ch, syscall.SIGTERM)
			go func() { <-ch; fmt.Println("got SIGTERM"); os.Exit(3) }()
		}
		select {}
	}
	os.Exit(m.Run())
}

func startHelper(t *testing.T, mode string) *Process {
	t.Helper()
	p, err := StartProcess(ProcessConfig{
		Name:    "helper",
		Binary:  os.Args[0],
		Env:     []string{helperEnv + "=" + mode},
		LogPath: filepath.Join(t.TempDir(), "helper.log"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	waitLog(t, p, "helper started "+strconv.Itoa(p.Pid()))
	return p
}

func waitLog(t *testing.T, p *Process, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s, _ := p.Logs(); strings.Contains(s, want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s, _ := p.Logs()
	t.Fatalf("log never contained %q:\n%s", want, s)
}

func waitState(t *testing.T, pid int, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := State(pid)
		if err != nil {
			t.Fatal(err)
		}
		if st == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d never reached state %s (now %s)", pid, want, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestProcessLifecycle(t *testing.T) {
	tests := []struct {
		name     string
		mode     string
		act      func(p *Process) error
		wantCode int
		wantErr  bool
	}{
		{"kill", "term", func(p *Process) error { return p.Kill() }, -1, false},
		{"stop graceful", "term", func(p *Process) error { return p.Stop(10 * time.Second) }, 3, false},
		{"stop falls back to kill", "ignore-term", func(p *Process) error { return p.Stop(300 * time.Millisecond) }, -1, true},
		{"stop while paused", "term", func(p *Process) error {
			if err := p.Pause(); err != nil {
				return err
			}
			return p.Stop(10 * time.Second)
		}, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startHelper(t, tc.mode)
			err := tc.act(p)
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			if p.Running() {
				t.Fatal("still running")
			}
			if code, ok := p.ExitCode(); !ok || code != tc.wantCode {
				t.Errorf("exit code %d (%v), want %d", code, ok, tc.wantCode)
			}
			if err := p.Kill(); err != nil {
				t.Errorf("Kill of an exited process: %v", err)
			}
		})
	}
}

func TestPauseResumeRestart(t *testing.T) {
	p := startHelper(t, "term")
	if _, ok := p.ExitCode(); ok {
		t.Error("ExitCode reports a running process as exited")
	}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	// Pause returns only once the process is stopped: no waiting here.
	if st, err := State(p.Pid()); err != nil || st != "T" {
		t.Errorf("state after Pause = %q, %v; want T", st, err)
	}
	if !p.Paused() {
		t.Error("Paused() false after Pause")
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if st, err := State(p.Pid()); err != nil || st == "T" {
		t.Errorf("state after Resume = %q, %v", st, err)
	}
	waitState(t, p.Pid(), "S")
	if p.Paused() {
		t.Error("Paused() true after Resume")
	}

	old := p.Pid()
	if err := p.Restart(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	if p.Pid() == old || !p.Running() {
		t.Fatalf("restart: pid %d -> %d, running %v", old, p.Pid(), p.Running())
	}
	waitLog(t, p, "helper started "+strconv.Itoa(p.Pid()))
	logs, err := p.Logs()
	if err != nil {
		t.Fatal(err)
	}
	// Both incarnations and the graceful stop in between are in the one log.
	for _, want := range []string{"helper started " + strconv.Itoa(old), "got SIGTERM", "=== harness: starting helper"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if tail := p.LogTail(20); len(tail) > 24 || !strings.HasSuffix(logs, strings.TrimPrefix(tail, "...\n")) {
		t.Errorf("LogTail(20) = %q", tail)
	}
}

func TestStartProcessErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  ProcessConfig
		want string
	}{
		{"no binary", ProcessConfig{LogPath: filepath.Join(t.TempDir(), "l")}, "no binary"},
		{"no log", ProcessConfig{Name: "x", Binary: os.Args[0]}, "no log path"},
		{"missing binary", ProcessConfig{Name: "x", Binary: "/nonexistent/etcd", LogPath: filepath.Join(t.TempDir(), "l")}, "no such file"},
		{"log dir missing", ProcessConfig{Name: "x", Binary: os.Args[0], LogPath: "/nonexistent/dir/l"}, "open log"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := StartProcess(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCleanEnv(t *testing.T) {
	t.Setenv("ETCD_NAME", "leak")
	t.Setenv("ETCDCTL_ENDPOINTS", "leak")
	t.Setenv("PROC_TEST_KEEP", "1")
	env := CleanEnv([]string{"ETCD_DATA_DIR=/x"})
	for _, kv := range env {
		if strings.HasPrefix(kv, "ETCD_NAME=") || strings.HasPrefix(kv, "ETCDCTL_") {
			t.Errorf("leaked %s", kv)
		}
	}
	if !slices.Contains(env, "PROC_TEST_KEEP=1") || env[len(env)-1] != "ETCD_DATA_DIR=/x" {
		t.Errorf("env lost entries: %v", env)
	}
}

func TestReservePorts(t *testing.T) {
	a, err := ReservePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	b, err := ReservePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Release()
	seen := map[int]bool{}
	for _, p := range append(slices.Clone(a.Ports), b.Ports...) {
		if seen[p] {
			t.Errorf("port %d handed out twice", p)
		}
		seen[p] = true
		if p < lowestPort || p >= ephemeralLow() {
			t.Errorf("port %d outside %d..%d", p, lowestPort, ephemeralLow()-1)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Errorf("reserved port %d not bindable: %v", p, err)
			continue
		}
		l.Close()
	}
	// A held port cannot be locked again; a released one can.
	dir := filepath.Join(os.TempDir(), "etcdctl-wizard-ports")
	if _, ok, err := lockPort(dir, a.Ports[0]); ok || err != nil {
		t.Errorf("lock of a held port: ok %v, err %v", ok, err)
	}
	a.Release()
	a.Release()
	f, ok, err := lockPort(dir, a.Ports[0])
	if !ok || err != nil {
		t.Errorf("lock of a released port: ok %v, err %v", ok, err)
	} else {
		f.Close()
	}
	if _, err := ReservePorts(0); err == nil {
		t.Error("ReservePorts(0) gave no error")
	}
}

func TestRSSAndState(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{"Name:\tetcd\nVmRSS:\t   12345 kB\nVmSwap:\t0 kB\n", 12345 * 1024, false},
		{"Name:\tkthreadd\n", 0, true},
		{"VmRSS:\t12 MB\n", 0, true},
		{"VmRSS:\tx kB\n", 0, true},
		{"VmRSS:\t-5 kB\n", 0, true},
	}
	for _, tc := range tests {
		got, err := parseVmRSS([]byte(tc.in))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseVmRSS(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	rss, err := RSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Errorf("RSS(self) = %d, %v", rss, err)
	}
	if _, err := RSS(-1); err == nil {
		t.Error("RSS(-1) gave no error")
	}
	// The main thread of a running test is running or sleeping, never stopped or dead.
	if st, err := State(os.Getpid()); err != nil || (st != "R" && st != "S") {
		t.Errorf("State(self) = %q, %v; want R or S", st, err)
	}
	if _, err := State(-1); err == nil {
		t.Error("State(-1) gave no error")
	}
}

func TestStaticFlagsAndInitialCluster(t *testing.T) {
	specs := []MemberSpec{
		{Name: "infra0", ClientURL: "http://127.0.0.1:1", PeerURL: "http://127.0.0.1:2", DataDir: "/d0"},
		{Name: "infra1", ClientURL: "http://127.0.0.1:3", PeerURL: "http://127.0.0.1:4", DataDir: "/d1"},
	}
	ic := InitialCluster(specs)
	if ic != "infra0=http://127.0.0.1:2,infra1=http://127.0.0.1:4" {
		t.Errorf("InitialCluster = %q", ic)
	}
	got := strings.Join(specs[1].StaticFlags("tok", ic, "new"), " ")
	want := "--name infra1 --data-dir /d1 --initial-advertise-peer-urls http://127.0.0.1:4 --listen-peer-urls http://127.0.0.1:4 " +
		"--listen-client-urls http://127.0.0.1:3 --advertise-client-urls http://127.0.0.1:3 --initial-cluster-token tok " +
		"--initial-cluster " + ic + " --initial-cluster-state new"
	if got != want {
		t.Errorf("StaticFlags:\n got %s\nwant %s", got, want)
	}
}

func TestStartClusterErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  ClusterConfig
		want string
	}{
		{"no binary", ClusterConfig{Size: 1, DataDirRoot: t.TempDir()}, "no member binary"},
		{"zero size", ClusterConfig{Binary: os.Args[0], DataDirRoot: t.TempDir()}, "size must be at least 1"},
		{"no data root", ClusterConfig{Binary: os.Args[0], Size: 1}, "no data dir root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := StartCluster(context.Background(), tc.cfg)
			c.Close()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}

	// A member that cannot bind is retried on other ports; the failed attempt's log is kept.
	root := t.TempDir()
	script := filepath.Join(root, "bind-fails.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'listen tcp 127.0.0.1:1: bind: address already in use'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := StartCluster(context.Background(), ClusterConfig{Binary: script, Size: 1, DataDirRoot: root})
	c.Close()
	if err == nil || !strings.Contains(err.Error(), "exited before becoming healthy") {
		t.Errorf("cluster that cannot bind: %v", err)
	}
	for attempt := 1; attempt < bindAttempts; attempt++ {
		if _, err := os.Stat(filepath.Join(root, fmt.Sprintf("infra0.log.attempt%d", attempt))); err != nil {
			t.Errorf("log of attempt %d: %v", attempt, err)
		}
	}

	// A member that exits at once is reported without waiting for the deadline.
	c, err = StartCluster(context.Background(), ClusterConfig{Binary: "/bin/false", Size: 1, DataDirRoot: t.TempDir(), StartWait: time.Minute})
	if c != nil {
		defer c.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "exited before becoming healthy") {
		t.Errorf("cluster of /bin/false: %v", err)
	}
}

func TestEnsureUpstreamUsesCache(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ETCDWIZ_UPSTREAM_DIR", dir)
	for _, name := range []string{"etcd", "etcdctl"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// With both binaries cached the build script is never looked for.
	etcd, ctl, err := EnsureUpstream(context.Background(), "/nonexistent")
	if err != nil || etcd != filepath.Join(dir, "etcd") || ctl != filepath.Join(dir, "etcdctl") {
		t.Errorf("EnsureUpstream = %q, %q, %v", etcd, ctl, err)
	}
	os.Remove(filepath.Join(dir, "etcdctl"))
	if _, _, err := EnsureUpstream(context.Background(), "/nonexistent"); err == nil || !strings.Contains(err.Error(), "build.sh") {
		t.Errorf("EnsureUpstream without a build script: %v", err)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "testdata", "upstream", "build.sh")); err != nil {
		t.Errorf("repo root %s lacks testdata/upstream/build.sh: %v", root, err)
	}
	t.Chdir(t.TempDir())
	if _, err := RepoRoot(); err == nil {
		t.Error("RepoRoot outside the repo gave no error")
	}
}
