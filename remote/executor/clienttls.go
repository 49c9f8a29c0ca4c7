package executor

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote/follow"
)

// ClientTLS is the TLS client configuration for the plan's member client
// URLs: nil without TLS; with auto TLS, no verification (each member made
// its own certificate, there is nothing to verify it against); with the
// wizard's CA (self-signed), the CA from spec.tls.dir and, for members that
// ask for client certificates, etcdctl-wizard.crt/.key from that folder, or
// else the first member's client-port pair (issued for client auth too).
func ClientTLS(p *plan.Plan, baseDir string) (*tls.Config, error) {
	q := p.WithDefaults()
	switch q.Spec.TLS.Mode {
	case plan.TLSNone:
		return nil, nil
	case plan.TLSAuto:
		return &tls.Config{InsecureSkipVerify: true}, nil //nolint:gosec // auto TLS: nothing to verify against
	}
	dir := q.Spec.TLS.Dir
	if !filepath.IsAbs(dir) && baseDir != "" {
		dir = filepath.Join(baseDir, dir)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, path.Base(q.Spec.TLS.Files.TrustedCA)))
	if err != nil {
		return nil, fmt.Errorf("client TLS: the CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("client TLS: no certificate in %s", filepath.Join(dir, path.Base(q.Spec.TLS.Files.TrustedCA)))
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	pairs := [][2]string{{filepath.Join(dir, "etcdctl-wizard.crt"), filepath.Join(dir, "etcdctl-wizard.key")}}
	if len(q.Spec.Members) > 0 {
		f := q.Spec.TLS.Files
		name := q.Spec.Members[0].Name
		pairs = append(pairs, [2]string{filepath.Join(dir, path.Base(expand(f.Cert, name))), filepath.Join(dir, path.Base(expand(f.Key, name)))})
	}
	for _, pr := range pairs {
		if cert, err := tls.LoadX509KeyPair(pr[0], pr[1]); err == nil {
			cfg.Certificates = []tls.Certificate{cert}
			break
		}
	}
	return cfg, nil
}

func expand(tmpl, name string) string {
	return strings.ReplaceAll(tmpl, "{name}", name)
}

// Endpoints are the members' first client URLs with their transports.
func (h *Hosts) Endpoints() []follow.Endpoint {
	var eps []follow.Endpoint
	for _, x := range h.Hosts {
		ep := follow.Endpoint{Member: x.Plan.Member, URL: x.Plan.Layout.ClientURLs[0]}
		if x.Transport != nil {
			ep.Transport = x.Transport
		}
		eps = append(eps, ep)
	}
	return eps
}
