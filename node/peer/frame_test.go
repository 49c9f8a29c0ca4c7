package peer

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestFrames(t *testing.T) {
	m := msg(raftpb.MsgApp, 1, 2, 42)
	m.Entries = []*raftpb.Entry{{Term: proto.Uint64(1), Index: proto.Uint64(43), Data: []byte("payload")}}
	good, err := appendFrame([]byte("keep"), m)
	if err != nil || string(good[:4]) != "keep" {
		t.Fatalf("appendFrame: %v, prefix %q", err, good[:4])
	}
	if _, err := appendFrame(nil, &raftpb.Message{}); err == nil {
		t.Fatal("an empty message was framed like a ping")
	}
	huge := binary.BigEndian.AppendUint32(nil, maxFrameLen+1)

	for _, tc := range []struct {
		name    string
		in      []byte
		want    *raftpb.Message
		wantErr string
	}{
		{"message", good[4:], m, ""},
		{"ping", []byte{0, 0, 0, 0}, nil, ""},
		{"oversized length", huge, nil, "exceeds"},
		{"truncated payload", good[4 : len(good)-1], nil, "unexpected EOF"},
		{"truncated header", []byte{0, 0}, nil, "unexpected EOF"},
		{"garbage payload", []byte{0, 0, 0, 2, 0xff, 0xff}, nil, "cannot decode raft message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload, err := readFrame(bytes.NewReader(tc.in), nil)
			if err == nil && len(payload) > 0 {
				var got *raftpb.Message
				if got, err = decodeMessage(payload); err == nil && !proto.Equal(got, tc.want) {
					t.Fatalf("decoded %v, want %v", got, tc.want)
				}
			}
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if tc.want == nil && tc.wantErr == "" && len(payload) != 0 {
				t.Fatalf("ping read as %d bytes", len(payload))
			}
		})
	}
}

// rawStream opens a stream by hand, as a foreign or broken peer would.
func rawStream(t *testing.T, n *node, from uint64) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(n.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req, _ := http.NewRequest(http.MethodPost, n.url+"/raft/stream/message", nil)
	req.Header.Set(HeaderClusterID, idString(n.tr.ClusterID()))
	req.Header.Set(HeaderFrom, idString(from))
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", upgradeProtocol)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn, br
}

// TestStreamReceiver drives the receiving side with hand-written frames:
// pings are answered, forged senders are dropped and a corrupt frame
// closes the stream instead of crashing the member.
func TestStreamReceiver(t *testing.T) {
	b := startNode(t, 2, 7, "127.0.0.1:0")
	conn, br := rawStream(t, b, 1)

	if _, err := conn.Write([]byte{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if c, err := br.ReadByte(); err != nil || c != 0 {
		t.Fatalf("pong = %v, %v", c, err)
	}
	var out []byte
	out, _ = appendFrame(out, msg(raftpb.MsgHeartbeat, 3, 2, 1)) // forged sender
	out, _ = appendFrame(out, msg(raftpb.MsgHeartbeat, 1, 2, 2))
	out = append(out, 0xff, 0xff, 0xff, 0xff) // oversized length
	if _, err := conn.Write(out); err != nil {
		t.Fatal(err)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream not closed after a corrupt frame: %v", err)
	}
	got := b.raft.received()
	if len(got) != 1 || got[0].GetFrom() != 1 || got[0].GetIndex() != 2 {
		t.Fatalf("raft got %v", got)
	}
}

// TestStopLeavesNoGoroutines runs traffic, a snapshot and inbound streams,
// then checks that Stop (and closing the server) ends every goroutine.
func TestStopLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	release := make(chan struct{})
	a := startNode(t, 1, 7, "127.0.0.1:0", func(c *Config) {
		c.SnapshotSource = func(*raftpb.Message) (io.ReadCloser, int64, error) {
			<-release // held until the streams are busy, so the upload overlaps Stop
			return io.NopCloser(strings.NewReader("db")), 2, nil
		}
	})
	b := startNode(t, 2, 7, "127.0.0.1:0")
	c := startNode(t, 3, 7, "127.0.0.1:0")
	connect(a, b, c)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1), msg(raftpb.MsgApp, 1, 3, 1), snapMsg(1, 2)})
	waitFor(t, "delivery", func() bool { return len(b.raft.received()) == 1 && len(c.raft.received()) == 1 })
	close(release)
	for _, n := range []*node{a, b, c} {
		n.stop()
	}
	// Stopped transports ignore further calls.
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 2)})
	a.tr.AddPeer(4, []string{b.url})
	a.tr.Stop()
}

// TestTLS runs streams and a snapshot over TLS against a server that also
// offers HTTP/2, as a peer listener normally does.
func TestTLS(t *testing.T) {
	serverCfg, clientCfg := testTLS(t)
	var nodes []*node
	for id := uint64(1); id <= 2; id++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n := serveNodeTLS(t, id, ln, serverCfg, clientCfg)
		nodes = append(nodes, n)
	}
	a, b := nodes[0], nodes[1]
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1), msg(raftpb.MsgHeartbeat, 1, 2, 2), snapMsg(1, 2)})
	waitFor(t, "delivery over TLS", func() bool { return len(b.raft.received()) == 3 })
	waitFor(t, "snapshot report", func() bool { return len(a.raft.snapReports()) == 1 })
	if r := a.raft.snapReports()[0]; r.status != 1 {
		t.Fatalf("snapshot over TLS reported %v", r)
	}
	cid, err := ProbeClusterID(t.Context(), &http.Client{Transport: &http.Transport{TLSClientConfig: clientCfg, DisableKeepAlives: true}}, a.url)
	if err != nil || cid != 7 {
		t.Fatalf("ProbeClusterID over TLS = %x, %v", cid, err)
	}
}

func serveNodeTLS(t *testing.T, id uint64, ln net.Listener, serverCfg, clientCfg *tls.Config) *node {
	fr := newFakeRaft()
	cfg := Config{
		LocalID: id, ClusterID: 7, Raft: fr, Logger: testLogger(t), TLS: clientCfg,
		SnapshotSource: func(*raftpb.Message) (io.ReadCloser, int64, error) {
			return io.NopCloser(strings.NewReader("db-bytes")), 8, nil
		},
		SnapshotSink: func(_ *raftpb.Message, r io.Reader) error {
			b, err := io.ReadAll(r)
			if err == nil && string(b) != "db-bytes" {
				err = errors.New("wrong bytes")
			}
			return err
		},
	}
	n := &node{id: id, raft: fr, tr: New(cfg), url: "https://" + ln.Addr().String(), done: make(chan struct{})}
	n.srv = &http.Server{Handler: n.tr.Handler(), TLSConfig: serverCfg.Clone()}
	go func() {
		defer close(n.done)
		if err := n.srv.ServeTLS(ln, "", ""); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(n.stop)
	return n
}

// testTLS makes a self-signed certificate for 127.0.0.1.
func testTLS(t *testing.T) (server, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "peer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	return server, &tls.Config{RootCAs: pool}
}
