package config

import (
	"fmt"
	"net/url"
	"strings"
)

// CheckError is a failed configuration or bootstrap check. Code is stable:
// the wizard's plan validation turns it into a finding code.
type CheckError struct {
	Code   string
	Member string // the member's --name
	Field  string // the flag the check is about
	Msg    string // the message etcd-node prints (the guide's wording where it has one)
	Detail string // optional extra detail printed after Msg
}

func (e *CheckError) Error() string {
	if e.Detail == "" {
		return e.Msg
	}
	return e.Msg + " (" + e.Detail + ")"
}

// Check codes shared by etcd-node and plan validation.
const (
	CodeListenURLNotIP         = "listen-url-not-ip"
	CodeAdvertiseURLNoHost     = "advertise-url-no-host"
	CodeBootstrapFlagsConflict = "bootstrap-flags-conflict"
	CodeDiscoveryConflict      = "discovery-v2-v3-conflict"
	CodeDiscoveryTokenEndpoint = "discovery-token-without-endpoints"
	CodeDiscoveryEndpointEmpty = "discovery-endpoints-empty-entry"
	CodeElectionTooShort       = "election-timeout-too-short"
	CodeElectionTooLong        = "election-timeout-too-long"
	CodeDiscoveryFallbackProxy = "discovery-fallback-proxy"
	CodeSelfSignedValidity     = "self-signed-cert-validity"
	CodeHTTPSWithoutCert       = "https-without-certificate"
	CodeTLSVersions            = "tls-versions"

	CodeInitialClusterInvalid = "initial-cluster-invalid"
	CodeNotInInitialCluster   = "not-in-initial-cluster"
	CodeAdvertiseMismatch     = "advertise-peer-urls-mismatch"
	CodeDuplicatePeerURL      = "duplicate-peer-url"
	CodeInitialClusterUnset   = "initial-cluster-unset"
	CodeJoinWithDiscovery     = "join-with-discovery"
	CodeConflictingClusterID  = "conflicting-cluster-id"
)

// Validate runs etcd's flag-level checks (SPEC-etcd.md §1.3) and returns the
// first failure, as etcd does.
func (c *Config) Validate() error {
	if errs := c.ValidateAll(); len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// ValidateAll runs every flag-level check and returns all failures, in
// etcd's order. The listener TLS rules are separate (CheckListenerTLS)
// because etcd-node reports bootstrap mistakes before them.
func (c *Config) ValidateAll() []*CheckError {
	var errs []*CheckError
	add := func(code, field, format string, args ...any) {
		errs = append(errs, &CheckError{Code: code, Member: c.Name, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	for _, l := range []struct {
		flag string
		urls []url.URL
	}{
		{"listen-peer-urls", c.ListenPeerURLs},
		{"listen-client-urls", c.ListenClientURLs},
		{"listen-client-http-urls", c.ListenClientHTTPURLs},
		{"listen-metrics-urls", c.ListenMetricsURLs},
	} {
		for _, u := range l.urls {
			if !isBindableHost(u) {
				add(CodeListenURLNotIP, l.flag, "expected IP in URL for binding (%s)", u.String())
			}
		}
	}
	for _, a := range []struct {
		flag string
		urls []url.URL
	}{
		{"initial-advertise-peer-urls", c.InitialAdvertisePeerURLs},
		{"advertise-client-urls", c.AdvertiseClientURLs},
	} {
		for _, u := range a.urls {
			if u.Hostname() == "" && u.Scheme != "unix" && u.Scheme != "unixs" {
				add(CodeAdvertiseURLNoHost, a.flag, "--%s %q must be \"host:port\" (missing host)", a.flag, JoinURLs(a.urls))
				break
			}
		}
	}

	n := 0
	for _, set := range []bool{c.InitialCluster != "", c.Discovery != "", c.DiscoverySRV != "", c.DiscoveryEndpoints != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		add(CodeBootstrapFlagsConflict, "initial-cluster", "multiple discovery or bootstrap flags are set. Choose one of \"initial-cluster\", \"discovery\", \"discovery-endpoints\" or \"discovery-srv\"")
	}
	if (c.Discovery != "" || c.DiscoveryProxy != "") && (c.DiscoveryEndpoints != "" || c.DiscoveryToken != "") {
		add(CodeDiscoveryConflict, "discovery", "both v2 discovery settings (discovery, discovery-proxy) and v3 discovery settings (discovery-token, discovery-endpoints) are set")
	}
	if (c.DiscoveryToken != "") != (c.DiscoveryEndpoints != "") {
		add(CodeDiscoveryTokenEndpoint, "discovery-token", "both --discovery-token and --discovery-endpoints must be set")
	}
	if c.DiscoveryEndpoints != "" {
		for _, ep := range splitList(c.DiscoveryEndpoints) {
			if ep == "" {
				add(CodeDiscoveryEndpointEmpty, "discovery-endpoints", "--discovery-endpoints must not contain empty endpoints")
				break
			}
		}
	}
	if c.DiscoveryFallback == "proxy" {
		add(CodeDiscoveryFallbackProxy, "discovery-fallback", "v2 proxy is deprecated, and --discovery-fallback can't be configured as \"proxy\"")
	}
	if 5*c.HeartbeatMs > c.ElectionMs {
		add(CodeElectionTooShort, "election-timeout", "--election-timeout[%vms] should be at least as 5 times as --heartbeat-interval[%vms]", c.ElectionMs, c.HeartbeatMs)
	}
	if c.ElectionMs > 50000 {
		add(CodeElectionTooLong, "election-timeout", "--election-timeout[%vms] is too long, and should be set less than 50 seconds", c.ElectionMs)
	}
	if (c.ClientTLS.AutoTLS || c.PeerTLS.AutoTLS) && c.SelfSignedCertValidity == 0 {
		add(CodeSelfSignedValidity, "self-signed-cert-validity", "selfSignedCertValidity is invalid,it should be greater than 0")
	}
	return errs
}

// CheckListenerTLS reports https listen URLs that have neither certificates
// nor auto-TLS, with etcd's wording.
func (c *Config) CheckListenerTLS() []*CheckError {
	var errs []*CheckError
	for _, u := range append(append([]url.URL(nil), c.ListenClientURLs...), c.ListenClientHTTPURLs...) {
		if (u.Scheme == "https" || u.Scheme == "unixs") && c.ClientTLS.Empty() {
			errs = append(errs, &CheckError{Code: CodeHTTPSWithoutCert, Member: c.Name, Field: "cert-file",
				Msg: fmt.Sprintf("TLS key/cert (--cert-file, --key-file) must be provided for client url %s with HTTPS scheme", u.String())})
		}
	}
	for _, u := range c.ListenPeerURLs {
		if (u.Scheme == "https" || u.Scheme == "unixs") && c.PeerTLS.Empty() {
			errs = append(errs, &CheckError{Code: CodeHTTPSWithoutCert, Member: c.Name, Field: "peer-cert-file",
				Msg: fmt.Sprintf("cannot listen on TLS for %s: KeyFile and CertFile are not presented", u.Host)})
		}
	}
	return errs
}

func splitList(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}
