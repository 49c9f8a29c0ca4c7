package remote

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/miekg/dns"
)

// HostResolver answers DNS questions the way a program on the host would:
// names in the host's /etc/hosts first, then the first nameserver of the
// host's /etc/resolv.conf, asked from the host itself (over TCP, through
// the transport). A split-horizon DNS then answers what the members will
// see, not what this machine sees.
type HostResolver struct {
	// Server is the nameserver asked, host:port.
	Server string
	t      Transport
	hosts  map[string][]string // lower-case name without the final dot → addresses
}

// NewHostResolver reads the host's resolver configuration. server, when
// not "", is asked instead of the host's nameserver (host or host:port).
func NewHostResolver(ctx context.Context, t Transport, server string) (*HostResolver, error) {
	r := &HostResolver{t: t, hosts: map[string][]string{}}
	if b, err := t.ReadFile(ctx, "/etc/hosts"); err == nil {
		r.hosts = parseHostsFile(b)
	}
	if server == "" {
		b, err := t.ReadFile(ctx, "/etc/resolv.conf")
		if err != nil {
			return nil, fmt.Errorf("%s: reading /etc/resolv.conf: %w", t, err)
		}
		if server = firstNameserver(b); server == "" {
			return nil, fmt.Errorf("%s: /etc/resolv.conf names no nameserver", t)
		}
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(server, "53")
	}
	r.Server = server
	return r, nil
}

func parseHostsFile(b []byte) map[string][]string {
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 || net.ParseIP(f[0]) == nil {
			continue
		}
		for _, name := range f[1:] {
			n := strings.ToLower(strings.TrimSuffix(name, "."))
			out[n] = append(out[n], f[0])
		}
	}
	return out
}

func firstNameserver(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "nameserver" {
			return f[1]
		}
	}
	return ""
}

// LookupSRV returns the SRV records of name (service and proto, when set,
// make the name _service._proto.name like net.Resolver).
func (r *HostResolver) LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if service != "" || proto != "" {
		name = "_" + service + "._" + proto + "." + name
	}
	answers, err := r.query(ctx, name, dns.TypeSRV)
	if err != nil {
		return "", nil, err
	}
	var out []*net.SRV
	for _, rr := range answers {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, &net.SRV{Target: s.Target, Port: s.Port, Priority: s.Priority, Weight: s.Weight})
		}
	}
	if len(out) == 0 {
		return "", nil, &net.DNSError{Err: "no SRV records", Name: name, Server: r.Server, IsNotFound: true}
	}
	return dns.Fqdn(name), out, nil
}

// LookupHost returns the addresses of host: from the host's /etc/hosts
// when it lists the name, else its A and AAAA records.
func (r *HostResolver) LookupHost(ctx context.Context, host string) ([]string, error) {
	if addrs := r.hosts[strings.ToLower(strings.TrimSuffix(host, "."))]; len(addrs) > 0 {
		return addrs, nil
	}
	var out []string
	var firstErr error
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		answers, err := r.query(ctx, host, qt)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		for _, rr := range answers {
			switch a := rr.(type) {
			case *dns.A:
				out = append(out, a.A.String())
			case *dns.AAAA:
				out = append(out, a.AAAA.String())
			}
		}
	}
	if len(out) == 0 {
		if firstErr != nil {
			return nil, firstErr
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, Server: r.Server, IsNotFound: true}
	}
	return out, nil
}

// query asks the nameserver one question over TCP from the host.
func (r *HostResolver) query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	dnsErr := func(msg string, notFound bool) error {
		return &net.DNSError{Err: msg, Name: name, Server: r.Server, IsNotFound: notFound}
	}
	c, err := r.t.Dial(ctx, "tcp", r.Server)
	if err != nil {
		return nil, dnsErr("cannot reach the nameserver from "+r.t.String()+": "+err.Error(), false)
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	co := &dns.Conn{Conn: c}
	if err := co.WriteMsg(m); err != nil {
		return nil, dnsErr(err.Error(), false)
	}
	resp, err := co.ReadMsg()
	if err != nil {
		var ne net.Error
		return nil, &net.DNSError{Err: err.Error(), Name: name, Server: r.Server, IsTimeout: errors.As(err, &ne) && ne.Timeout()}
	}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		return resp.Answer, nil
	case dns.RcodeNameError:
		return nil, dnsErr("no such host", true)
	default:
		return nil, dnsErr("server answered "+dns.RcodeToString[resp.Rcode], false)
	}
}
