// Command etcd-node is an etcd-compatible member: it takes etcd's flags and
// ETCD_* variables and serves the etcd v3 API. See node/ for the parts.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"etcdctl-wizard/node/api"
	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/server"
	"etcdctl-wizard/node/version"
)

func main() {
	os.Exit(run(filepath.Base(os.Args[0]), os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

// run is main without the process exit, so the exit status of every path
// is explicit.
func run(prog string, args, environ []string, stdout, stderr io.Writer) int {
	failf := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "%s: %s\n", prog, fmt.Sprintf(format, a...))
		return code
	}
	if len(args) > 0 && (args[0] == "gateway" || args[0] == "grpc-proxy") {
		return failf(1, "'%s' is not available in this build of etcd-node yet", args[0])
	}
	cfg, res, err := config.Parse(prog, args, environ)
	if err != nil {
		return failf(config.ExitCode(err), "%v", err)
	}
	if res.Help {
		config.Usage(stdout, prog)
		return 0
	}
	if res.Version {
		fmt.Fprintf(stdout, "etcd-node Version: %s\netcd API Version: %s\nGo Version: %s\nGo OS/Arch: %s/%s\n",
			version.Build, version.Server, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	}
	lg, err := newLogger(cfg.LogLevel, stderr)
	if err != nil {
		return failf(1, "%v", err)
	}
	defer lg.Sync()
	for _, k := range res.EnvUsed {
		lg.Info("recognized and used environment variable", zap.String("variable-name", k))
	}
	for _, w := range res.Warnings {
		fields := make([]zap.Field, 0, len(w.Fields))
		for k, v := range w.Fields {
			fields = append(fields, zap.String(k, v))
		}
		lg.Warn(w.Msg, fields...)
	}
	if err := cfg.Validate(); err != nil {
		return failf(1, "%v", err)
	}

	if err := notYetAvailable(cfg); err != nil {
		return failf(1, "%v", err)
	}
	dns := newResolver(environ)
	// Discovery and the bootstrap checks come before anything that touches
	// TLS or the network, so the guide's mistakes are reported as such.
	var disc discoveryResult
	switch {
	case hasWAL(cfg) && cfg.UsesDiscovery():
		// The guide shows this line; the member then restarts from its WAL.
		fmt.Fprintf(stderr, "%s: discovery token ignored since a cluster has already been initialized. Valid log found at %s\n", prog, cfg.DataDir)
	case !hasWAL(cfg) && cfg.InitialClusterState == "new":
		if cfg.UsesDiscovery() {
			var code int
			if disc, code = discover(prog, cfg, lg, dns, stderr); code != 0 {
				return code
			}
		}
		if _, err := config.CheckNewCluster(context.Background(), cfg, server.SystemResolver); err != nil {
			return failf(1, "%v", err)
		}
	}
	tlsSet, err := setupTLS(cfg, lg)
	if err != nil {
		return failf(1, "%v", err)
	}
	if disc.srvDomain != "" && tlsSet.peerClient != nil {
		// DNS SRV with https peers and no peer CA file: peers are checked
		// against the SRV domain, which their certificates must carry.
		tlsSet.peerClient.ServerName = disc.srvDomain
	}

	peerLns, err := listenAll(cfg.ListenPeerURLs)
	if err != nil {
		return failf(1, "%v", err)
	}
	clientLns, err := listenAll(cfg.ListenClientURLs)
	if err != nil {
		closeAll(peerLns)
		return failf(1, "%v", err)
	}
	metricsLns, err := listenAll(cfg.ListenMetricsURLs)
	if err != nil {
		closeAll(peerLns)
		closeAll(clientLns)
		return failf(1, "%v", err)
	}

	// The peer port answers from the moment it is bound: while this member
	// bootstraps, other members asking for /members get a quick 503 instead
	// of a connection that hangs until their timeout, which would slow every
	// member's start by a timeout per peer.
	peerHandler := &swappableHandler{}
	peerHandler.set(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "member is starting", http.StatusServiceUnavailable)
	}))
	var peerServers []*http.Server
	for i, ln := range peerLns {
		hs := &http.Server{Handler: peerHandler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: httpErrorLog(lg)}
		peerServers = append(peerServers, hs)
		if cfg.ListenPeerURLs[i].Scheme == "https" {
			hs.TLSConfig = tlsSet.peerServer
			go hs.ServeTLS(ln, "", "")
			continue
		}
		go hs.Serve(ln)
	}
	closePeers := func() {
		for _, hs := range peerServers {
			hs.Close()
		}
	}

	fatalc := make(chan string, 1)
	srv, err := server.New(context.Background(), cfg, server.Options{
		Logger:  lg,
		PeerTLS: tlsSet.peerClient,
		Fatal: func(msg string) {
			select {
			case fatalc <- msg:
			default:
			}
		},
	})
	if err != nil {
		closePeers()
		closeAll(clientLns)
		closeAll(metricsLns)
		lg.Error("bootstrap failed", zap.Error(err))
		return failf(1, "%v", err)
	}
	peerHandler.set(srv.PeerHandler())
	srv.Start()

	handler := api.NewHTTPHandler(srv, cfg.EnablePprof)
	var closers []io.Closer
	serveClients := func() {
		for i, ln := range clientLns {
			g := api.NewGRPCServer(srv, api.Options{MaxRequestBytes: int(cfg.MaxRequestBytes), WatchProgressNotifyInterval: cfg.WatchProgressNotifyInterval})
			lg.Info("ready to serve client requests")
			if cfg.ListenClientURLs[i].Scheme == "https" {
				closers = append(closers, api.ServeTLS(ln, tlsSet.clientServer, g, handler, httpErrorLog(lg)))
				lg.Info("serving client traffic securely", zap.String("address", ln.Addr().String()))
				continue
			}
			p := api.NewClientPort(ln, g, handler)
			closers = append(closers, p)
			go p.Serve()
			lg.Warn("serving client traffic insecurely; this is strongly discouraged!", zap.String("address", ln.Addr().String()))
		}
		for _, ln := range metricsLns {
			hs := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
			go hs.Serve(ln)
		}
	}

	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	stop := func() {
		for _, c := range closers {
			c.Close()
		}
		closePeers()
		srv.Stop()
	}
	ready := srv.Ready()
	for {
		select {
		case <-ready:
			serveClients()
			ready = nil
		case sig := <-sigc:
			lg.Info("received signal; shutting down", zap.String("signal", sig.String()))
			stop()
			return 0
		case msg := <-fatalc:
			lg.Error(msg)
			fmt.Fprintf(stderr, "%s: %s\n", prog, msg)
			// The member is unusable; nothing acknowledged is lost by
			// exiting, the WAL is synced on every write.
			return 1
		case <-srv.Removed():
			lg.Warn("the member has been permanently removed from the cluster; exiting")
			time.Sleep(time.Second) // let the conf change reach the other members' answers
			stop()
			return 0
		}
	}
}

func hasWAL(cfg *config.Config) bool {
	m, _ := filepath.Glob(filepath.Join(cfg.WALPath(), "*.wal"))
	return len(m) > 0
}

// notYetAvailable refuses, clearly, the flags of features this build does
// not serve yet, instead of ignoring them.
func notYetAvailable(cfg *config.Config) error {
	var missing []string
	for _, u := range append(append([]neturl.URL(nil), cfg.ListenPeerURLs...), cfg.ListenClientURLs...) {
		if strings.HasPrefix(u.Scheme, "unix") {
			missing = append(missing, u.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not available in this build of etcd-node yet: %s (unix sockets come in a later release; use http(s):// URLs)", strings.Join(missing, ", "))
	}
	return nil
}

func listenAll(urls []neturl.URL) ([]net.Listener, error) {
	var out []net.Listener
	for _, u := range urls {
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("cannot listen on %s: %w", u.String(), err)
		}
		out = append(out, ln)
	}
	return out, nil
}

func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// swappableHandler serves through whichever handler was set last.
type swappableHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swappableHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swappableHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// httpErrorLog sends net/http's own complaints (rejected TLS handshakes)
// to the JSON log instead of raw lines on stderr.
func httpErrorLog(lg *zap.Logger) *log.Logger {
	l, err := zap.NewStdLogAt(lg.With(zap.String("source", "http")), zap.WarnLevel)
	if err != nil {
		return nil
	}
	return l
}

// newLogger logs JSON lines on stderr like etcd: level, ts, caller, msg.
func newLogger(level string, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid --log-level %q", level)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core, zap.AddCaller()), nil
}
