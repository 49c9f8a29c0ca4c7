package certs

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// SANsForMember derives a member certificate's SANs from the plan (DESIGN.md
// §4, SPEC-etcd.md §6):
//
//   - the member's IP and host name;
//   - every listen and advertise host; a loopback address brings
//     "localhost" along and "localhost" brings 127.0.0.1, because local
//     clients use either;
//   - the SRV domain when given: with DNS SRV discovery and TLS, peers
//     verify the domain itself against the certificate.
//
// The unspecified addresses 0.0.0.0 and :: are never SANs: they are where a
// member listens, not an address anyone connects to. Hosts may be given as
// host, host:port or URL. The result is de-duplicated, in the order above;
// DNS names are lower-cased without a trailing dot.
func SANsForMember(ip, hostname string, listenHosts, advertiseHosts []string, srvDomain string) (ips []net.IP, dns []string) {
	var s sanSet
	s.addHost(ip)
	s.addHost(hostname)
	for _, h := range listenHosts {
		s.addHost(h)
	}
	for _, h := range advertiseHosts {
		s.addHost(h)
	}
	s.addHost(srvDomain)
	return s.ips, s.dns
}

// sanSet collects SANs without duplicates, in insertion order.
type sanSet struct {
	ips []net.IP
	dns []string
}

func (s *sanSet) addIP(ip net.IP) {
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	for _, have := range s.ips {
		if have.Equal(ip) {
			return
		}
	}
	s.ips = append(s.ips, ip)
}

func (s *sanSet) addDNS(name string) {
	for _, have := range s.dns {
		if have == name {
			return
		}
	}
	s.dns = append(s.dns, name)
}

func (s *sanSet) addHost(h string) {
	h = hostOf(h)
	if h == "" {
		return
	}
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsUnspecified() {
			return
		}
		s.addIP(ip)
		if ip.IsLoopback() {
			s.addDNS("localhost")
		}
		return
	}
	s.addDNS(h)
	if h == "localhost" {
		s.addIP(net.IPv4(127, 0, 0, 1))
	}
}

// hostOf extracts the host of "host", "host:port", "[v6]:port" or a URL,
// normalised for SANs.
func hostOf(h string) string {
	h = strings.TrimSpace(h)
	if strings.Contains(h, "://") {
		if u, err := url.Parse(h); err == nil {
			h = u.Hostname()
		}
	} else if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// HostsOfURLs returns the hosts of URL lists as etcd flags hold them
// ("https://10.0.1.10:2380,https://127.0.0.1:2380"), for SANsForMember.
func HostsOfURLs(lists ...string) ([]string, error) {
	var hosts []string
	for _, list := range lists {
		for _, raw := range strings.Split(list, ",") {
			raw = strings.TrimSpace(raw)
			if raw == "" {
				continue
			}
			u, err := url.Parse(raw)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("URL %q: want scheme://host:port", raw)
			}
			hosts = append(hosts, u.Hostname())
		}
	}
	return hosts, nil
}

// normalizeSANs checks and normalises a request's SANs: IPv4 in 4-byte
// form, DNS names lower-case without a trailing dot, no duplicates.
func normalizeSANs(ips []net.IP, dns []string) ([]net.IP, []string, error) {
	var s sanSet
	for _, ip := range ips {
		if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
			return nil, nil, fmt.Errorf("invalid IP address %v in SANs", []byte(ip))
		}
		if ip.IsUnspecified() {
			return nil, nil, fmt.Errorf("%s is not a valid SAN: it is a listen address, not one clients connect to", ip)
		}
		s.addIP(ip)
	}
	for _, name := range dns {
		n := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(name), "."))
		if net.ParseIP(n) != nil {
			return nil, nil, fmt.Errorf("%q is an IP address: give it as an IP SAN", name)
		}
		if err := validateDNSName(n); err != nil {
			return nil, nil, err
		}
		s.addDNS(n)
	}
	return s.ips, s.dns, nil
}

// validateDNSName accepts host names and a leading "*." wildcard label.
func validateDNSName(name string) error {
	if name == "" {
		return errors.New("empty DNS name in SANs")
	}
	if len(name) > 253 {
		return fmt.Errorf("DNS name %q is longer than 253 characters", name)
	}
	for i, label := range strings.Split(name, ".") {
		if label == "*" && i == 0 && strings.Contains(name, ".") {
			continue
		}
		if label == "" || len(label) > 63 {
			return fmt.Errorf("DNS name %q has an empty or over-long label", name)
		}
		for j, c := range label {
			ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' ||
				(c == '-' && j > 0 && j < len(label)-1)
			if !ok {
				return fmt.Errorf("DNS name %q: labels hold letters, digits, '_' and inner '-'", name)
			}
		}
	}
	return nil
}

// describeSANs lists SANs for messages: IPs first, then DNS names.
func describeSANs(ips []net.IP, dns []string) string {
	parts := make([]string, 0, len(ips)+len(dns))
	for _, ip := range ips {
		parts = append(parts, ip.String())
	}
	parts = append(parts, dns...)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
