package v2keys

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"etcdctl-wizard/node/mvcc"
)

type testServer struct {
	t   *testing.T
	url string
	b   *MemoryBackend
	h   *Handler
}

func newTestServer(t *testing.T, opt Options) *testServer {
	t.Helper()
	b, err := NewMemoryBackend(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	h := New(b, opt)
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); b.Close() })
	return &testServer{t: t, url: srv.URL, b: b, h: h}
}

type answer struct {
	status int
	index  int64
	body   string
	ev     Event
	err    Error
}

func (s *testServer) do(method, path string, form url.Values) answer {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(data)}
	a.index, _ = strconv.ParseInt(resp.Header.Get("X-Etcd-Index"), 10, 64)
	if resp.StatusCode < 300 {
		json.Unmarshal(data, &a.ev)
	} else {
		json.Unmarshal(data, &a.err)
	}
	return a
}

func (s *testServer) put(path, value string, q string) answer {
	s.t.Helper()
	if q != "" {
		path += "?" + q
	}
	return s.do(http.MethodPut, path, url.Values{"value": {value}})
}

func TestPutGetAndErrors(t *testing.T) {
	s := newTestServer(t, Options{})
	a := s.put("/v2/keys/discovery/tok/_config/size", "3", "")
	if a.status != 201 || a.ev.Action != "set" || *a.ev.Node.Value != "3" || a.ev.Node.CreatedIndex == 0 || a.ev.Node.CreatedIndex != a.ev.Node.ModifiedIndex {
		t.Fatalf("put size: %+v %s", a, a.body)
	}
	a = s.do("GET", "/v2/keys/discovery/tok/_config/size?quorum=false&recursive=false&sorted=false", nil)
	if a.status != 200 || a.ev.Action != "get" || *a.ev.Node.Value != "3" || a.index < a.ev.Node.ModifiedIndex {
		t.Fatalf("get size: %+v %s", a, a.body)
	}
	// The exact JSON names of SPEC §4.
	if !strings.Contains(a.body, `"key":"/discovery/tok/_config/size","value":"3","modifiedIndex":`) || !strings.Contains(a.body, `"createdIndex":`) {
		t.Fatalf("json shape: %s", a.body)
	}
	c1 := s.put("/v2/keys/discovery/tok/a1", "infra0=http://10.0.1.10:2380", "prevExist=false")
	if c1.status != 201 || c1.ev.Action != "create" {
		t.Fatalf("create: %+v", c1)
	}
	dup := s.put("/v2/keys/discovery/tok/a1", "x", "prevExist=false")
	if dup.status != 412 || dup.err.Code != 105 || dup.err.Message != "Key already exists" || dup.err.Cause != "/discovery/tok/a1" || dup.err.Index == 0 {
		t.Fatalf("duplicate: %+v %s", dup, dup.body)
	}
	s.put("/v2/keys/discovery/tok/b2", "infra1=http://10.0.1.11:2380", "prevExist=false")
	// Directory listing: non-hidden children with values and indices.
	a = s.do("GET", "/v2/keys/discovery/tok", nil)
	if a.status != 200 || !a.ev.Node.Dir || len(a.ev.Node.Nodes) != 2 || a.ev.Node.Nodes[0].Key != "/discovery/tok/a1" || a.ev.Node.Nodes[0].CreatedIndex != c1.ev.Node.CreatedIndex {
		t.Fatalf("dir: %s", a.body)
	}
	if strings.Contains(a.body, "_config") {
		t.Fatalf("hidden node listed: %s", a.body)
	}
	// Missing key: 100 with the first missing component as cause.
	a = s.do("GET", "/v2/keys/discovery/none/_config/size", nil)
	if a.status != 404 || a.err.Code != 100 || a.err.Message != "Key not found" || a.err.Cause != "/discovery/none" {
		t.Fatalf("missing: %+v %s", a, a.body)
	}
	// A file is not a directory.
	a = s.put("/v2/keys/discovery/tok/a1/x", "v", "")
	if a.status != 400 || a.err.Code != 104 {
		t.Fatalf("not a dir: %+v %s", a, a.body)
	}
	a = s.put("/v2/keys/discovery/tok", "v", "")
	if a.status != 403 || a.err.Code != 102 {
		t.Fatalf("not a file: %+v %s", a, a.body)
	}
	// Compare and swap / delete.
	a = s.put("/v2/keys/discovery/tok/a1", "y", "prevValue=wrong")
	if a.status != 412 || a.err.Code != 101 {
		t.Fatalf("cas: %+v %s", a, a.body)
	}
	a = s.put("/v2/keys/discovery/tok/a1", "y", "prevValue=infra0%3Dhttp%3A%2F%2F10.0.1.10%3A2380")
	if a.status != 200 || a.ev.Action != "compareAndSwap" || *a.ev.PrevNode.Value != "infra0=http://10.0.1.10:2380" {
		t.Fatalf("cas ok: %+v %s", a, a.body)
	}
	a = s.do("DELETE", "/v2/keys/discovery/tok/a1?prevIndex=1", nil)
	if a.status != 412 || a.err.Code != 101 {
		t.Fatalf("cad: %+v %s", a, a.body)
	}
	a = s.do("DELETE", "/v2/keys/discovery/tok", nil)
	if a.status != 403 || a.err.Code != 102 {
		t.Fatalf("delete dir without dir=true: %+v %s", a, a.body)
	}
	a = s.do("DELETE", "/v2/keys/discovery/tok?dir=true", nil)
	if a.status != 403 || a.err.Code != 108 {
		t.Fatalf("delete non-empty dir: %+v %s", a, a.body)
	}
	a = s.do("DELETE", "/v2/keys/discovery/tok/a1", nil)
	if a.status != 200 || a.ev.Action != "delete" {
		t.Fatalf("delete: %+v %s", a, a.body)
	}
	// Bad parameters.
	if a = s.do("GET", "/v2/keys/x?recursive=maybe", nil); a.status != 400 || a.err.Code != 209 {
		t.Fatalf("bad bool: %+v", a)
	}
	if a = s.do("GET", "/v2/keys/x?wait=true&waitIndex=abc", nil); a.status != 400 || a.err.Code != 203 {
		t.Fatalf("bad waitIndex: %+v", a)
	}
	if a = s.do("PUT", "/v2/keys/x?wait=true", url.Values{"value": {"v"}}); a.status != 400 || a.err.Code != 209 {
		t.Fatalf("wait on PUT: %+v", a)
	}
	if a = s.do("POST", "/v2/keys/x", url.Values{"value": {"v"}}); a.status != 405 {
		t.Fatalf("POST: %+v", a)
	}
	// Root listing hides _ names; recursive nests.
	s.put("/v2/keys/_hidden/k", "v", "")
	a = s.do("GET", "/v2/keys/?recursive=true&sorted=true", nil)
	if a.status != 200 || strings.Contains(a.body, "_hidden") || !strings.Contains(a.body, `"key":"/discovery/tok/b2"`) {
		t.Fatalf("root: %s", a.body)
	}
}

func TestWaits(t *testing.T) {
	s := newTestServer(t, Options{WaitTimeout: 200 * time.Millisecond})
	s.put("/v2/keys/d/_config/size", "3", "")
	a := s.do("GET", "/v2/keys/d", nil)
	idx := a.index
	// A recursive wait returns the next registration, not hidden ones.
	done := make(chan answer, 1)
	go func() {
		done <- s.do("GET", fmt.Sprintf("/v2/keys/d?wait=true&recursive=true&waitIndex=%d", idx+1), nil)
	}()
	waitForWaiter(t, s)
	s.put("/v2/keys/d/_config/other", "x", "")
	c := s.put("/v2/keys/d/m1", "n1=http://127.0.0.1:1", "prevExist=false")
	w := <-done
	if w.status != 200 || w.ev.Action != "create" || w.ev.Node.Key != "/d/m1" || w.ev.Node.ModifiedIndex != c.ev.Node.ModifiedIndex || *w.ev.Node.Value != "n1=http://127.0.0.1:1" {
		t.Fatalf("wait: %+v %s", w, w.body)
	}
	// From history: an older waitIndex returns the first matching event at once.
	w = s.do("GET", fmt.Sprintf("/v2/keys/d/m1?wait=true&waitIndex=%d", c.ev.Node.CreatedIndex), nil)
	if w.status != 200 || w.ev.Node.Key != "/d/m1" {
		t.Fatalf("history: %+v %s", w, w.body)
	}
	// Nothing happens: the server ends the wait with an empty 200.
	w = s.do("GET", "/v2/keys/d?wait=true&recursive=true", nil)
	if w.status != 200 || w.body != "" || w.index == 0 {
		t.Fatalf("timeout: %+v", w)
	}
	// More than 1000 events later, an old index is outdated.
	for i := 0; i < historySize+5; i++ {
		s.put("/v2/keys/spam", strconv.Itoa(i), "")
	}
	w = s.do("GET", fmt.Sprintf("/v2/keys/d?wait=true&waitIndex=%d", idx+1), nil)
	if w.status != 400 || w.err.Code != 401 || !strings.Contains(w.err.Cause, "the requested history has been cleared") {
		t.Fatalf("outdated: %+v %s", w, w.body)
	}
	// Deleting the directory wakes a waiter on a key below it.
	go func() { done <- s.do("GET", "/v2/keys/d/m1?wait=true", nil) }()
	waitForWaiter(t, s)
	s.do("DELETE", "/v2/keys/d?recursive=true", nil)
	w = <-done
	if w.ev.Action != "delete" || w.ev.Node.Key != "/d" || !w.ev.Node.Dir {
		t.Fatalf("delete wake: %+v %s", w, w.body)
	}
}

// waitForWaiter waits until a wait is registered with the hub.
func waitForWaiter(t *testing.T, s *testServer) {
	t.Helper()
	h := s.h.hub
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		h.mu.Lock()
		n := len(h.waiters)
		h.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("no waiter registered")
}

// TestWaitBeforeStart: a wait for an index before the handler started
// listening is answered from the stored state.
func TestWaitBeforeStart(t *testing.T) {
	b, err := NewMemoryBackend(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	first := New(b, Options{})
	srv := httptest.NewServer(first)
	defer srv.Close()
	s := &testServer{t: t, url: srv.URL, b: b}
	c := s.put("/v2/keys/d/m1", "a=http://127.0.0.1:1", "")
	// A second handler on the same store (as after a restart) has no history.
	srv2 := httptest.NewServer(New(b, Options{}))
	defer srv2.Close()
	s2 := &testServer{t: t, url: srv2.URL, b: b}
	w := s2.do("GET", fmt.Sprintf("/v2/keys/d?wait=true&recursive=true&waitIndex=%d", c.ev.Node.CreatedIndex), nil)
	if w.status != 200 || w.ev.Node.Key != "/d/m1" {
		t.Fatalf("scan: %+v %s", w, w.body)
	}
}

func TestNew(t *testing.T) {
	s := newTestServer(t, Options{BaseURL: func() string { return "http://10.0.0.1:2379" }})
	resp, err := http.Get(s.url + "/new?size=5")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	u := string(body)
	if resp.StatusCode != 200 || !strings.HasPrefix(u, "http://10.0.0.1:2379/v2/keys/_etcd/registry/") || len(strings.TrimPrefix(u, "http://10.0.0.1:2379/v2/keys/_etcd/registry/")) != 32 {
		t.Fatalf("new: %d %q", resp.StatusCode, u)
	}
	a := s.do("GET", strings.TrimPrefix(u, "http://10.0.0.1:2379")+"/_config/size", nil)
	if a.status != 200 || *a.ev.Node.Value != "5" {
		t.Fatalf("size: %+v", a)
	}
	resp, _ = http.Get(s.url + "/new?size=zero")
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("bad size: %d", resp.StatusCode)
	}
}

// TestWaitAcrossReset: a store replaced under a pending wait (a snapshot
// from the leader) ends the wait empty; asked again with the same index the
// wait is answered from the stored state.
func TestWaitAcrossReset(t *testing.T) {
	s := newTestServer(t, Options{})
	c := s.put("/v2/keys/d/a", "1", "")
	done := make(chan answer, 1)
	since := c.ev.Node.ModifiedIndex + 1
	go func() {
		done <- s.do("GET", fmt.Sprintf("/v2/keys/d?wait=true&recursive=true&waitIndex=%d", since), nil)
	}()
	waitForWaiter(t, s)
	// A write the hub never hears of, then the reset.
	onWrite := s.b.kv.OnWrite
	s.b.kv.OnWrite = nil
	defer func() { s.b.kv.OnWrite = onWrite }()
	if _, err := s.b.kv.Txn(mvcc.Index{}, &pb.TxnRequest{Success: []*pb.RequestOp{putOp("/d/b", encode(kindFile, actSet, "2"), false)}}); err != nil {
		t.Fatal(err)
	}
	s.b.Reset()
	if w := <-done; w.status != 200 || w.body != "" {
		t.Fatalf("wait across reset: %+v", w)
	}
	w := s.do("GET", fmt.Sprintf("/v2/keys/d?wait=true&recursive=true&waitIndex=%d", since), nil)
	if w.status != 200 || w.ev.Node.Key != "/d/b" {
		t.Fatalf("asked again: %+v %s", w, w.body)
	}
}
