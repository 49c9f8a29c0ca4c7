package certs

// This is the only file that imports cfssl. Everything else in the package,
// and every other package of the project, works with crypto/x509 values and
// the small engine interface below, so cfssl can be replaced or upgraded
// without touching callers.

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare/cfssl/config"
	"github.com/cloudflare/cfssl/csr"
	"github.com/cloudflare/cfssl/initca"
	cflog "github.com/cloudflare/cfssl/log"
	"github.com/cloudflare/cfssl/signer"
	"github.com/cloudflare/cfssl/signer/local"
)

// engine creates keys and signs certificates. The package's exported
// functions validate their input, call the engine, then re-parse and
// re-check what it produced.
type engine interface {
	// newCA returns a self-signed CA certificate and its private key, PEM.
	newCA(r caRequest) (certPEM, keyPEM []byte, err error)
	// sign makes a new key pair and a certificate for it signed by ca.
	sign(ca *CA, r leafRequest) (certPEM, keyPEM []byte, err error)
}

type caRequest struct {
	CommonName   string
	Organization string
	Key          KeySpec
	Validity     time.Duration
}

type leafRequest struct {
	CommonName   string
	Organization string
	Unit         string
	Key          KeySpec
	// Hosts are the SANs: IP addresses and DNS names as strings.
	Hosts     []string
	Usages    []string
	NotBefore time.Time
	NotAfter  time.Time
}

// cfsslEngine is the engine used by the package.
type cfsslEngine struct{}

func newEngine() engine {
	quietCFSSL()
	return cfsslEngine{}
}

var quietOnce sync.Once

// quietCFSSL stops cfssl's logger from writing to stderr, where it would
// corrupt the TUI and clutter CLI output. cfssl logs at INFO by default
// through the standard log package; every failure it logs is also returned
// as an error, which the package reports itself. The level is raised to
// error as documented, and the output goes to a discarding writer so that
// even error lines never reach the terminal. Done once, before the first
// cfssl call, because cfssl's logger is process-wide state.
func quietCFSSL() {
	quietOnce.Do(func() {
		cflog.Level = cflog.LevelError
		cflog.SetLogger(discardSyslog{})
	})
}

// discardSyslog satisfies cfssl's log.SyslogWriter and drops everything.
type discardSyslog struct{}

func (discardSyslog) Debug(string)   {}
func (discardSyslog) Info(string)    {}
func (discardSyslog) Warning(string) {}
func (discardSyslog) Err(string)     {}
func (discardSyslog) Crit(string)    {}
func (discardSyslog) Emerg(string)   {}

// validateUsages rejects usage strings cfssl does not know. cfssl drops
// unknown usages silently, which would produce a certificate that cannot be
// used for what it was issued for.
func validateUsages(usages []string) error {
	if len(usages) == 0 {
		return errors.New("no key usages given")
	}
	var unknown []string
	for _, u := range usages {
		_, ku := config.KeyUsage[u]
		_, eku := config.ExtKeyUsage[u]
		if !ku && !eku {
			unknown = append(unknown, fmt.Sprintf("%q", u))
		}
	}
	if len(unknown) > 0 {
		return fmt.Errorf("unknown key usage %s", strings.Join(unknown, ", "))
	}
	return nil
}

func (cfsslEngine) newCA(r caRequest) (certPEM, keyPEM []byte, err error) {
	req := &csr.CertificateRequest{
		CN:         r.CommonName,
		Names:      []csr.Name{{O: r.Organization}},
		KeyRequest: &csr.KeyRequest{A: r.Key.Algo, S: r.Key.Size},
		CA: &csr.CAConfig{
			Expiry: r.Validity.String(),
			// Path length 0: the CA signs member and client
			// certificates only, never another CA.
			PathLenZero: true,
		},
	}
	certPEM, _, keyPEM, err = initca.New(req)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA: %w", err)
	}
	return certPEM, keyPEM, nil
}

func (cfsslEngine) sign(ca *CA, r leafRequest) (certPEM, keyPEM []byte, err error) {
	if err := validateUsages(r.Usages); err != nil {
		return nil, nil, err
	}
	req := &csr.CertificateRequest{
		CN:         r.CommonName,
		Names:      []csr.Name{{O: r.Organization, OU: r.Unit}},
		Hosts:      r.Hosts,
		KeyRequest: &csr.KeyRequest{A: r.Key.Algo, S: r.Key.Size},
	}
	csrPEM, keyPEM, err := csr.ParseRequest(req)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key and CSR: %w", err)
	}
	policy := &config.Signing{
		Profiles: map[string]*config.SigningProfile{},
		Default: &config.SigningProfile{
			Usage: r.Usages,
			// Expiry must be set for the policy to be valid; NotAfter
			// in the request is what the certificate gets.
			Expiry:       r.NotAfter.Sub(r.NotBefore),
			ExpiryString: r.NotAfter.Sub(r.NotBefore).String(),
		},
	}
	s, err := local.NewSigner(ca.key, ca.Cert, signer.DefaultSigAlgo(ca.key), policy)
	if err != nil {
		return nil, nil, fmt.Errorf("load CA signer: %w", err)
	}
	certPEM, err = s.Sign(signer.SignRequest{
		// Hosts nil keeps the SANs of the CSR; an empty non-nil slice
		// would wipe them.
		Hosts:     nil,
		Request:   string(csrPEM),
		NotBefore: r.NotBefore,
		NotAfter:  r.NotAfter,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	return certPEM, keyPEM, nil
}
