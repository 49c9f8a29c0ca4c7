package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/v2keys"
)

// keysServer is a discovery service: node/v2keys on a local store.
func keysServer(t *testing.T, wrap func(http.Handler) http.Handler) (*httptest.Server, *v2keys.Handler) {
	t.Helper()
	b, err := v2keys.NewMemoryBackend(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	h := v2keys.New(b, v2keys.Options{WaitTimeout: 300 * time.Millisecond})
	var hh http.Handler = h
	if wrap != nil {
		hh = wrap(h)
	}
	srv := httptest.NewServer(hh)
	t.Cleanup(func() { srv.Close(); b.Close() })
	return srv, h
}

func mustDo(t *testing.T, method, u string, form url.Values) int {
	t.Helper()
	var req *http.Request
	var err error
	if form != nil {
		req, err = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, err = http.NewRequest(method, u, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// member returns the V2 settings of member i of the discovery URL durl.
func member(durl string, i int) V2 {
	name := fmt.Sprintf("infra%d", i)
	peer := fmt.Sprintf("http://127.0.0.1:%d", 12380+i)
	urls, _ := config.ParseURLs(peer)
	return V2{
		URL:            durl,
		ID:             config.MemberID([]string{peer}, durl, nil),
		Value:          config.URLsMap{name: urls}.String(),
		RetryBase:      time.Millisecond,
		RequestTimeout: 5 * time.Second,
	}
}

func joinAll(t *testing.T, cfgs []V2) ([]string, []error) {
	t.Helper()
	out := make([]string, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = JoinV2(ctx, cfgs[i])
		}()
	}
	wg.Wait()
	return out, errs
}

func TestJoinV2ThreeMembers(t *testing.T) {
	var mu sync.Mutex
	var seq []string
	srv, _ := keysServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seq = append(seq, r.Method+" "+r.URL.RequestURI())
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	})
	durl := srv.URL + "/v2/keys/discovery/6c007a14875d53d9bf0ef5a6fc0257c817f0fb83"
	if code := mustDo(t, "PUT", durl+"/_config/size", url.Values{"value": {"3"}}); code != 201 {
		t.Fatalf("size: %d", code)
	}
	cfgs := []V2{member(durl, 0), member(durl, 1), member(durl, 2)}
	got, errs := joinAll(t, cfgs)
	want := "infra0=http://127.0.0.1:12380,infra1=http://127.0.0.1:12381,infra2=http://127.0.0.1:12382"
	for i := range got {
		if errs[i] != nil || got[i] != want {
			t.Fatalf("member %d: %q, %v", i, got[i], errs[i])
		}
	}
	// The request sequence of SPEC §3.2 for one member, parameters sorted.
	self := "/v2/keys/discovery/6c007a14875d53d9bf0ef5a6fc0257c817f0fb83/" + config.IDString(cfgs[0].ID)
	mu.Lock()
	seq = append([]string(nil), seq...)
	mu.Unlock()
	var mine []string
	for _, s := range seq {
		if strings.Contains(s, config.IDString(cfgs[0].ID)) {
			mine = append(mine, s)
		}
	}
	if len(mine) != 2 || mine[0] != "PUT "+self+"?prevExist=false" || !strings.HasPrefix(mine[1], "GET "+self+"?recursive=false&wait=true&waitIndex=") {
		t.Fatalf("self requests: %q", mine)
	}
	if seq[1] != "GET /v2/keys/discovery/6c007a14875d53d9bf0ef5a6fc0257c817f0fb83/_config/size?quorum=false&recursive=false&sorted=false" {
		t.Fatalf("first request: %q", seq[1])
	}
	// A fourth member finds the cluster full before registering.
	_, err := JoinV2(context.Background(), member(durl, 3))
	var je *JoinError
	if !errors.As(err, &je) || !errors.Is(err, ErrFullCluster) || err.Error() != "failed to join discovery cluster (discovery: cluster is full)" {
		t.Fatalf("full: %v", err)
	}
	// A member registered again (same ID) is a duplicate ID... but the
	// cluster is full first for it too, unless it is among the first size:
	// it is, so createSelf meets its own key.
	_, err = JoinV2(context.Background(), cfgs[1])
	if !errors.Is(err, ErrDuplicateID) {
		t.Fatalf("duplicate id: %v", err)
	}
	if h := Hints(err); len(h) != 4 || h[0] != "member has been registered with discovery service" {
		t.Fatalf("hints: %q", h)
	}
}

func TestJoinV2Errors(t *testing.T) {
	srv, _ := keysServer(t, nil)
	base := srv.URL + "/v2/keys/discovery/"
	// No size key: the guide's wording.
	_, err := JoinV2(context.Background(), member(base+"nosize", 0))
	if err == nil || err.Error() != "error: the cluster doesn't have a size configuration value in "+base+"nosize/_config" {
		t.Fatalf("no size: %v", err)
	}
	// A bad size key.
	mustDo(t, "PUT", base+"badsize/_config/size", url.Values{"value": {"three"}})
	if _, err := JoinV2(context.Background(), member(base+"badsize", 0)); !errors.Is(err, ErrBadSizeKey) {
		t.Fatalf("bad size: %v", err)
	}
	// Garbage among the registrations: refused before registering.
	mustDo(t, "PUT", base+"garbage/_config/size", url.Values{"value": {"3"}})
	mustDo(t, "PUT", base+"garbage/junk", url.Values{"value": {"not a url list"}})
	cfg := member(base+"garbage", 0)
	_, err = JoinV2(context.Background(), cfg)
	if !errors.Is(err, ErrInvalidURL) || !strings.Contains(err.Error(), "/discovery/garbage/junk") {
		t.Fatalf("garbage: %v", err)
	}
	if code := mustDo(t, "GET", base+"garbage/"+config.IDString(cfg.ID), nil); code != 404 {
		t.Fatalf("member registered despite garbage: %d", code)
	}
	// Another member already uses this name.
	mustDo(t, "PUT", base+"dupname/_config/size", url.Values{"value": {"3"}})
	mustDo(t, "PUT", base+"dupname/1234", url.Values{"value": {"infra0=http://127.0.0.1:9999"}})
	cfg = member(base+"dupname", 0)
	_, err = JoinV2(context.Background(), cfg)
	if !errors.Is(err, ErrDuplicateName) || Hints(err)[0] != "member with duplicated name has already been registered" {
		t.Fatalf("dup name: %v", err)
	}
	if code := mustDo(t, "GET", base+"dupname/"+config.IDString(cfg.ID), nil); code != 404 {
		t.Fatalf("member registered despite duplicate name: %d", code)
	}
	// Garbage arriving while waiting: the member withdraws its registration.
	mustDo(t, "PUT", base+"late/_config/size", url.Values{"value": {"2"}})
	cfg = member(base+"late", 0)
	errc := make(chan error, 1)
	go func() { _, err := JoinV2(context.Background(), cfg); errc <- err }()
	self := base + "late/" + config.IDString(cfg.ID)
	waitStatus(t, self, 200)
	mustDo(t, "PUT", base+"late/zz", url.Values{"value": {"garbage"}})
	if err := <-errc; !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("late garbage: %v", err)
	}
	if code := mustDo(t, "GET", self, nil); code != 404 {
		t.Fatalf("registration left behind: %d", code)
	}
	// Not a discovery URL at all.
	if _, err := JoinV2(context.Background(), member("ftp://127.0.0.1/x", 0)); err == nil || !strings.Contains(err.Error(), "invalid discovery URL") {
		t.Fatalf("bad url: %v", err)
	}
	// Bad proxy.
	c := member(base+"x", 0)
	c.Proxy = "%zz"
	if _, err := JoinV2(context.Background(), c); err == nil || !strings.Contains(err.Error(), `invalid proxy address "%zz"`) {
		t.Fatalf("bad proxy: %v", err)
	}
}

func waitStatus(t *testing.T, u string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for mustDo(t, "GET", u, nil) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %d", u, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakeDS mimics discovery.etcd.io on top of v2keys: tokens at /<token>,
// errors as 400 plain text, PUT ignoring prevExist, waits ending with an
// empty 200.
func fakeDS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/v2/keys/_etcd/registry" + r.URL.Path
		q := r2.URL.Query()
		q.Del("prevExist")
		r2.URL.RawQuery = q.Encode()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r2)
		if rec.Code >= 300 {
			http.Error(w, "unable to get key", http.StatusBadRequest)
			return
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

func TestJoinV2AgainstPublicServiceQuirks(t *testing.T) {
	srv, _ := keysServer(t, fakeDS)
	durl := srv.URL + "/3e86b59982e49066c5d813af1c2e2579"
	mustDo(t, "PUT", durl+"/_config/size", url.Values{"value": {"2"}})
	got, errs := joinAll(t, []V2{member(durl, 0), member(durl, 1)})
	for i := range got {
		if errs[i] != nil || got[i] != "infra0=http://127.0.0.1:12380,infra1=http://127.0.0.1:12381" {
			t.Fatalf("member %d: %q %v", i, got[i], errs[i])
		}
	}
	// A token the service does not know: plain text 400.
	_, err := JoinV2(context.Background(), member(srv.URL+"/00000000000000000000000000000000", 0))
	if !errors.Is(err, ErrBadDiscoveryEndpoint) || !strings.HasPrefix(err.Error(), "failed to join discovery cluster (discovery: bad discovery endpoint") {
		t.Fatalf("unknown token: %v", err)
	}
}

func TestJoinV2RetriesAndProxy(t *testing.T) {
	var failures atomic.Int32
	failures.Store(3)
	srv, _ := keysServer(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == "GET" && failures.Add(-1) >= 0 {
				http.Error(w, "no leader", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	durl := srv.URL + "/v2/keys/d/t"
	mustDo(t, "PUT", durl+"/_config/size", url.Values{"value": {"1"}})
	// Through a forward proxy, which must see the requests.
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		out, err := http.NewRequest(r.Method, r.URL.String(), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		out.Header = r.Header
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			w.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}))
	defer proxy.Close()
	cfg := member(durl, 0)
	cfg.Proxy = strings.TrimPrefix(proxy.URL, "http://") // no scheme: http:// is assumed
	got, err := JoinV2(context.Background(), cfg)
	if err != nil || got != "infra0=http://127.0.0.1:12380" {
		t.Fatalf("join: %q %v", got, err)
	}
	if failures.Load() >= 0 || proxied.Load() < 4 {
		t.Fatalf("failures left %d, proxied %d", failures.Load(), proxied.Load())
	}
}

func TestInspectV2(t *testing.T) {
	srv, _ := keysServer(t, nil)
	base := srv.URL + "/v2/keys/discovery/"
	var snf *SizeNotFoundError
	if _, err := InspectV2(context.Background(), base+"none", "", nil); !errors.As(err, &snf) {
		t.Fatalf("no size: %v", err)
	}
	mustDo(t, "PUT", base+"tok/_config/size", url.Values{"value": {"3"}})
	mustDo(t, "PUT", base+"tok/b", url.Values{"value": {"infra1=http://127.0.0.1:2"}})
	mustDo(t, "PUT", base+"tok/a", url.Values{"value": {"infra0=http://127.0.0.1:1"}})
	st, err := InspectV2(context.Background(), base+"tok", "", nil)
	if err != nil || st.Size != 3 || len(st.Registrations) != 2 || st.Registrations[0].ID != "b" || st.Registrations[1].Value != "infra0=http://127.0.0.1:1" || st.Index == 0 {
		t.Fatalf("%+v %v", st, err)
	}
}
