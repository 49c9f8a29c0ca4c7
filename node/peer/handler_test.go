package peer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// plainClient does not keep connections, so no goroutine outlives a test.
func plainClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// TestRequestChecks sends hand-made requests to the peer handler and
// checks each refusal etcd defines.
func TestRequestChecks(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	b := startNode(t, 2, 0xabc, "127.0.0.1:0", func(c *Config) { c.Logger = zap.New(core) })
	b.raft.setRemoved(9)
	unknown := startNode(t, 3, 0, "127.0.0.1:0")

	for _, tc := range []struct {
		name       string
		target     *node
		path       string
		headers    map[string]string
		wantStatus int
		wantBody   string
		wantCID    string
	}{
		{"cluster mismatch", b, "/raft/stream/message", map[string]string{HeaderClusterID: "abd", HeaderFrom: "1"}, 412, "cluster ID mismatch", "abc"},
		{"missing cluster", b, "/raft/snapshot", map[string]string{HeaderFrom: "1"}, 412, "cluster ID mismatch", "abc"},
		{"removed sender", b, "/raft/stream/msgapp", map[string]string{HeaderClusterID: "abc", HeaderFrom: "9"}, 403, "removed member", "abc"},
		{"removed sender snapshot", b, "/raft/snapshot", map[string]string{HeaderClusterID: "ABC", HeaderFrom: "9"}, 403, "removed member", "abc"},
		{"bad from", b, "/raft/stream/msgapp", map[string]string{HeaderClusterID: "abc", HeaderFrom: "zz"}, 400, "invalid X-Server-From header", "abc"},
		{"wrong target", b, "/raft/stream/msgapp", map[string]string{HeaderClusterID: "abc", HeaderFrom: "1", HeaderTo: "5"}, 412, "to field mismatch", "abc"},
		{"no upgrade", b, "/raft/stream/msgapp", map[string]string{HeaderClusterID: "abc", HeaderFrom: "1"}, 426, "stream requires Upgrade: etcd-node-raft/1", "abc"},
		{"unknown lane", b, "/raft/stream/other", map[string]string{HeaderClusterID: "abc", HeaderFrom: "1"}, 404, "unknown stream type", ""},
		{"cluster not known yet", unknown, "/raft/stream/msgapp", map[string]string{HeaderClusterID: "abc", HeaderFrom: "1"}, 503, "cluster ID not yet known", "0"},
		{"garbage snapshot", b, "/raft/snapshot", map[string]string{HeaderClusterID: "abc", HeaderFrom: "1"}, 500, "this member cannot receive snapshots", "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tc.target.url+tc.path, strings.NewReader("x"))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := plainClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || strings.TrimSpace(string(body)) != tc.wantBody {
				t.Fatalf("got %d %q, want %d %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			if got := resp.Header.Get(HeaderClusterID); got != tc.wantCID {
				t.Fatalf("%s = %q, want %q", HeaderClusterID, got, tc.wantCID)
			}
		})
	}
	if logs.FilterMessage("request cluster ID mismatch").Len() != 2 {
		t.Fatalf("want 2 %q logs, got %v", "request cluster ID mismatch", logs.All())
	}
}

// TestClusterIDMismatch connects members of different clusters: both
// senders learn the other's cluster ID through the 412 answer.
func TestClusterIDMismatch(t *testing.T) {
	type call struct{ local, remote uint64 }
	var mu sync.Mutex
	calls := map[uint64][]call{}
	record := func(id uint64) func(*Config) {
		return func(c *Config) {
			c.OnClusterIDMismatch = func(local, remote uint64) {
				mu.Lock()
				calls[id] = append(calls[id], call{local, remote})
				mu.Unlock()
			}
		}
	}
	a := startNode(t, 1, 0x1111, "127.0.0.1:0", record(1))
	b := startNode(t, 2, 0x2222, "127.0.0.1:0", record(2))
	connect(a, b)
	waitFor(t, "both callbacks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(calls[1]) > 0 && len(calls[2]) > 0
	})
	mu.Lock()
	defer mu.Unlock()
	if want := []call{{0x1111, 0x2222}}; !equalCalls(calls[1], want) {
		t.Fatalf("member 1 calls %v, want %v", calls[1], want)
	}
	if want := []call{{0x2222, 0x1111}}; !equalCalls(calls[2], want) {
		t.Fatalf("member 2 calls %v, want %v", calls[2], want)
	}
	if !a.tr.ActiveSince(2).IsZero() {
		t.Fatal("a peer of another cluster became active")
	}
}

func equalCalls[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRemovedMember removes a connected member: its peer cuts the streams,
// the reconnect is answered 403 and the removed member's OnRemoved fires.
func TestRemovedMember(t *testing.T) {
	removed := make(chan struct{}, 4)
	a := startNode(t, 1, 7, "127.0.0.1:0", func(c *Config) {
		c.OnRemoved = func() { removed <- struct{}{} }
	})
	b := startNode(t, 2, 7, "127.0.0.1:0")
	connect(a, b)
	waitFor(t, "streams up", func() bool { return !a.tr.ActiveSince(2).IsZero() })

	b.raft.setRemoved(1)
	b.tr.RemovePeer(1)
	select {
	case <-removed:
	case <-time.After(10 * time.Second):
		t.Fatal("OnRemoved not called")
	}
	waitFor(t, "peer inactive", func() bool { return a.tr.ActiveSince(2).IsZero() })
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1)})
	waitFor(t, "drop reported", func() bool {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1)})
		return a.raft.unreachableCount(2) > 0
	})
	if n := len(b.raft.received()); n != 0 {
		t.Fatalf("removed member delivered %d messages", n)
	}
	if len(removed) != 0 {
		t.Fatal("OnRemoved called more than once")
	}
}

// TestMembersAndVersion checks the JSON and headers of GET /members and
// GET /version and the client helpers that read them.
func TestMembersAndVersion(t *testing.T) {
	members := []MemberInfo{
		{ID: 0x8e9e05c52164694d, Name: "infra0", PeerURLs: []string{"http://10.0.1.10:2380"}, ClientURLs: []string{"http://10.0.1.10:2379"}},
		{ID: 0xfd422379fda50e48, PeerURLs: []string{"http://10.0.1.12:2380"}, IsLearner: true},
	}
	b := startNode(t, 2, 0xcdf818194e3a8c32, "127.0.0.1:0", func(c *Config) {
		c.Members = func() []MemberInfo { return members }
		c.ClusterVersion = func() string { return "3.7.0" }
	})
	empty := startNode(t, 3, 0x77, "127.0.0.1:0")
	c := startNode(t, 5, 0x55, "127.0.0.1:0", func(c *Config) {
		c.Members = func() []MemberInfo { return members }
	})
	// The URLs are tried in sorted order whatever order they come in.
	firstURL, secondURL, firstCID := b.url, c.url, uint64(0xcdf818194e3a8c32)
	if c.url < b.url {
		firstURL, secondURL, firstCID = c.url, b.url, 0x55
	}

	resp, err := plainClient().Get(b.url + "/members")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	wantJSON := `[{"id":10276657743932975437,"peerURLs":["http://10.0.1.10:2380"],"name":"infra0","clientURLs":["http://10.0.1.10:2379"],"isLearner":false},` +
		`{"id":18249187646912138824,"peerURLs":["http://10.0.1.12:2380"],"name":"","clientURLs":[],"isLearner":true}]`
	if strings.TrimSpace(string(body)) != wantJSON {
		t.Fatalf("GET /members body\n got %s\nwant %s", body, wantJSON)
	}
	if got := resp.Header.Get(HeaderClusterID); got != "cdf818194e3a8c32" {
		t.Fatalf("cluster header %q", got)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}

	v, err := FetchVersion(context.Background(), plainClient(), b.url)
	if err != nil || v != (Versions{Server: "3.7.3", Cluster: "3.7.0"}) {
		t.Fatalf("FetchVersion = %+v, %v", v, err)
	}
	if v, _ := FetchVersion(context.Background(), plainClient(), empty.url); v.Cluster != "not_decided" {
		t.Fatalf("cluster version before it is known: %q", v.Cluster)
	}

	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()

	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		urls    []string
		wantCID uint64
		wantN   int
		wantErr error
	}{
		{"first sorted answer wins", []string{secondURL, firstURL}, firstCID, 2, nil},
		{"dead URL skipped", []string{deadURL, "http://[::1", b.url}, 0xcdf818194e3a8c32, 2, nil},
		{"empty member list", []string{empty.url}, 0x77, 0, ErrNoMembers},
		{"nobody answers", []string{deadURL, "ftp://x"}, 0, 0, ErrNoClusterInfo},
		{"no URLs", nil, 0, 0, ErrNoClusterInfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cid, got, err := FetchMembers(ctx, plainClient(), tc.urls)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil && err.Error() != tc.wantErr.Error() {
				t.Fatalf("error text %q, want %q", err, tc.wantErr)
			}
			if tc.wantErr == ErrNoClusterInfo {
				return
			}
			if cid != tc.wantCID || len(got) != tc.wantN {
				t.Fatalf("got cluster %x with %d members, want %x with %d", cid, len(got), tc.wantCID, tc.wantN)
			}
			if tc.wantN > 0 && (got[0].ID != members[0].ID || got[1].IsLearner != true || got[0].ClientURLs[0] != "http://10.0.1.10:2379") {
				t.Fatalf("members decoded as %+v", got)
			}
		})
	}

	cid, err := ProbeClusterID(ctx, nil, b.url)
	if err != nil || cid != 0xcdf818194e3a8c32 {
		t.Fatalf("ProbeClusterID = %x, %v", cid, err)
	}
	if _, err := ProbeClusterID(ctx, plainClient(), deadURL); err == nil {
		t.Fatal("ProbeClusterID of a dead URL succeeded")
	}
	// A member whose cluster ID is not known yet still answers with "0".
	if cid, err := ProbeClusterID(ctx, plainClient(), startNode(t, 4, 0, "127.0.0.1:0").url); err != nil || cid != 0 {
		t.Fatalf("ProbeClusterID of an unknown cluster = %x, %v", cid, err)
	}
	var notJSON http.HandlerFunc = func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(HeaderClusterID, "1")
		io.WriteString(w, "<html>")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: notJSON}
	go srv.Serve(ln)
	defer srv.Close()
	if _, _, err := FetchMembers(ctx, plainClient(), []string{"http://" + ln.Addr().String()}); !errors.Is(err, ErrNoClusterInfo) {
		t.Fatalf("non-JSON answer: %v", err)
	}
}

type wrappedWriter struct{ http.ResponseWriter }

func (w wrappedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestStreamThroughMiddleware mounts the handler behind a response-writer
// wrapper, as metrics middleware does, and checks that streams still open;
// a writer that cannot hand over its connection gets 505.
func TestStreamThroughMiddleware(t *testing.T) {
	a := startNode(t, 1, 7, "127.0.0.1:0")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := serveNode(t, 2, 7, ln, "http://"+ln.Addr().String(), func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(wrappedWriter{w}, r) })
	})
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1)})
	waitFor(t, "delivery through the wrapper", func() bool { return len(b.raft.received()) == 1 })

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/raft/stream/message", nil)
	req.Header.Set(HeaderClusterID, "7")
	req.Header.Set(HeaderFrom, "1")
	req.Header.Set("Upgrade", upgradeProtocol)
	b.tr.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusHTTPVersionNotSupported {
		t.Fatalf("status %d, want 505", rec.Code)
	}
}
