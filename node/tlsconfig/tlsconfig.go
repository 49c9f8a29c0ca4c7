package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"etcdctl-wizard/node/config"
)

// Common are the settings shared by the client and peer sides.
type Common struct {
	MinVersion   uint16
	MaxVersion   uint16
	CipherSuites []uint16
}

// ParseCommon reads --tls-min-version, --tls-max-version and
// --cipher-suites with etcd's rules.
func ParseCommon(c *config.Config) (Common, error) {
	var out Common
	var err error
	if out.MinVersion, err = parseVersion(c.TLSMinVersion, tls.VersionTLS12); err != nil {
		return out, fmt.Errorf("--tls-min-version: %w", err)
	}
	if out.MaxVersion, err = parseVersion(c.TLSMaxVersion, 0); err != nil {
		return out, fmt.Errorf("--tls-max-version: %w", err)
	}
	if out.MaxVersion != 0 && out.MinVersion > out.MaxVersion {
		return out, fmt.Errorf("min version (%s) is greater than max version (%s)", c.TLSMinVersion, c.TLSMaxVersion)
	}
	if c.CipherSuites != "" {
		if out.MinVersion == tls.VersionTLS13 {
			return out, errors.New("cipher suites cannot be configured when only TLS1.3 is enabled")
		}
		for _, name := range strings.Split(c.CipherSuites, ",") {
			id, ok := cipherByName(strings.TrimSpace(name))
			if !ok {
				return out, fmt.Errorf("unexpected TLS cipher suite %q", name)
			}
			out.CipherSuites = append(out.CipherSuites, id)
		}
	}
	return out, nil
}

func parseVersion(s string, def uint16) (uint16, error) {
	switch s {
	case "":
		return def, nil
	case "TLS1.2":
		return tls.VersionTLS12, nil
	case "TLS1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("unexpected TLS version %q (only TLS1.2 and TLS1.3 are supported)", s)
}

func cipherByName(name string) (uint16, bool) {
	aliases := map[string]string{
		"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
		"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	}
	if a, ok := aliases[name]; ok {
		name = a
	}
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if cs.Name == name {
			return cs.ID, true
		}
	}
	return 0, false
}

// CheckFiles verifies at start that a side's certificate, key and CA files
// exist, parse, belong together and are not expired, naming the file at
// fault.
func CheckFiles(side string, info config.TLSInfo, now time.Time) error {
	if info.CertFile == "" && info.KeyFile == "" {
		if info.TrustedCAFile != "" {
			_, err := loadPool(info.TrustedCAFile)
			return err
		}
		return nil
	}
	if info.CertFile == "" || info.KeyFile == "" {
		return fmt.Errorf("%s TLS needs both a certificate and a key file (got cert %q, key %q)", side, info.CertFile, info.KeyFile)
	}
	for _, f := range []string{info.CertFile, info.KeyFile} {
		if _, err := os.ReadFile(f); err != nil {
			return fmt.Errorf("cannot read %s TLS file %s: %w", side, f, err)
		}
	}
	pair, err := tls.LoadX509KeyPair(info.CertFile, info.KeyFile)
	if err != nil {
		return fmt.Errorf("%s TLS certificate %s and key %s are unusable together: %w", side, info.CertFile, info.KeyFile, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("%s TLS certificate %s does not parse: %w", side, info.CertFile, err)
	}
	if now.After(leaf.NotAfter) {
		return fmt.Errorf("%s TLS certificate %s expired on %s; issue a new one", side, info.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return fmt.Errorf("%s TLS certificate %s is not valid before %s (check the clock)", side, info.CertFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if info.TrustedCAFile != "" {
		if _, err := loadPool(info.TrustedCAFile); err != nil {
			return err
		}
	}
	if info.CRLFile != "" {
		if _, err := loadCRL(info.CRLFile); err != nil {
			return err
		}
	}
	return nil
}

func loadPool(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read trusted CA file %s: %w", path, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("trusted CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

func loadCRL(path string) (*x509.RevocationList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read CRL file %s: %w", path, err)
	}
	if strings.Contains(string(data), "-----BEGIN") {
		if b := pemBlock(data); b != nil {
			data = b
		}
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("CRL file %s does not parse: %w", path, err)
	}
	return crl, nil
}

// keyPairLoader re-reads a certificate and key on every handshake, as etcd
// does, so renewed files take effect without a restart.
func keyPairLoader(certFile, keyFile string) func() (*tls.Certificate, error) {
	return func() (*tls.Certificate, error) {
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		return &c, nil
	}
}

func base(common Common) *tls.Config {
	return &tls.Config{MinVersion: common.MinVersion, MaxVersion: common.MaxVersion, CipherSuites: common.CipherSuites}
}

// ServerConfig is the TLS configuration of a listener. Client certificates
// are required as soon as a trusted CA file is set or client-cert-auth is
// on (etcd's rule). For the peer side, checkSAN adds etcd's check that a
// connecting peer's certificate names its IP address.
func ServerConfig(info config.TLSInfo, common Common, peerSide bool) (*tls.Config, error) {
	cfg := base(common)
	load := keyPairLoader(info.CertFile, info.KeyFile)
	cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return load() }
	if info.TrustedCAFile != "" {
		pool, err := loadPool(info.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
	}
	if info.TrustedCAFile != "" || info.ClientCertAuth {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	verify, err := identityCheck(info)
	if err != nil {
		return nil, err
	}
	cfg.VerifyPeerCertificate = verify
	if peerSide && !info.SkipClientSANCheck && cfg.ClientAuth == tls.RequireAndVerifyClientCert {
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c := cfg.Clone()
			c.GetConfigForClient = nil
			remote := hello.Conn.RemoteAddr()
			c.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
				if verify != nil {
					if err := verify(raw, chains); err != nil {
						return err
					}
				}
				return checkSAN(remote, chains)
			}
			return c, nil
		}
	}
	return cfg, nil
}

// ClientConfig is the TLS configuration for dialing peers.
func ClientConfig(info config.TLSInfo, common Common) (*tls.Config, error) {
	cfg := base(common)
	if info.CertFile != "" {
		load := keyPairLoader(info.CertFile, info.KeyFile)
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return load() }
	}
	if info.TrustedCAFile != "" {
		pool, err := loadPool(info.TrustedCAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	} else if info.AutoTLS {
		// Self-signed certificates authenticate nobody: auto-TLS only
		// encrypts, as in etcd.
		cfg.InsecureSkipVerify = true
	}
	verify, err := identityCheck(info)
	if err != nil {
		return nil, err
	}
	cfg.VerifyPeerCertificate = verify
	return cfg, nil
}

// identityCheck implements --peer-cert-allowed-cn/-hostname and the CRL on
// the first verified chain's leaf.
func identityCheck(info config.TLSInfo) (func([][]byte, [][]*x509.Certificate) error, error) {
	var crl *x509.RevocationList
	if info.CRLFile != "" {
		var err error
		if crl, err = loadCRL(info.CRLFile); err != nil {
			return nil, err
		}
	}
	if info.AllowedCN == "" && info.AllowedHostname == "" && crl == nil {
		return nil, nil
	}
	return func(raw [][]byte, chains [][]*x509.Certificate) error {
		if len(chains) == 0 || len(chains[0]) == 0 {
			return nil // nothing verified: nothing to restrict (no client cert demanded)
		}
		leaf := chains[0][0]
		if crl != nil {
			for _, r := range crl.RevokedCertificateEntries {
				if r.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
					return fmt.Errorf("transport: certificate serial %x revoked", leaf.SerialNumber)
				}
			}
		}
		if info.AllowedCN != "" && leaf.Subject.CommonName != info.AllowedCN {
			return errors.New("client certificate authentication failed")
		}
		if info.AllowedHostname != "" && leaf.VerifyHostname(info.AllowedHostname) != nil {
			return errors.New("client certificate authentication failed")
		}
		return nil
	}, nil
}

// checkSAN is etcd's peer listener rule: a client certificate with IP SANs
// must list the address the connection comes from.
func checkSAN(remote net.Addr, chains [][]*x509.Certificate) error {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return nil
	}
	leaf := chains[0][0]
	if len(leaf.IPAddresses) == 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(remote.String())
	if err != nil {
		return err
	}
	ip := net.ParseIP(host)
	for _, san := range leaf.IPAddresses {
		if san.Equal(ip) {
			return nil
		}
	}
	return fmt.Errorf("tls: %q does not match any of IPAddresses %v", host, leaf.IPAddresses)
}
