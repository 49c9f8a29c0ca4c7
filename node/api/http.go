package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"etcdctl-wizard/node/server"
	"etcdctl-wizard/node/v2keys"
	"etcdctl-wizard/node/version"
)

// NewHTTPHandler serves etcd's HTTP endpoints of the client port (and of
// --listen-metrics-urls); pprof adds /debug/pprof/ (--enable-pprof).
func NewHTTPHandler(s *server.Server, pprofOn bool) http.Handler {
	mux := http.NewServeMux()
	if pprofOn {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { serveHealth(s, w, r) })
	mux.HandleFunc("/version", func(w http.ResponseWriter, r *http.Request) { serveVersion(s, w, r) })
	mux.Handle("/metrics", promhttp.HandlerFor(s.Metrics().Registry, promhttp.HandlerOpts{}))
	// The v2 keys subset a discovery service needs, and discovery.etcd.io's
	// /new (node/v2keys).
	v2 := v2keys.New(internalBackend{s}, v2keys.Options{BaseURL: func() string {
		if urls := s.AdvertiseClientURLs(); len(urls) > 0 {
			return urls[0]
		}
		return ""
	}})
	mux.Handle(v2keys.KeysPrefix, v2)
	mux.Handle(v2keys.KeysPrefix+"/", v2)
	mux.Handle("/new", v2)
	for _, p := range []struct {
		path   string
		checks []string
	}{
		{"/livez", []string{"serializable_read"}},
		{"/readyz", []string{"data_corruption", "serializable_read", "linearizable_read", "non_learner"}},
	} {
		p := p
		mux.HandleFunc(p.path, func(w http.ResponseWriter, r *http.Request) { serveProbe(s, p.checks, w, r, p.path) })
		mux.HandleFunc(p.path+"/", func(w http.ResponseWriter, r *http.Request) { serveProbe(s, p.checks, w, r, p.path) })
	}
	return mux
}

func serveVersion(s *server.Server, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	cluster := "not_decided"
	if s.ServesClusterVersion() {
		cluster = version.Cluster
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"etcdserver": version.Server, "etcdcluster": cluster, "storage": version.Storage})
}

type healthBody struct {
	Health string `json:"health"`
	Reason string `json:"reason"`
}

// serveHealth is etcd's /health: leader (unless ?serializable=true), then
// a one-key read.
func serveHealth(s *server.Server, w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	serializable := r.URL.Query().Get("serializable") == "true"
	h := healthBody{Health: "true"}
	if !serializable && s.Leader() == 0 {
		h = healthBody{Health: "false", Reason: "RAFT NO LEADER"}
	} else if err := readCheck(r.Context(), s, serializable); err != nil {
		h = healthBody{Health: "false", Reason: "RANGE ERROR:" + err.Error()}
	}
	w.Header().Set("Content-Type", "application/json")
	if h.Health != "true" {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	// Without a trailing newline, byte for byte etcd's body.
	b, _ := json.Marshal(h)
	w.Write(b)
}

func readCheck(ctx context.Context, s *server.Server, serializable bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := s.Range(ctx, &pb.RangeRequest{Key: []byte("health"), Limit: 1, KeysOnly: true, Serializable: serializable})
	// etcd: with auth enabled the check's read has no user, and a refusal
	// still proves the member serves reads.
	if errors.Is(err, rpctypes.ErrGRPCUserEmpty) || errors.Is(err, rpctypes.ErrGRPCPermissionDenied) {
		return nil
	}
	return err
}

// internalBackend serves the v2 keys subset (discovery) with the member's
// own rights: v2 keys are not under v3 auth in etcd either (they had their
// own, v2 auth, which etcd-node does not serve).
type internalBackend struct{ *server.Server }

func (b internalBackend) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	return b.Server.Range(server.AsInternal(ctx), r)
}

func (b internalBackend) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	return b.Server.Txn(server.AsInternal(ctx), r)
}

// serveProbe is etcd's /livez and /readyz: named checks, ?exclude=,
// ?verbose, and each check at /<probe>/<check>.
func serveProbe(s *server.Server, checks []string, w http.ResponseWriter, r *http.Request, base string) {
	if r.Method != http.MethodGet {
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if one := strings.TrimPrefix(r.URL.Path, base+"/"); one != r.URL.Path && one != "" {
		found := false
		for _, c := range checks {
			if c == one {
				found = true
			}
		}
		if !found {
			http.NotFound(w, r)
			return
		}
		checks = []string{one}
	}
	excluded := map[string]bool{}
	for _, e := range r.URL.Query()["exclude"] {
		excluded[e] = true
	}
	var lines []string
	failed := false
	for _, c := range checks {
		if excluded[c] {
			lines = append(lines, fmt.Sprintf("[+]%s excluded: ok", c))
			continue
		}
		if err := runCheck(r.Context(), s, c); err != nil {
			failed = true
			lines = append(lines, fmt.Sprintf("[-]%s failed: %v", c, err))
		} else {
			lines = append(lines, fmt.Sprintf("[+]%s ok", c))
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(lines, "\n"))
		fmt.Fprintf(w, "%s check failed\n", strings.TrimPrefix(base, "/"))
		return
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		fmt.Fprintln(w, strings.Join(lines, "\n"))
		fmt.Fprintf(w, "%s check passed\n", strings.TrimPrefix(base, "/"))
		return
	}
	fmt.Fprintln(w, "ok")
}

func runCheck(ctx context.Context, s *server.Server, check string) error {
	switch check {
	case "serializable_read":
		return readCheck(ctx, s, true)
	case "linearizable_read":
		return readCheck(ctx, s, false)
	case "non_learner":
		if s.IsLearner() {
			return fmt.Errorf("not supported for learner")
		}
	case "data_corruption":
		// No corruption detection yet, hence no alarm to report.
	}
	return nil
}
