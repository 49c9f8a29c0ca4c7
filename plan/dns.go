package plan

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"etcdctl-wizard/node/config"
)

// SRVRecord is one DNS SRV record the dns-srv bootstrap needs.
type SRVRecord struct {
	Name   string // e.g. _etcd-server._tcp.example.com.
	Port   int
	Target string // e.g. infra0.example.com.
}

// srvService is the service label etcd looks up for kind ("server" or
// "client"), given TLS and --discovery-srv-name (SPEC-etcd.md §6).
func srvService(kind string, tls bool, serviceName string) string {
	s := "etcd-" + kind
	if tls {
		s += "-ssl"
	}
	if serviceName != "" {
		s += "-" + serviceName
	}
	return s
}

func fqdn(name string) string { return strings.TrimSuffix(name, ".") + "." }

// SRVRecords lists the server and client SRV records the plan publishes:
// one per member with a hostname, on the member's peer and client port.
func (p *Plan) SRVRecords() (server, client []SRVRecord) {
	q := p.WithDefaults()
	d := q.Spec.Bootstrap.DNSSRV
	tls := q.Spec.TLS.Mode != TLSNone
	domain := strings.TrimSuffix(d.Domain, ".")
	serverName := fqdn("_" + srvService("server", tls, d.ServiceName) + "._tcp." + domain)
	clientName := fqdn("_" + srvService("client", tls, d.ServiceName) + "._tcp." + domain)
	for _, m := range q.Spec.Members {
		if m.Hostname == "" {
			continue
		}
		server = append(server, SRVRecord{Name: serverName, Port: m.PeerPort, Target: fqdn(m.Hostname)})
		client = append(client, SRVRecord{Name: clientName, Port: m.ClientPort, Target: fqdn(m.Hostname)})
	}
	return server, client
}

// DNSRecords renders the records a dns-srv plan needs, in zone-file syntax
// (the same lines `dig +noall +answer` prints in the guide).
func (p *Plan) DNSRecords() string {
	q := p.WithDefaults()
	server, client := q.SRVRecords()
	var b strings.Builder
	for _, r := range append(server, client...) {
		fmt.Fprintf(&b, "%s 300 IN SRV 0 0 %d %s\n", r.Name, r.Port, r.Target)
	}
	for _, m := range q.Spec.Members {
		if m.Hostname == "" {
			continue
		}
		typ := "A"
		if ip := net.ParseIP(m.IP); ip != nil && ip.To4() == nil {
			typ = "AAAA"
		}
		fmt.Fprintf(&b, "%s 300 IN %s %s\n", fqdn(m.Hostname), typ, m.IP)
	}
	if q.Spec.TLS.Mode != TLSNone {
		fmt.Fprintf(&b, "; with TLS, every member certificate needs %s in its DNS SANs besides the host name\n", strings.TrimSuffix(q.Spec.Bootstrap.DNSSRV.Domain, "."))
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// srvCluster assembles offline the --initial-cluster that etcd builds from
// the SRV records (SPEC-etcd.md §6): every target of the plan's records, named
// after the member when it resolves to one of the member's advertised peer
// addresses and numbered otherwise.
func (p *Plan) srvCluster(ctx context.Context, c *config.Config, resolve config.Resolver) (string, error) {
	q := p.WithDefaults()
	d := q.Spec.Bootstrap.DNSSRV
	tls := q.Spec.TLS.Mode != TLSNone
	scheme := "http"
	if tls {
		scheme = "https"
	}
	service := "_" + srvService("server", tls, c.DiscoverySRVName) + "._tcp." + strings.TrimSuffix(c.DiscoverySRV, ".")
	if !strings.EqualFold(strings.TrimSuffix(c.DiscoverySRV, "."), strings.TrimSuffix(d.Domain, ".")) || c.DiscoverySRVName != d.ServiceName {
		return "", fmt.Errorf("error setting up initial cluster: error querying DNS SRV records for %s: the plan publishes records only under %s", service,
			"_"+srvService("server", tls, d.ServiceName)+"._tcp."+d.Domain)
	}
	self := map[string]string{}
	for _, u := range c.InitialAdvertisePeerURLs {
		addr, err := resolveHostPort(ctx, u.Host, resolve)
		if err != nil {
			return "", fmt.Errorf("error setting up initial cluster: cannot resolve %s: %v", u.String(), err)
		}
		self[addr] = u.String()
	}
	server, _ := q.SRVRecords()
	var pairs []string
	var errs []string
	temp := 0
	found := false
	for _, r := range server {
		hostport := net.JoinHostPort(strings.TrimSuffix(r.Target, "."), strconv.Itoa(r.Port))
		addr, err := resolveHostPort(ctx, hostport, resolve)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		u := url.URL{Scheme: scheme, Host: hostport}
		name := strconv.Itoa(temp)
		if adv, ok := self[addr]; ok {
			if au, _ := url.Parse(adv); au != nil && au.Scheme != scheme {
				errs = append(errs, fmt.Sprintf("bootstrap at %s from DNS for %s has scheme mismatch with expected peer %s", u.String(), service, adv))
				continue
			}
			name, found = c.Name, true
		} else {
			temp++
		}
		pairs = append(pairs, name+"="+u.String())
	}
	if len(pairs) == 0 {
		return "", fmt.Errorf("error setting up initial cluster: error querying DNS SRV records for %s %s", service, strings.Join(errs, "; "))
	}
	if !found {
		return "", fmt.Errorf("error setting up initial cluster: cannot find local etcd member %q in SRV records", c.Name)
	}
	return strings.Join(pairs, ","), nil
}

func resolveHostPort(ctx context.Context, hostport string, resolve config.Resolver) (string, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", err
	}
	if net.ParseIP(host) != nil {
		return hostport, nil
	}
	return resolve(ctx, hostport)
}
