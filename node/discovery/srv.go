package discovery

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"etcdctl-wizard/node/config"
)

// SRV configures DNS SRV discovery (--discovery-srv, --discovery-srv-name).
type SRV struct {
	Domain            string
	ServiceName       string // --discovery-srv-name: _etcd-server[-ssl]-<name>._tcp
	Name              string // this member's --name
	AdvertisePeerURLs []url.URL
	Resolver          *net.Resolver // nil: net.DefaultResolver
	Logger            *zap.Logger
}

// SRVResult is the cluster the records describe.
type SRVResult struct {
	Cluster string // the --initial-cluster string
	HTTPS   bool   // some peer URL is https (the TLS server name rule)
}

// SRVCluster builds the initial cluster from _etcd-server-ssl[-name]._tcp
// (https) and _etcd-server[-name]._tcp (http) records like etcd
// (SPEC-etcd.md §6): the record that resolves to this member's advertised
// peer address gets its name, the others temporary names; the URLs use the
// records' targets and ports.
func SRVCluster(ctx context.Context, cfg SRV) (*SRVResult, error) {
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	suffix := ""
	if cfg.ServiceName != "" {
		suffix = "-" + cfg.ServiceName
	}
	// This member's advertised peer addresses, resolved once.
	self := make([]string, len(cfg.AdvertisePeerURLs))
	for i, u := range cfg.AdvertisePeerURLs {
		a, err := resolveTCP(ctx, cfg.Resolver, u.Host)
		if err != nil {
			return nil, fmt.Errorf("error setting up initial cluster: cannot resolve --initial-advertise-peer-urls %s: %v", u.String(), err)
		}
		self[i] = a
	}
	var parts []string
	var errs []error
	res := &SRVResult{}
	for _, svc := range []struct{ service, scheme string }{
		{"etcd-server-ssl" + suffix, "https"},
		{"etcd-server" + suffix, "http"},
	} {
		got, err := lookupCluster(ctx, cfg, svc.service, svc.scheme, self)
		if err != nil {
			errs = append(errs, err)
		}
		cfg.Logger.Info("get cluster for "+svc.service+" SRV", zap.String("service-scheme", svc.scheme),
			zap.String("service-name", svc.service), zap.String("server-name", cfg.Name),
			zap.String("discovery-srv", cfg.Domain), zap.Strings("cluster", got), zap.Error(err))
		if len(got) > 0 && svc.scheme == "https" {
			res.HTTPS = true
		}
		parts = append(parts, got...)
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("error setting up initial cluster: %v", errors.Join(errs...))
	}
	for _, p := range parts {
		cfg.Logger.Info("got bootstrap from DNS for etcd-server", zap.String("node", p))
	}
	m, err := config.ParseURLsMap(strings.Join(parts, ","))
	if err != nil {
		return nil, fmt.Errorf("error setting up initial cluster: %v", err)
	}
	if _, ok := m[cfg.Name]; !ok {
		return nil, fmt.Errorf("error setting up initial cluster: cannot find local etcd member %q in SRV records", cfg.Name)
	}
	res.Cluster = m.String()
	return res, nil
}

func lookupCluster(ctx context.Context, cfg SRV, service, scheme string, self []string) ([]string, error) {
	_, addrs, err := cfg.Resolver.LookupSRV(ctx, service, "tcp", cfg.Domain)
	if err != nil {
		return nil, fmt.Errorf("error querying DNS SRV records for _%s %v", service, err)
	}
	var parts []string
	temp := 0
	var lastErr error
	for _, srv := range addrs {
		host := strings.TrimSuffix(srv.Target, ".")
		hostport := net.JoinHostPort(host, strconv.Itoa(int(srv.Port)))
		addr, err := resolveTCP(ctx, cfg.Resolver, hostport)
		if err != nil {
			lastErr = fmt.Errorf("SRV target %s of _%s._tcp.%s does not resolve: %v", hostport, service, cfg.Domain, err)
			continue
		}
		name := ""
		for i, a := range self {
			if a != addr {
				continue
			}
			name = cfg.Name
			if cfg.AdvertisePeerURLs[i].Scheme != scheme {
				lastErr = fmt.Errorf("bootstrap at %s://%s from DNS for %s has scheme mismatch with expected peer %s",
					scheme, hostport, service, cfg.AdvertisePeerURLs[i].String())
				cfg.Logger.Warn(lastErr.Error())
				name = "-"
			}
			break
		}
		if name == "-" {
			continue
		}
		if name == "" {
			name = strconv.Itoa(temp)
			temp++
		}
		parts = append(parts, fmt.Sprintf("%s=%s://%s", name, scheme, hostport))
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("error querying DNS SRV records for _%s %v", service, lastErr)
	}
	return parts, nil
}

// resolveTCP resolves host:port to ip:port like net.ResolveTCPAddr (an IPv4
// address first).
func resolveTCP(ctx context.Context, r *net.Resolver, hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip != nil {
		return net.JoinHostPort(ip.String(), port), nil
	}
	ips, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return "", err
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("no address for %s", host)
	}
	pick := ips[0].IP
	for _, ip := range ips {
		if ip.IP.To4() != nil {
			pick = ip.IP
			break
		}
	}
	return net.JoinHostPort(pick.String(), port), nil
}

// CheckDuplicateURLs refuses a discovered cluster in which two members share
// a peer URL.
func CheckDuplicateURLs(cluster string) error {
	m, err := config.ParseURLsMap(cluster)
	if err != nil {
		return fmt.Errorf("error setting up initial cluster: %v", err)
	}
	seen := map[string]bool{}
	for _, name := range m.Names() {
		for _, u := range m[name] {
			if seen[u.String()] {
				return fmt.Errorf("discovery cluster %s has duplicate url", m.String())
			}
			seen[u.String()] = true
		}
	}
	return nil
}

// SRVClients finds client endpoints like etcd's srv.GetClient (used by
// clients and the gateway): _<service>-ssl[-name]._tcp.<domain> as https,
// then _<service>[-name]._tcp.<domain> as http. It fails only when both
// lookups fail. Endpoints keep the target's trailing dot, as etcd's do.
func SRVClients(ctx context.Context, r *net.Resolver, service, domain, name string) ([]string, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	suffix := ""
	if name != "" {
		suffix = "-" + name
	}
	var eps []string
	lookup := func(svc, scheme string) error {
		_, addrs, err := r.LookupSRV(ctx, svc, "tcp", domain)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			eps = append(eps, scheme+"://"+net.JoinHostPort(a.Target, strconv.Itoa(int(a.Port))))
		}
		return nil
	}
	errHTTPS := lookup(service+"-ssl"+suffix, "https")
	errHTTP := lookup(service+suffix, "http")
	if errHTTPS != nil && errHTTP != nil {
		return nil, fmt.Errorf("dns lookup errors: %s and %s", errHTTPS, errHTTP)
	}
	return eps, nil
}
