package v2keys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// KeysPrefix is where the API is mounted on the client port.
const KeysPrefix = "/v2/keys"

// Options configure a Handler.
type Options struct {
	// BaseURL is the URL /new puts in front of a new token's path (the
	// member's first advertised client URL); empty uses the request's host.
	BaseURL func() string
	// WaitTimeout ends a wait with nothing to report with an empty 200,
	// which etcd's client re-issues; default 5 minutes.
	WaitTimeout time.Duration
}

// raftInfo is what the backend may tell for the X-Raft-* headers.
type raftInfo interface {
	ClusterID() uint64
	Term() uint64
	AppliedIndex() uint64
}

// Handler serves /v2/keys/... and /new.
type Handler struct {
	s   *store
	hub *hub
	opt Options
}

// New starts following b's writes and returns the handler.
func New(b Backend, opt Options) *Handler {
	if opt.WaitTimeout == 0 {
		opt.WaitTimeout = 5 * time.Minute
	}
	h := &Handler{s: &store{b: b}, hub: newHub(), opt: opt}
	b.AddWriteListener(h.hub.onWrite)
	if r, ok := b.(interface{ AddResetListener(func(rev int64)) }); ok {
		r.AddResetListener(h.hub.reset)
	}
	// Every event after this revision reaches the history.
	h.hub.mu.Lock()
	h.hub.startRev = b.Rev() + 1
	h.hub.mu.Unlock()
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/new" {
		h.serveNew(w, r)
		return
	}
	if r.URL.Path != KeysPrefix && !strings.HasPrefix(r.URL.Path, KeysPrefix+"/") {
		http.NotFound(w, r)
		return
	}
	key := cleanPath(strings.TrimPrefix(r.URL.Path, KeysPrefix))
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		h.writeError(w, newError(codeInvalidForm, err.Error(), 0))
		return
	}
	bools := map[string]*bool{}
	for _, name := range []string{"recursive", "sorted", "quorum", "wait", "prevExist", "dir", "stream"} {
		if raw, ok := r.Form[name]; ok && len(raw) > 0 {
			b, err := strconv.ParseBool(raw[0])
			if err != nil {
				h.writeError(w, newError(codeInvalidField, "invalid value for "+name, 0))
				return
			}
			bools[name] = &b
		}
	}
	is := func(name string) bool { return bools[name] != nil && *bools[name] }
	var waitIndex, prevIndex int64
	for name, dst := range map[string]*int64{"waitIndex": &waitIndex, "prevIndex": &prevIndex} {
		if raw := r.Form.Get(name); raw != "" {
			n, err := strconv.ParseUint(raw, 10, 63)
			if err != nil {
				h.writeError(w, newError(codeIndexNaN, "invalid value for "+name, 0))
				return
			}
			*dst = int64(n)
		}
	}
	if is("wait") && r.Method != http.MethodGet {
		h.writeError(w, newError(codeInvalidField, "wait is only supported on GET", 0))
		return
	}
	var prevValue *string
	if vs, ok := r.Form["prevValue"]; ok && len(vs) > 0 {
		prevValue = &vs[0]
	}
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if is("wait") {
			h.serveWait(ctx, w, key, is("recursive"), waitIndex)
			return
		}
		ev, rev, err := h.s.get(ctx, key, is("recursive"), is("sorted"), is("quorum"))
		h.writeEvent(w, ev, http.StatusOK, rev, err)
	case http.MethodPut:
		o := putOptions{value: r.Form.Get("value"), dir: is("dir"), prevExist: bools["prevExist"], prevValue: prevValue, prevIndex: prevIndex}
		if o.dir && r.Form.Get("value") != "" {
			h.writeError(w, newError(codeInvalidField, "a directory cannot have a value", 0))
			return
		}
		ev, created, rev, err := h.s.put(ctx, key, o)
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		h.writeEvent(w, ev, status, rev, err)
	case http.MethodDelete:
		ev, rev, err := h.s.delete(ctx, key, deleteOptions{dir: is("dir"), recursive: is("recursive"), prevValue: prevValue, prevIndex: prevIndex})
		h.writeEvent(w, ev, http.StatusOK, rev, err)
	}
}

func (h *Handler) serveWait(ctx context.Context, w http.ResponseWriter, key string, recursive bool, since int64) {
	cur := h.s.b.Rev()
	if since == 0 {
		since = cur + 1
	}
	ev, wt, scan, herr := h.hub.register(key, recursive, since, cur)
	if herr != nil {
		h.writeError(w, herr)
		return
	}
	if scan {
		var err error
		if ev, err = h.s.scanState(ctx, key, recursive, since); err != nil {
			h.writeEvent(w, nil, 0, 0, err)
			return
		}
		if ev == nil {
			ev, wt, _, herr = h.hub.register(key, recursive, h.startRevision(), cur)
			if herr != nil {
				h.writeError(w, herr)
				return
			}
		}
	}
	if ev != nil {
		h.writeEvent(w, ev, http.StatusOK, h.s.b.Rev(), nil)
		return
	}
	defer h.hub.cancel(wt)
	h.setHeaders(w, cur)
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	t := time.NewTimer(h.opt.WaitTimeout)
	defer t.Stop()
	select {
	case ev := <-wt.ch:
		if ev != nil { // nil: the store was replaced; the client asks again
			json.NewEncoder(w).Encode(ev)
		}
	case <-ctx.Done():
	case <-t.C:
		// An empty body: the client asks again.
	}
}

func (h *Handler) startRevision() int64 {
	h.hub.mu.Lock()
	defer h.hub.mu.Unlock()
	return h.hub.startRev
}

func (h *Handler) setHeaders(w http.ResponseWriter, index int64) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Etcd-Index", strconv.FormatInt(index, 10))
	if ri, ok := h.s.b.(raftInfo); ok {
		w.Header().Set("X-Raft-Index", strconv.FormatUint(ri.AppliedIndex(), 10))
		w.Header().Set("X-Raft-Term", strconv.FormatUint(ri.Term(), 10))
		w.Header().Set("X-Etcd-Cluster-ID", strconv.FormatUint(ri.ClusterID(), 16))
	}
}

func (h *Handler) writeEvent(w http.ResponseWriter, ev *Event, status int, rev int64, err error) {
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = newError(codeRaftInternal, err.Error(), h.s.b.Rev())
		}
		h.writeError(w, e)
		return
	}
	h.setHeaders(w, rev)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(ev)
}

func (h *Handler) writeError(w http.ResponseWriter, e *Error) {
	if e.Index == 0 {
		e.Index = h.s.b.Rev()
	}
	h.setHeaders(w, e.Index)
	w.WriteHeader(e.status())
	json.NewEncoder(w).Encode(e)
}

// serveNew is discovery.etcd.io's GET /new?size=N: a fresh token directory
// with its size key, answered with the discovery URL in plain text.
func (h *Handler) serveNew(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPut && r.Method != http.MethodPost {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	size := 3
	if raw := r.URL.Query().Get("size"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			http.Error(w, fmt.Sprintf("invalid size %q: must be a positive integer", raw), http.StatusBadRequest)
			return
		}
		size = n
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	dir := "/_etcd/registry/" + hex.EncodeToString(b[:])
	f := false
	if _, _, _, err := h.s.put(r.Context(), dir+"/_config/size", putOptions{value: strconv.Itoa(size), prevExist: &f}); err != nil {
		http.Error(w, "unable to create a discovery token: "+err.Error(), http.StatusInternalServerError)
		return
	}
	base := ""
	if h.opt.BaseURL != nil {
		base = h.opt.BaseURL()
	}
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, strings.TrimSuffix(base, "/")+KeysPrefix+dir)
}
