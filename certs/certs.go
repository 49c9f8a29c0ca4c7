package certs

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Validity defaults: long enough not to be a chore, short enough that a
// leaked key does not stay valid for decades.
const (
	DefaultCAValidity   = 5 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	// DefaultWarnWithin is how close to expiry Check starts warning.
	DefaultWarnWithin = 30 * 24 * time.Hour
	// backdate covers small clock differences between the laptop and the
	// hosts, as cfssl does by default.
	backdate = 5 * time.Minute
)

// File names of the CA in its directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// organization is the subject O of everything the wizard issues, so that
// operators can tell its certificates apart.
const organization = "etcdctl-wizard"

// KeySpec selects the key algorithm: "ecdsa" with size 256, 384 or 521, or
// "rsa" with 2048..8192 bits. The zero value means ECDSA P-256.
type KeySpec struct {
	Algo string
	Size int
}

func (k KeySpec) withDefaults() KeySpec {
	if k.Algo == "" {
		k.Algo = "ecdsa"
	}
	if k.Size == 0 {
		if k.Algo == "rsa" {
			k.Size = 2048
		} else {
			k.Size = 256
		}
	}
	return k
}

func (k KeySpec) validate() error {
	switch k.Algo {
	case "ecdsa":
		if k.Size != 256 && k.Size != 384 && k.Size != 521 {
			return fmt.Errorf("ECDSA key size %d: use 256, 384 or 521", k.Size)
		}
	case "rsa":
		if k.Size < 2048 || k.Size > 8192 {
			return fmt.Errorf("RSA key size %d: use 2048 to 8192", k.Size)
		}
	default:
		return fmt.Errorf("key algorithm %q: use ecdsa or rsa", k.Algo)
	}
	return nil
}

// CAOptions describe a new CA. Zero fields take the defaults.
type CAOptions struct {
	// Name is the cluster name; the CA's CN is "<Name> etcd CA".
	Name string
	// CommonName overrides the CN derived from Name.
	CommonName string
	// Validity defaults to DefaultCAValidity.
	Validity time.Duration
	Key      KeySpec
}

// CA is the cluster's certificate authority. Its private key is kept
// unexported so that no caller can ship it anywhere: the key stays in the
// CA directory on the laptop, and only ca.crt is installed on hosts.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	// Dir is the directory the CA was loaded from or written to; empty
	// for a CA made by NewCA and not saved.
	Dir    string
	key    crypto.Signer
	keyPEM []byte
}

// String and GoString keep the private key out of logs and error
// messages: fmt would otherwise print unexported fields too.
func (ca CA) String() string {
	if ca.Cert == nil {
		return "CA(empty)"
	}
	return fmt.Sprintf("CA(%q, valid until %s)", ca.Cert.Subject.CommonName, day(ca.Cert.NotAfter))
}

// GoString is String for %#v.
func (ca CA) GoString() string { return ca.String() }

// Pool returns a pool holding the CA certificate, for x509.Verify and
// tls.Config.RootCAs/ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertPath is the path of ca.crt; empty for an unsaved CA.
func (ca *CA) CertPath() string {
	if ca.Dir == "" {
		return ""
	}
	return filepath.Join(ca.Dir, CACertFile)
}

// NewCA creates a CA in memory. LoadOrCreateCA is the usual entry point;
// NewCA serves tests and callers that keep the CA elsewhere.
func NewCA(opts CAOptions) (*CA, error) {
	cn := opts.CommonName
	if cn == "" {
		name := strings.TrimSpace(opts.Name)
		if name == "" {
			name = "etcd-cluster"
		}
		cn = name + " etcd CA"
	}
	if len(cn) > 64 {
		return nil, fmt.Errorf("CA common name %q is longer than 64 characters: use a shorter cluster name", cn)
	}
	validity := opts.Validity
	if validity == 0 {
		validity = DefaultCAValidity
	}
	if validity < time.Hour {
		return nil, fmt.Errorf("CA validity %s is too short: use at least 1h", validity)
	}
	key := opts.Key.withDefaults()
	if err := key.validate(); err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := newEngine().newCA(caRequest{CommonName: cn, Organization: organization, Key: key, Validity: validity})
	if err != nil {
		return nil, err
	}
	return caFromPEM(certPEM, keyPEM, "")
}

// caFromPEM parses and checks a CA pair. dir only labels errors.
func caFromPEM(certPEM, keyPEM []byte, dir string) (*CA, error) {
	certFile, keyFile := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, &FileError{File: certFile, Code: "bad-cert", Msg: "not a usable PEM certificate: " + err.Error(), Fix: "restore ca.crt from a backup", Err: err}
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, &FileError{File: keyFile, Code: "bad-key", Msg: "not a usable PEM private key: " + err.Error(), Fix: "restore ca.key from a backup", Err: err}
	}
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, &FileError{File: certFile, Code: "not-ca", Msg: fmt.Sprintf("%q is not a CA certificate", cert.Subject.CommonName), Fix: "use a directory whose ca.crt is a CA, or an empty one to create a new CA"}
	}
	if !keyMatches(cert, key) {
		return nil, &FileError{File: keyFile, Code: "key-mismatch", Msg: "does not match the public key of " + certFile, Fix: "restore the matching ca.key from a backup"}
	}
	return &CA{Cert: cert, CertPEM: certPEM, key: key, keyPEM: keyPEM, Dir: dir}, nil
}

// LoadCA loads ca.crt and ca.key from dir and checks that they belong
// together and that the CA is currently valid.
func LoadCA(dir string) (*CA, error) {
	return loadCA(dir, time.Now())
}

func loadCA(dir string, now time.Time) (*CA, error) {
	if dir == "" {
		return nil, errors.New("no certificate directory given")
	}
	fix := "run `etcdctl-wizard certs init --dir " + dir + "` to create the CA"
	_, certPEM, err := readCert(filepath.Join(dir, CACertFile), "CA certificate", fix)
	if err != nil {
		return nil, err
	}
	_, keyPEM, err := readKey(filepath.Join(dir, CAKeyFile), "CA key", "restore ca.key from a backup; without it no new certificate can be issued")
	if err != nil {
		return nil, err
	}
	ca, err := caFromPEM(certPEM, keyPEM, dir)
	if err != nil {
		return nil, err
	}
	certFile := filepath.Join(dir, CACertFile)
	if now.After(ca.Cert.NotAfter) {
		return nil, &FileError{File: certFile, Code: "expired", Msg: "the CA expired on " + day(ca.Cert.NotAfter), Fix: "create a new CA in an empty directory and reissue every certificate"}
	}
	if now.Before(ca.Cert.NotBefore) {
		return nil, &FileError{File: certFile, Code: "not-yet-valid", Msg: "the CA is not valid before " + ca.Cert.NotBefore.UTC().Format(time.RFC3339), Fix: "check this machine's clock"}
	}
	return ca, nil
}

// LoadOrCreateCA reuses the CA in dir (ca.crt and ca.key) or, when neither
// file exists, creates one there: dir 0700, ca.key 0600, ca.crt 0644, each
// written to a temporary file and then moved into place. An existing CA is
// never overwritten; one file without the other is an error.
func LoadOrCreateCA(dir string, opts CAOptions) (ca *CA, created bool, err error) {
	if dir == "" {
		return nil, false, errors.New("no certificate directory given")
	}
	certFile, keyFile := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certExists, err := exists(certFile)
	if err != nil {
		return nil, false, err
	}
	keyExists, err := exists(keyFile)
	if err != nil {
		return nil, false, err
	}
	switch {
	case certExists && keyExists:
		ca, err := LoadCA(dir)
		return ca, false, err
	case certExists:
		return nil, false, &FileError{File: keyFile, Code: "missing", Msg: "CA key does not exist but " + certFile + " does", Fix: "restore ca.key from a backup, or move ca.crt away to create a new CA (every certificate then needs reissuing)"}
	case keyExists:
		return nil, false, &FileError{File: certFile, Code: "missing", Msg: "CA certificate does not exist but " + keyFile + " does", Fix: "restore ca.crt from a backup, or move ca.key away to create a new CA (every certificate then needs reissuing)"}
	}
	if err := ensureDir(dir); err != nil {
		return nil, false, err
	}
	ca, err = NewCA(opts)
	if err != nil {
		return nil, false, err
	}
	// The key first: a ca.crt without its key would be useless, while a
	// lone ca.key is reported and not lost.
	if err := writeFileAtomic(keyFile, ca.keyPEM, KeyMode, false); err != nil {
		return nil, false, err
	}
	if err := writeFileAtomic(certFile, ca.CertPEM, CertMode, false); err != nil {
		return nil, false, err
	}
	ca.Dir = dir
	return ca, true, nil
}

func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("%s: %w", path, err)
	}
}

// Kind is what a certificate is for.
type Kind int

const (
	// KindPeer is a member's peer certificate (--peer-cert-file): it
	// serves the peer port and authenticates the member to its peers, so
	// it carries server and client auth.
	KindPeer Kind = iota + 1
	// KindServer is a member's certificate for the client port
	// (--cert-file). Like the "member.crt" of etcd's TLS guide it carries
	// client auth too, because the member's own gateway connects to its
	// client port with it.
	KindServer
	// KindClient authenticates a client (the wizard, etcdctl) only.
	KindClient
)

func (k Kind) String() string {
	switch k {
	case KindPeer:
		return "peer"
	case KindServer:
		return "server"
	case KindClient:
		return "client"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// usages are the cfssl usage strings of k.
func (k Kind) usages() []string {
	switch k {
	case KindPeer, KindServer:
		return []string{"digital signature", "key encipherment", "server auth", "client auth"}
	case KindClient:
		return []string{"digital signature", "key encipherment", "client auth"}
	}
	return nil
}

// ExtKeyUsages are the extended key usages a certificate of kind k has and
// needs.
func (k Kind) ExtKeyUsages() []x509.ExtKeyUsage {
	switch k {
	case KindPeer, KindServer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case KindClient:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return nil
}

// MemberCertSpec describes a member's certificate. IPs and DNSNames are
// the SANs, usually from SANsForMember.
type MemberCertSpec struct {
	Name     string
	IPs      []net.IP
	DNSNames []string
	// Validity defaults to DefaultCertValidity.
	Validity time.Duration
}

// Request is the general form of the Issue* functions.
type Request struct {
	Kind Kind
	// Name is the subject CN: the member name (checked by
	// --peer-cert-allowed-cn) or the client's user name (etcd's RBAC
	// takes it as the user).
	Name     string
	IPs      []net.IP
	DNSNames []string
	// Validity defaults to DefaultCertValidity; the certificate never
	// outlives the CA.
	Validity time.Duration
	// NotBefore defaults to now minus a few minutes. Set it in the past
	// together with a short Validity to make an expired certificate for
	// tests.
	NotBefore time.Time
	Key       KeySpec
}

// Issued is a new certificate and its private key.
type Issued struct {
	CertPEM []byte
	KeyPEM  []byte
	Cert    *x509.Certificate
}

// String keeps the private key out of logs, like CA.String.
func (is Issued) String() string {
	if is.Cert == nil {
		return "Issued(empty)"
	}
	return fmt.Sprintf("Issued(%q, valid until %s)", is.Cert.Subject.CommonName, day(is.Cert.NotAfter))
}

// GoString is String for %#v.
func (is Issued) GoString() string { return is.String() }

// IssuePeer issues a member's peer certificate (server and client auth).
func IssuePeer(ca *CA, spec MemberCertSpec) (Issued, error) {
	return Issue(ca, Request{Kind: KindPeer, Name: spec.Name, IPs: spec.IPs, DNSNames: spec.DNSNames, Validity: spec.Validity})
}

// IssueServer issues a member's client-port certificate (server auth, plus
// client auth as in etcd's guide).
func IssueServer(ca *CA, spec MemberCertSpec) (Issued, error) {
	return Issue(ca, Request{Kind: KindServer, Name: spec.Name, IPs: spec.IPs, DNSNames: spec.DNSNames, Validity: spec.Validity})
}

// IssueClient issues a client certificate (client auth only) with CN name.
func IssueClient(ca *CA, name string) (Issued, error) {
	return Issue(ca, Request{Kind: KindClient, Name: name})
}

// Issue issues a certificate of any kind.
func Issue(ca *CA, r Request) (Issued, error) {
	return issue(ca, r, time.Now())
}

func issue(ca *CA, r Request, now time.Time) (Issued, error) {
	if ca == nil || ca.Cert == nil || ca.key == nil {
		return Issued{}, errors.New("no CA: load or create one first")
	}
	if err := ValidateName(r.Name); err != nil {
		return Issued{}, err
	}
	usages := r.Kind.usages()
	if usages == nil {
		return Issued{}, fmt.Errorf("unknown certificate kind %d", int(r.Kind))
	}
	ips, dns, err := normalizeSANs(r.IPs, r.DNSNames)
	if err != nil {
		return Issued{}, fmt.Errorf("certificate %s: %w", r.Name, err)
	}
	if r.Kind != KindClient && len(ips)+len(dns) == 0 {
		return Issued{}, fmt.Errorf("%s certificate %s needs at least one IP address or DNS name", r.Kind, r.Name)
	}
	validity := r.Validity
	if validity == 0 {
		validity = DefaultCertValidity
	}
	if validity < 0 {
		return Issued{}, fmt.Errorf("validity %s is negative", validity)
	}
	if now.After(ca.Cert.NotAfter) {
		return Issued{}, fmt.Errorf("the CA %q expired on %s: create a new CA and reissue every certificate", ca.Cert.Subject.CommonName, day(ca.Cert.NotAfter))
	}
	notBefore, notAfter := r.NotBefore, r.NotBefore.Add(validity)
	if r.NotBefore.IsZero() {
		// Backdated for clock skew between the laptop and the hosts,
		// but not before the CA itself (a fresh CA is backdated less);
		// the validity counts from now.
		notBefore, notAfter = now.Add(-backdate), now.Add(validity)
		if notBefore.Before(ca.Cert.NotBefore) {
			notBefore = ca.Cert.NotBefore
		}
	}
	notBefore, notAfter = notBefore.UTC().Truncate(time.Second), notAfter.UTC().Truncate(time.Second)
	// A certificate valid after its CA is not: chains fail at the CA's
	// NotAfter anyway, so say so in the certificate.
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	if !notAfter.After(notBefore) {
		return Issued{}, fmt.Errorf("certificate %s would not be valid at any time (not before %s, CA valid until %s)", r.Name, notBefore.Format(time.RFC3339), ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key := r.Key.withDefaults()
	if err := key.validate(); err != nil {
		return Issued{}, err
	}
	hosts := make([]string, 0, len(ips)+len(dns))
	for _, ip := range ips {
		hosts = append(hosts, ip.String())
	}
	hosts = append(hosts, dns...)
	certPEM, keyPEM, err := newEngine().sign(ca, leafRequest{
		CommonName:   r.Name,
		Organization: organization,
		Unit:         r.Kind.String(),
		Key:          key,
		Hosts:        hosts,
		Usages:       usages,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
	})
	if err != nil {
		return Issued{}, fmt.Errorf("issue %s certificate %s: %w", r.Kind, r.Name, err)
	}
	cert, err := verifyIssued(ca, r, ips, dns, certPEM, keyPEM)
	if err != nil {
		return Issued{}, fmt.Errorf("issue %s certificate %s: %w", r.Kind, r.Name, err)
	}
	return Issued{CertPEM: certPEM, KeyPEM: keyPEM, Cert: cert}, nil
}

// verifyIssued re-reads what the engine produced and checks it is exactly
// what was asked for: the signer has its own ideas about SANs and usages
// (see LIBRARIES.md), and a wrong certificate is only noticed much later,
// at a TLS handshake on some host.
func verifyIssued(ca *CA, r Request, ips []net.IP, dns []string, certPEM, keyPEM []byte) (*x509.Certificate, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if !keyMatches(cert, key) {
		return nil, errors.New("signer returned a key that does not match the certificate")
	}
	if cert.Subject.CommonName != r.Name {
		return nil, fmt.Errorf("signer set CN %q, want %q", cert.Subject.CommonName, r.Name)
	}
	if cert.IsCA {
		return nil, errors.New("signer issued a CA certificate")
	}
	if !slices.Equal(cert.ExtKeyUsage, r.Kind.ExtKeyUsages()) {
		return nil, fmt.Errorf("signer set extended key usages %v, want %v", cert.ExtKeyUsage, r.Kind.ExtKeyUsages())
	}
	if !slices.EqualFunc(cert.IPAddresses, ips, func(a, b net.IP) bool { return a.Equal(b) }) || !slices.Equal(cert.DNSNames, dns) ||
		len(cert.EmailAddresses) != 0 || len(cert.URIs) != 0 {
		return nil, fmt.Errorf("signer set SANs %v, want %v", describeSANs(cert.IPAddresses, cert.DNSNames), describeSANs(ips, dns))
	}
	if err := verifyChain(cert, ca.Cert, r.Kind.ExtKeyUsages()); err != nil {
		return nil, fmt.Errorf("issued certificate does not verify against the CA: %w", err)
	}
	return cert, nil
}

// WriteIssued writes <base>.crt (0644) and <base>.key (0600) into dir, each
// through a temporary file and a rename. Existing files are replaced; the
// CA's own files cannot be targeted.
func WriteIssued(dir, base string, is Issued) error {
	if err := ValidateName(base); err != nil {
		return fmt.Errorf("file base name: %w", err)
	}
	if base == "ca" {
		return errors.New(`file base name "ca" would replace the CA: choose another name`)
	}
	cert, err := parseCertPEM(is.CertPEM)
	if err != nil {
		return fmt.Errorf("%s.crt: %w", base, err)
	}
	key, err := parseKeyPEM(is.KeyPEM)
	if err != nil {
		return fmt.Errorf("%s.key: %w", base, err)
	}
	if !keyMatches(cert, key) {
		return fmt.Errorf("%s: the key does not match the certificate", base)
	}
	if err := ensureDir(dir); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, base+".key"), is.KeyPEM, KeyMode, true); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, base+".crt"), is.CertPEM, CertMode, true)
}

// ValidateName checks a member or client name used as a CN and as a file
// name: 1 to 64 characters, letters, digits, '.', '_' and '-', not
// starting with '.' or '-'.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("name is empty")
	}
	if len(name) > 64 {
		return fmt.Errorf("name %q is longer than 64 characters", name)
	}
	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' ||
			(i > 0 && (c == '.' || c == '-'))
		if !ok {
			return fmt.Errorf("name %q: use letters, digits, '.', '_' and '-' (not first)", name)
		}
	}
	return nil
}

// day formats a time as a date for messages.
func day(t time.Time) string { return t.UTC().Format("2006-01-02") }
