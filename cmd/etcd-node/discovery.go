package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/discovery"
)

// dnsServerEnv is a test hook, never a default: when set to host:port,
// etcd-node sends every DNS query (SRV discovery, advertise URL checks) to
// that server with Go's resolver instead of the system's. Tests point it at
// a DNS server on 127.0.0.1.
const dnsServerEnv = "ETCDNODE_DNS_SERVER"

// newResolver is the system resolver or, with the test hook, Go's resolver
// asking the given server; the hook replaces net.DefaultResolver so that
// peer and discovery connections resolve names the same way.
func newResolver(environ []string) *net.Resolver {
	addr := lookupEnv(environ, dnsServerEnv)
	if addr == "" {
		return net.DefaultResolver
	}
	net.DefaultResolver = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	return net.DefaultResolver
}

func lookupEnv(environ []string, key string) string {
	for _, kv := range environ {
		if len(kv) > len(key) && kv[:len(key)] == key && kv[len(key)] == '=' {
			return kv[len(key)+1:]
		}
	}
	return ""
}

// discoveryResult is what a discovery mechanism decided.
type discoveryResult struct {
	// srvDomain is set for DNS SRV with https peers and no peer CA: the
	// peer TLS server name (SPEC-etcd.md §6).
	srvDomain string
}

// discover replaces cfg.InitialCluster and cfg.InitialClusterToken with what
// --discovery, --discovery-endpoints or --discovery-srv found. A non-zero
// code means the member must exit with it; the error was printed.
func discover(prog string, cfg *config.Config, lg *zap.Logger, res *net.Resolver, stderr io.Writer) (discoveryResult, int) {
	// SIGTERM/SIGINT end a discovery that waits for the other members.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var out discoveryResult
	self := config.URLsMap{cfg.Name: cfg.InitialAdvertisePeerURLs}
	var (
		cluster, token string
		err            error
	)
	switch {
	case cfg.Discovery != "":
		token = cfg.Discovery
		lg.Info("bootstrapping with v2 discovery", zap.String("discovery-url", cfg.Discovery))
		cluster, err = discovery.JoinV2(ctx, discovery.V2{
			URL:    cfg.Discovery,
			Proxy:  cfg.DiscoveryProxy,
			ID:     config.MemberID(config.URLStrings(cfg.InitialAdvertisePeerURLs), token, nil),
			Value:  self.String(),
			Logger: lg,
		})
	case cfg.DiscoveryEndpoints != "":
		token = cfg.DiscoveryToken
		lg.Info("bootstrapping with v3 discovery", zap.String("discovery-endpoints", cfg.DiscoveryEndpoints), zap.String("discovery-token", cfg.DiscoveryToken))
		cluster, err = discovery.JoinV3(ctx, discovery.V3{
			Endpoints: cfg.DiscoveryEndpoints,
			Token:     cfg.DiscoveryToken,
			Settings:  cfg.Discovery3,
			ID:        config.MemberID(config.URLStrings(cfg.InitialAdvertisePeerURLs), token, nil),
			Value:     self.String(),
			Logger:    lg,
		})
	case cfg.DiscoverySRV != "":
		token = cfg.InitialClusterToken
		var srv *discovery.SRVResult
		srv, err = discovery.SRVCluster(ctx, discovery.SRV{
			Domain:            cfg.DiscoverySRV,
			ServiceName:       cfg.DiscoverySRVName,
			Name:              cfg.Name,
			AdvertisePeerURLs: cfg.InitialAdvertisePeerURLs,
			Resolver:          res,
			Logger:            lg,
		})
		if err == nil {
			cluster = srv.Cluster
			if srv.HTTPS && cfg.PeerTLS.TrustedCAFile == "" {
				out.srvDomain = cfg.DiscoverySRV
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "%s: discovery interrupted by a signal\n", prog)
			return out, 1
		}
		var snf *discovery.SizeNotFoundError
		var je *discovery.JoinError
		switch {
		case errors.As(err, &snf):
			lg.Error("discovery failed", zap.Error(err))
		case errors.As(err, &je):
			for _, h := range discovery.Hints(err) {
				lg.Warn(h)
			}
			lg.Error("discovery failed", zap.Error(err))
		}
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return out, 1
	}
	if err := discovery.CheckDuplicateURLs(cluster); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return out, 1
	}
	lg.Info("discovered the initial cluster", zap.String("initial-cluster", cluster))
	cfg.InitialCluster = cluster
	cfg.InitialClusterToken = token
	return out, 0
}
