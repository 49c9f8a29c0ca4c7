package remote

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/discovery/dnstest"
)

// hostFiles is this machine as a host whose /etc/hosts and resolv.conf are
// the given texts (the DNS traffic itself is real).
type hostFiles struct {
	*Local
	files map[string]string
}

func (h hostFiles) ReadFile(_ context.Context, p string) ([]byte, error) {
	s, ok := h.files[p]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return []byte(s), nil
}

func TestHostResolver(t *testing.T) {
	s := dnstest.Start(t)
	s.AddSRV(dnstest.SRV{Name: "_etcd-server._tcp.example.com", Target: "infra0.example.com", Port: 2380},
		dnstest.SRV{Name: "_etcd-server._tcp.example.com", Target: "infra1.example.com", Port: 2380})
	s.AddA("infra0.example.com", "10.0.1.10")
	s.AddA("infra1.example.com", "10.0.1.11")
	host := hostFiles{Local: NewLocal(LocalOptions{}), files: map[string]string{
		"/etc/resolv.conf": "search example.com\nnameserver " + s.Addr + "\nnameserver 192.0.2.1\n",
		// The host's own file wins over DNS, as for the members.
		"/etc/hosts": "127.0.0.1 localhost\n10.0.1.99 infra1.example.com infra1 # stale\n",
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := NewHostResolver(ctx, host, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Server != s.Addr {
		t.Errorf("server %s, want the first nameserver %s", r.Server, s.Addr)
	}
	name, srvs, err := r.LookupSRV(ctx, "etcd-server", "tcp", "example.com")
	if err != nil || name != "_etcd-server._tcp.example.com." || len(srvs) != 2 || srvs[0].Port != 2380 || !strings.HasPrefix(srvs[0].Target, "infra") {
		t.Fatalf("LookupSRV: %q %v %v", name, srvs, err)
	}
	if a, err := r.LookupHost(ctx, "infra0.example.com"); err != nil || len(a) != 1 || a[0] != "10.0.1.10" {
		t.Errorf("infra0 from DNS: %v %v", a, err)
	}
	if a, err := r.LookupHost(ctx, "infra1.example.com."); err != nil || len(a) != 1 || a[0] != "10.0.1.99" {
		t.Errorf("infra1 from the host's /etc/hosts: %v %v", a, err)
	}
	var de *net.DNSError
	if _, err := r.LookupHost(ctx, "nowhere.example.com"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("unknown name: %v", err)
	}
	if _, _, err := r.LookupSRV(ctx, "", "", "_etcd-server-ssl._tcp.example.com"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("unknown SRV name: %v", err)
	}

	// A given server instead of the host's; one that is not there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	r, err = NewHostResolver(ctx, host, dead)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.LookupSRV(ctx, "", "", "_etcd-server._tcp.example.com"); err == nil || !strings.Contains(err.Error(), "cannot reach the nameserver") {
		t.Errorf("dead server: %v", err)
	}
	delete(host.files, "/etc/resolv.conf")
	if _, err := NewHostResolver(ctx, host, ""); err == nil || !strings.Contains(err.Error(), "/etc/resolv.conf") {
		t.Errorf("no resolv.conf: %v", err)
	}
}
