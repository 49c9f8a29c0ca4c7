package lab

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLabHosts(t *testing.T) {
	// Where this process lives before any lab dial.
	selfNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(context.Background(), Config{Hosts: 3})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			l.Close()
		}
	}()
	if len(l.Hosts) != 3 {
		t.Fatalf("%d hosts, want 3", len(l.Hosts))
	}
	seen := map[string]string{}
	for i, h := range l.Hosts {
		want := fmt.Sprintf("infra%d", i)
		if h.Name != want || h.IP != fmt.Sprintf("10.0.1.%d", 10+i) || h.Port != 22 {
			t.Errorf("host %d = %+v", i, h)
		}
		if got := strings.TrimSpace(h.MustExec(t, "hostname")); got != want {
			t.Errorf("%s: hostname %q", h.Name, got)
		}
		if got := h.MustExec(t, "ip -4 -o addr show dev eth0"); !strings.Contains(got, h.IP+"/24") {
			t.Errorf("%s: eth0 is %q", h.Name, got)
		}
		// The fingerprint lab.sh reported is the key sshd serves.
		fp := strings.Fields(h.MustExec(t, "ssh-keygen -l -E sha256 -f /etc/ssh/ssh_host_ed25519_key.pub"))[1]
		if fp != h.Fingerprint {
			t.Errorf("%s: fingerprint %s, lab says %s", h.Name, fp, h.Fingerprint)
		}
		if other, dup := seen[fp]; dup {
			t.Errorf("%s and %s share host key %s", h.Name, other, fp)
		}
		seen[fp] = h.Name
		if got := h.MustExec(t, "cat /etc/resolv.conf"); got != "nameserver 10.0.1.1\n" {
			t.Errorf("%s: resolv.conf %q", h.Name, got)
		}
		if got := h.MustExec(t, "getent hosts infra2"); !strings.HasPrefix(got, "10.0.1.12") {
			t.Errorf("%s: infra2 resolves to %q", h.Name, got)
		}
	}

	// Private filesystems: a write on one host is seen neither by the others
	// nor by the machine.
	marker := "/usr/local/bin/lab-marker-" + l.Name
	l.Hosts[0].MustExec(t, "echo x > "+marker+" && mkdir -p /var/lib/etcd && touch /var/lib/etcd/x /opt/x /root/x /tmp/x")
	for _, p := range []string{marker, "/var/lib/etcd/x", "/opt/x", "/root/x", "/tmp/x"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s written in infra0 appeared on the machine", p)
		}
		if out, err := l.Hosts[1].Exec(context.Background(), "test -e "+p); err == nil {
			t.Errorf("%s written in infra0 appeared on infra1 (%s)", p, out)
		}
	}

	// The parent namespace reaches every host and nothing else: its only
	// route is the lab subnet.
	out, err := l.Command(context.Background(), "ip", "-4", "route").CombinedOutput()
	if err != nil {
		t.Fatal(err, string(out))
	}
	if strings.TrimSpace(string(out)) != "10.0.1.0/24 dev br0 proto kernel scope link src 10.0.1.1" {
		t.Errorf("parent routes:\n%s", out)
	}
	for _, h := range l.Hosts {
		if out := h.MustExec(t, "ip -4 route"); strings.Contains(out, "default") {
			t.Errorf("%s has a default route:\n%s", h.Name, out)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := l.Dial(ctx, "tcp", h.Addr())
		cancel()
		if err != nil {
			t.Fatalf("dial %s: %v", h.Addr(), err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		banner, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.HasPrefix(banner, "SSH-2.0-OpenSSH") {
			t.Errorf("%s: banner %q, %v", h.Name, banner, err)
		}
	}
	// This process never entered the lab: its main thread is where it was.
	if now, _ := os.Readlink("/proc/self/ns/net"); now != selfNS {
		t.Errorf("test process moved from %s to %s", selfNS, now)
	}

	// A process started inside a host (like a member started over SSH) must
	// not survive the teardown.
	l.Hosts[2].MustExec(t, "setsid sleep 1000 </dev/null >/dev/null 2>&1 &")
	pids := []int{}
	for _, h := range l.Hosts {
		pids = append(pids, h.PID)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	assertGone(t, l, pids)
}

// assertGone checks that nothing of l is left: namespaces, mounts, processes
// and the state folder.
func assertGone(t *testing.T, l *Lab, pids []int) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), l.Name) {
		t.Errorf("namespaces left:\n%s", out)
	}
	if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
		t.Errorf("state folder %s left: %v", l.Dir, err)
	}
	mounts, _ := filepath.Glob("/proc/[0-9]*/mountinfo")
	for _, m := range mounts {
		b, err := os.ReadFile(m)
		if err == nil && strings.Contains(string(b), l.Dir+"/") {
			t.Errorf("%s still mounts lab folders", m)
		}
	}
	// A zombie waiting for init to reap it is dead enough: it holds no
	// namespace and no mount. A killed process can spend a moment in D
	// (uninterruptible) state while it exits on a loaded machine, so each
	// gets a few seconds to get there.
	state := func(pid int) string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return "gone"
		}
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 {
			return f[0]
		}
		return "?"
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for st := state(pid); st != "gone" && st != "Z"; st = state(pid) {
			if time.Now().After(deadline) {
				t.Errorf("sshd %d still runs (state %s) 5 s after the teardown", pid, st)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// A lab whose owner died (a crashed test run) is removed by the next start.
func TestStaleLabRemoved(t *testing.T) {
	owner := exec.Command("sleep", "600")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	l, err := New(context.Background(), Config{Hosts: 1, Owner: owner.Process.Pid})
	if err != nil {
		owner.Process.Kill()
		t.Fatal(err)
	}
	pid := l.Hosts[0].PID
	// While the owner lives, a stale sweep leaves the lab alone.
	if _, err := l.run(context.Background(), "down", "--stale"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.Dir); err != nil {
		l.Close()
		t.Fatalf("live lab removed: %v", err)
	}
	owner.Process.Kill()
	owner.Wait()
	// Starting another lab sweeps the stale one.
	l2 := Start(t, 1)
	if l2.Name == l.Name {
		t.Fatal("same name twice")
	}
	assertGone(t, l, []int{pid})
}

func TestAddUserAndExecStdin(t *testing.T) {
	l := Start(t, 1)
	h := l.Hosts[0]
	ctx := context.Background()
	if err := h.AddUser(ctx, "ops", "s3cret-pw", SudoPassword); err != nil {
		t.Fatal(err)
	}
	if got := h.MustExec(t, "id -un ops; stat -c %a /home/ops/.ssh/authorized_keys; cat /etc/sudoers.d/ops"); got != "ops\n600\nops ALL=(ALL) ALL\n" {
		t.Errorf("user setup: %q", got)
	}
	// The password is set: sudo accepts it on stdin.
	if out, err := h.Run(ctx, "su ops -c 'sudo -S -k -p \"\" id -u'", strings.NewReader("s3cret-pw\n")); err != nil || out != "0\n" {
		t.Errorf("sudo with the password: %q %v", out, err)
	}
	if err := h.AddUser(ctx, "bad name", "", NoSudo); err == nil {
		t.Error("a user name with a space was accepted")
	}
	// The user exists only on this host, not on the machine.
	if _, err := exec.Command("id", "ops").Output(); err == nil {
		t.Error("user ops leaked to the machine")
	}
	if n, err := h.KillSessions(); err != nil || n != 0 {
		t.Errorf("KillSessions without sessions: %d %v", n, err)
	}
}
