// Package dnstest runs a small authoritative DNS server on 127.0.0.1 for
// tests of DNS SRV discovery: SRV and A records, NXDOMAIN otherwise. Point
// etcd-node at it with ETCDNODE_DNS_SERVER=<Addr> (a test hook), or use
// Resolver in process.
package dnstest

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// SRV is one SRV record.
type SRV struct {
	Name   string // e.g. _etcd-server._tcp.example.test
	Target string // e.g. infra0.example.test
	Port   uint16
}

// Server answers from its records.
type Server struct {
	Addr string // 127.0.0.1:port, UDP and TCP

	mu  sync.Mutex
	srv map[string][]SRV
	a   map[string][]net.IP
}

// Start serves until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{srv: map[string][]SRV{}, a: map[string][]net.IP{}}
	pc, ln, err := listenUDPAndTCP()
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return s
}

// listenUDPAndTCP takes a free UDP port and the TCP port of the same
// number; another process may hold the TCP one, so it tries a few ports.
func listenUDPAndTCP() (net.PacketConn, net.Listener, error) {
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, lastErr
}

// AddSRV adds SRV records.
func (s *Server) AddSRV(recs ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		n := dns.Fqdn(strings.ToLower(r.Name))
		s.srv[n] = append(s.srv[n], r)
	}
}

// AddA adds an A record.
func (s *Server) AddA(name string, ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := dns.Fqdn(strings.ToLower(name))
	s.a[n] = append(s.a[n], net.ParseIP(ip))
}

// Resolver is a Go resolver that asks only this server.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr)
	}}
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	s.mu.Lock()
	defer s.mu.Unlock()
	known := false
	for _, qu := range q.Question {
		name := strings.ToLower(qu.Name)
		if _, ok := s.srv[name]; ok {
			known = true
		}
		if _, ok := s.a[name]; ok {
			known = true
		}
		switch qu.Qtype {
		case dns.TypeSRV:
			for _, r := range s.srv[name] {
				m.Answer = append(m.Answer, &dns.SRV{
					Hdr:      dns.RR_Header{Name: qu.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 60},
					Priority: 0, Weight: 0, Port: r.Port, Target: dns.Fqdn(r.Target),
				})
			}
		case dns.TypeA:
			for _, ip := range s.a[name] {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qu.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: ip.To4()})
			}
		}
	}
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}
