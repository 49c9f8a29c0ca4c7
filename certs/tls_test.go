package certs

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// Interop with crypto/tls, as etcd-node serves its ports: a server with a
// wizard-made server certificate that requires client certificates from
// the CA accepts the wizard's client and peer certificates and refuses a
// client without a certificate, with one from another CA, and with an
// expired one. Both TLS 1.2 and 1.3 are exercised because they report a
// refused client certificate at different points.
func TestTLSInterop(t *testing.T) {
	ca := newTestCA(t, "etcd-cluster-1")
	other := newTestCA(t, "intruder")
	srvIPs, srvDNS := SANsForMember("127.0.0.1", "", []string{"127.0.0.1"}, nil, "")
	server := issueT(t, ca, Request{Kind: KindServer, Name: "infra0", IPs: srvIPs, DNSNames: srvDNS})
	client := issueT(t, ca, Request{Kind: KindClient, Name: "root"})
	peer := issueT(t, ca, Request{Kind: KindPeer, Name: "infra1", IPs: ips("127.0.0.1")})
	foreign := issueT(t, other, Request{Kind: KindClient, Name: "root"})
	expired := issueT(t, ca, Request{Kind: KindClient, Name: "root", NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	// A server certificate from this CA can also act as a client (etcd's
	// guide uses one certificate for both), a client one cannot serve.
	serverAsClient := issueT(t, ca, Request{Kind: KindServer, Name: "infra2", IPs: ips("10.0.1.12")})

	srvPair := keyPair(t, server)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{srvPair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	results := make(chan error, 1)
	go serve(ln, results)

	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		for _, tc := range []struct {
			name       string
			cert       *Issued
			serverName string
			ok         bool
		}{
			{"client certificate", &client, "127.0.0.1", true},
			{"client certificate, localhost", &client, "localhost", true},
			{"peer certificate as client", &peer, "127.0.0.1", true},
			{"server certificate as client", &serverAsClient, "127.0.0.1", true},
			{"no certificate", nil, "127.0.0.1", false},
			{"certificate from another CA", &foreign, "127.0.0.1", false},
			{"expired certificate", &expired, "127.0.0.1", false},
		} {
			cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: tc.serverName, MinVersion: version, MaxVersion: version}
			if tc.cert != nil {
				cfg.Certificates = []tls.Certificate{keyPair(t, *tc.cert)}
			}
			got, err := exchange(ln.Addr().String(), cfg)
			serverErr := <-results
			if tc.ok {
				if err != nil || got != "ok" || serverErr != nil {
					t.Errorf("%x %s: client %q, %v; server %v", version, tc.name, got, err, serverErr)
				}
				continue
			}
			if got == "ok" || err == nil {
				t.Errorf("%x %s: connected (%q, %v)", version, tc.name, got, err)
			}
			if serverErr == nil {
				t.Errorf("%x %s: server accepted the handshake", version, tc.name)
			}
		}
	}

	// The client side verifies the server: a name outside the SANs, or a
	// client trusting another CA, fails.
	for _, cfg := range []*tls.Config{
		{RootCAs: ca.Pool(), ServerName: "10.0.1.10", Certificates: []tls.Certificate{keyPair(t, client)}},
		{RootCAs: other.Pool(), ServerName: "127.0.0.1", Certificates: []tls.Certificate{keyPair(t, client)}},
	} {
		if got, err := exchange(ln.Addr().String(), cfg); err == nil || got == "ok" {
			t.Errorf("server %s verified with %v", cfg.ServerName, got)
		}
		<-results
	}
}

func keyPair(t *testing.T, is Issued) tls.Certificate {
	t.Helper()
	c, err := tls.X509KeyPair(is.CertPEM, is.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serve answers "ok" to each connection whose handshake succeeds and
// reports the handshake's result, one connection at a time.
func serve(ln net.Listener, results chan<- error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		tc := c.(*tls.Conn)
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		err = tc.Handshake()
		if err == nil {
			_, err = tc.Write([]byte("ok"))
		}
		_ = tc.Close()
		results <- err
	}
}

// exchange connects, completes the handshake and reads the server's
// answer. With TLS 1.3 a refused client certificate shows up on the first
// read rather than in the handshake.
func exchange(addr string, cfg *tls.Config) (string, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err == nil && len(b) == 0 {
		err = errors.New("connection closed without an answer")
	}
	return string(b), err
}
