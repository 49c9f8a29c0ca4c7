package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// dnsRunning maps a *Lab to its running *DNS.
var dnsRunning sync.Map

// dnsmasq is the name server the lab runs; tests fail (never skip) without it.
const dnsmasq = "/usr/sbin/dnsmasq"

// SRV is one SRV record, e.g. {"_etcd-server._tcp.example.com", "infra0.example.com", 2380}.
type SRV struct {
	Name   string
	Target string
	Port   int
}

// Zone is what the lab's name server knows; it answers nothing else.
type Zone struct {
	SRV []SRV
	// A maps a name to its IPv4 (or IPv6) address.
	A map[string]string
}

// DNS is a dnsmasq serving a Zone at the gateway's port 53 (UDP and TCP),
// where every host's /etc/resolv.conf points.
type DNS struct {
	lab  *Lab
	cmd  *exec.Cmd
	log  *SyncBuffer
	once sync.Once
	done chan struct{} // closed when dnsmasq has exited
}

// StartDNS starts dnsmasq inside the parent namespace answering z, and stops
// it when the test ends. It returns once the server answers. Only one may run
// at a time per lab: Stop it before starting one with other records.
func (l *Lab) StartDNS(t testing.TB, z Zone) *DNS {
	t.Helper()
	if _, err := os.Stat(dnsmasq); err != nil {
		t.Fatalf("the lab's DNS server needs %s: apt-get install dnsmasq-base (%v)", dnsmasq, err)
	}
	args, err := dnsmasqArgs(l.Gateway, z)
	if err != nil {
		t.Fatal(err)
	}
	d := &DNS{lab: l, log: &SyncBuffer{}, done: make(chan struct{})}
	// A second server could not bind, while the first would still answer
	// the readiness query: refuse instead of returning a dead server.
	if _, busy := dnsRunning.LoadOrStore(l, d); busy {
		t.Fatal("lab DNS: a server is already running in this lab; Stop it first")
	}
	// Not CommandContext: the server outlives this call; Stop ends it.
	d.cmd = l.Command(context.Background(), dnsmasq, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		d.Stop()
		t.Fatalf("starting dnsmasq: %v", err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("dnsmasq log:\n%s", d.log.String())
		}
	})
	if err := l.waitDNS(d, z); err != nil {
		t.Fatalf("lab DNS: %v", err) // the cleanup prints dnsmasq's log
	}
	return d
}

// dnsmasqArgs makes dnsmasq authoritative for z alone: no upstream servers,
// no /etc/hosts or /etc/dnsmasq.conf of this machine, no DHCP, listening on
// addr only. --local=/#/ makes every other name NXDOMAIN (and an AAAA query
// for an IPv4-only name an empty answer) like a real zone, where dnsmasq would
// otherwise answer REFUSED, which resolvers take for a broken server. It runs
// in the foreground, answering TCP queries itself too (no child outlives
// Stop), and logs every query to stderr for failed tests.
func dnsmasqArgs(addr string, z Zone) ([]string, error) {
	args := []string{
		"--no-daemon", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
		"--local=/#/", "--bind-interfaces", "--listen-address=" + addr, "--port=53", "--user=root",
		"--log-facility=-", "--log-queries",
	}
	for _, r := range z.SRV {
		if r.Name == "" || r.Target == "" || r.Port <= 0 || strings.Contains(r.Name+r.Target, ",") {
			return nil, fmt.Errorf("lab DNS: bad SRV record %+v", r)
		}
		args = append(args, fmt.Sprintf("--srv-host=%s,%s,%d", strings.TrimSuffix(r.Name, "."), strings.TrimSuffix(r.Target, "."), r.Port))
	}
	names := make([]string, 0, len(z.A))
	for name := range z.A {
		names = append(names, name)
	}
	slices.Sort(names) // a stable command line, for the log
	for _, name := range names {
		if net.ParseIP(z.A[name]) == nil || name == "" || strings.Contains(name, ",") {
			return nil, fmt.Errorf("lab DNS: bad record %s -> %q", name, z.A[name])
		}
		args = append(args, fmt.Sprintf("--host-record=%s,%s", strings.TrimSuffix(name, "."), z.A[name]))
	}
	return args, nil
}

// waitDNS returns once d answers a query for one of z's names (any query if
// z is empty), so that a record missing from an answer is never a race.
func (l *Lab) waitDNS(d *DNS, z Zone) error {
	ask := func(ctx context.Context) error {
		c, err := l.Dial(ctx, "tcp", net.JoinHostPort(l.Gateway, "53"))
		if err == nil {
			c.Close()
		}
		return err
	}
	r := l.Resolver()
	if len(z.SRV) > 0 {
		ask = func(ctx context.Context) error {
			_, _, err := r.LookupSRV(ctx, "", "", z.SRV[0].Name)
			return err
		}
	} else if len(z.A) > 0 {
		for name := range z.A {
			ask = func(ctx context.Context) error {
				_, err := r.LookupHost(ctx, name)
				return err
			}
			break
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ask(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("dnsmasq exited: %v", d.cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from %s:53 within 10 s: %w", l.Gateway, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills dnsmasq and waits until it is gone (its port free for the next
// one). It may be called more than once.
func (d *DNS) Stop() {
	d.once.Do(func() {
		// ip netns exec replaced itself with dnsmasq: this is dnsmasq's pid.
		if d.cmd.Process != nil {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		dnsRunning.CompareAndDelete(d.lab, d)
	})
}

// Resolver asks the lab's name server (the gateway's port 53, from inside the
// parent namespace) with Go's resolver; this machine's resolver knows nothing
// of the lab.
func (l *Lab) Resolver() *net.Resolver {
	addr := net.JoinHostPort(l.Gateway, "53")
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return l.Dial(ctx, network, addr)
		},
	}
}

// SyncBuffer collects a program's output, written by another goroutine
// (exec's copying one, a log follower) while a test may read it.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
