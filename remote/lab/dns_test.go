package lab_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/remote/lab"
)

// TestDNS serves SRV and A records from the lab's dnsmasq, reads them with
// Resolver() and, for A records, with glibc inside a host (whose
// resolv.conf names the gateway), then restarts the server with other
// records within the same lab.
func TestDNS(t *testing.T) {
	l := lab.Start(t, 1)
	h := l.Hosts[0]
	d := l.StartDNS(t, lab.Zone{
		SRV: []lab.SRV{
			{Name: "_etcd-server._tcp.example.com", Target: "infra0.example.com", Port: 2380},
			{Name: "_etcd-server._tcp.example.com.", Target: "infra1.example.com.", Port: 2480},
		},
		A: map[string]string{"infra0.example.com": h.IP, "infra1.example.com.": "10.0.1.11"},
	})
	r := l.Resolver()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, srvs, err := r.LookupSRV(ctx, "etcd-server", "tcp", "example.com")
	if err != nil {
		t.Fatalf("SRV: %v", err)
	}
	var got []string
	for _, s := range srvs {
		got = append(got, net.JoinHostPort(s.Target, strconv.Itoa(int(s.Port))))
	}
	slices.Sort(got)
	if strings.Join(got, " ") != "infra0.example.com.:2380 infra1.example.com.:2480" {
		t.Errorf("SRV answer %v", got)
	}
	if addrs, err := r.LookupHost(ctx, "infra1.example.com"); err != nil || strings.Join(addrs, " ") != "10.0.1.11" {
		t.Errorf("A infra1.example.com: %v %v", addrs, err)
	}
	// Nothing is forwarded: a name outside the zone does not exist, the
	// answer of an authoritative server rather than a refusal.
	if addrs, err := r.LookupHost(ctx, "example.org"); !isNotFound(err) {
		t.Errorf("example.org: %v %v, want no such host", addrs, err)
	}
	// Inside a host, through its own resolv.conf: what etcd-node and sshd see.
	if out := h.MustExec(t, "getent ahosts infra0.example.com | head -1"); !strings.HasPrefix(out, h.IP+" ") {
		t.Errorf("getent inside %s: %q", h.Name, out)
	}

	// A second server with other records replaces the first.
	d.Stop()
	if _, err := r.LookupHost(ctx, "infra1.example.com"); err == nil {
		t.Fatal("still answering after Stop")
	}
	l.StartDNS(t, lab.Zone{
		SRV: []lab.SRV{{Name: "_etcd-server-ssl-c1._tcp.example.com", Target: "infra0.example.com", Port: 2380}},
		A:   map[string]string{"infra0.example.com": "10.0.1.99"},
	})
	if _, srvs, err := r.LookupSRV(ctx, "etcd-server-ssl-c1", "tcp", "example.com"); err != nil || len(srvs) != 1 || srvs[0].Port != 2380 {
		t.Errorf("SRV after restart: %v %v", srvs, err)
	}
	if _, _, err := r.LookupSRV(ctx, "etcd-server", "tcp", "example.com"); err == nil {
		t.Error("the first server's SRV records survived the restart")
	}
	if out := h.MustExec(t, "getent ahosts infra0.example.com | head -1"); !strings.HasPrefix(out, "10.0.1.99 ") {
		t.Errorf("getent inside %s after restart: %q", h.Name, out)
	}
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}
