package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Severity of a Problem.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Problem is one finding of Check: which file, what is wrong and what to do.
type Problem struct {
	File     string   `json:"file"`
	Severity Severity `json:"severity"`
	// Code is stable: missing, unreadable, not-pem, bad-cert, bad-key,
	// key-mismatch, not-ca, wrong-ca, usage, san-missing, expired,
	// not-yet-valid, expires-soon, key-permissions.
	Code    string `json:"code"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func (p Problem) String() string {
	s := p.File + ": " + p.Message
	if p.Fix != "" {
		s += "; " + p.Fix
	}
	return s
}

// CheckSpec is what a certificate must satisfy.
type CheckSpec struct {
	// Kind selects the extended key usages required; 0 checks the chain
	// for any usage.
	Kind Kind
	// IPs and DNSNames must all be covered by the certificate's SANs.
	IPs      []net.IP
	DNSNames []string
	// WarnWithin is how close to expiry to warn; 0 means
	// DefaultWarnWithin, negative never warns.
	WarnWithin time.Duration
	// Now defaults to the current time.
	Now time.Time
}

// Check inspects a certificate, its key and its CA, and reports every
// problem it finds: unreadable or malformed files, a key that does not
// match, a certificate that does not chain to the CA for the required
// usages, missing SANs, expiry (a warning when closer than WarnWithin) and
// a key readable by others. No problems means the pair is ready for etcd.
func Check(certPath, keyPath, caPath string, want CheckSpec) []Problem {
	now := want.Now
	if now.IsZero() {
		now = time.Now()
	}
	warn := want.WarnWithin
	if warn == 0 {
		warn = DefaultWarnWithin
	}
	reissue := "reissue it with `etcdctl-wizard certs issue`"
	var probs []Problem
	add := func(file string, sev Severity, code, msg, fix string) {
		probs = append(probs, Problem{File: file, Severity: sev, Code: code, Message: msg, Fix: fix})
	}
	addErr := func(err error) {
		var fe *FileError
		if errors.As(err, &fe) {
			add(fe.File, SeverityError, fe.Code, fe.Msg, fe.Fix)
			return
		}
		add("", SeverityError, "unreadable", err.Error(), "")
	}

	ca, caProbs := checkCA(caPath, now, warn)
	probs = append(probs, caProbs...)

	cert, _, certErr := readCert(certPath, "certificate", reissue)
	if certErr != nil {
		addErr(certErr)
	}
	key, _, keyErr := readKey(keyPath, "private key", reissue)
	if keyErr != nil {
		addErr(keyErr)
	} else if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		add(keyPath, SeverityWarning, "key-permissions", fmt.Sprintf("private key is readable by others (mode %04o)", fi.Mode().Perm()), "run chmod 600 "+keyPath)
	}
	if cert == nil {
		return probs
	}
	if key != nil && !keyMatches(cert, key) {
		add(keyPath, SeverityError, "key-mismatch", "does not match the public key of "+certPath, "use the key issued with this certificate, or "+reissue)
	}

	if ca != nil {
		probs = append(probs, checkChain(cert, ca, certPath, caPath, want.Kind)...)
	}

	for _, ip := range want.IPs {
		if !slices.ContainsFunc(cert.IPAddresses, ip.Equal) {
			add(certPath, SeverityError, "san-missing", fmt.Sprintf("does not cover IP %s (SANs: %s)", ip, describeSANs(cert.IPAddresses, cert.DNSNames)), reissue+" with the needed SANs")
		}
	}
	for _, name := range want.DNSNames {
		if cert.VerifyHostname(name) != nil {
			add(certPath, SeverityError, "san-missing", fmt.Sprintf("does not cover DNS name %s (SANs: %s)", name, describeSANs(cert.IPAddresses, cert.DNSNames)), reissue+" with the needed SANs")
		}
	}

	switch {
	case now.After(cert.NotAfter):
		add(certPath, SeverityError, "expired", "expired on "+day(cert.NotAfter), reissue)
	case now.Before(cert.NotBefore):
		add(certPath, SeverityError, "not-yet-valid", "is not valid before "+cert.NotBefore.UTC().Format(time.RFC3339), "check this machine's clock")
	case warn > 0 && cert.NotAfter.Sub(now) < warn:
		add(certPath, SeverityWarning, "expires-soon", fmt.Sprintf("expires on %s, in %s", day(cert.NotAfter), daysLeft(cert.NotAfter, now)), reissue+" before then")
	}
	return probs
}

// checkCA reads and judges a CA certificate. It returns the certificate
// when it can serve as a trust anchor (even if expired, so that chains can
// still be judged).
func checkCA(caPath string, now time.Time, warn time.Duration) (*x509.Certificate, []Problem) {
	ca, _, err := readCert(caPath, "CA certificate", "copy the cluster's ca.crt there or run `etcdctl-wizard certs init`")
	if err != nil {
		var fe *FileError
		if errors.As(err, &fe) {
			return nil, []Problem{{File: fe.File, Severity: SeverityError, Code: fe.Code, Message: fe.Msg, Fix: fe.Fix}}
		}
		return nil, []Problem{{File: caPath, Severity: SeverityError, Code: "unreadable", Message: err.Error()}}
	}
	switch {
	case !ca.IsCA || !ca.BasicConstraintsValid:
		return nil, []Problem{{File: caPath, Severity: SeverityError, Code: "not-ca", Message: fmt.Sprintf("%q is not a CA certificate", ca.Subject.CommonName), Fix: "point to the cluster's ca.crt"}}
	case now.After(ca.NotAfter):
		return ca, []Problem{{File: caPath, Severity: SeverityError, Code: "expired", Message: "the CA expired on " + day(ca.NotAfter), Fix: "create a new CA and reissue every certificate"}}
	case now.Before(ca.NotBefore):
		return ca, []Problem{{File: caPath, Severity: SeverityError, Code: "not-yet-valid", Message: "the CA is not valid before " + ca.NotBefore.UTC().Format(time.RFC3339), Fix: "check this machine's clock"}}
	case warn > 0 && ca.NotAfter.Sub(now) < warn:
		return ca, []Problem{{File: caPath, Severity: SeverityWarning, Code: "expires-soon", Message: fmt.Sprintf("the CA expires on %s, in %s", day(ca.NotAfter), daysLeft(ca.NotAfter, now)), Fix: "plan a new CA and reissue every certificate before then"}}
	}
	return ca, nil
}

// verifyChain verifies cert against ca for each usage separately (a
// VerifyOptions.KeyUsages list accepts any one of its usages). Validity
// periods are judged elsewhere, so the chain is verified at a moment when
// both certificates are valid; when their periods do not overlap (a test's
// deliberately expired certificate from a newer CA) x509.Verify cannot
// run, and the signature is checked directly.
func verifyChain(cert, ca *x509.Certificate, usages []x509.ExtKeyUsage) error {
	at := cert.NotBefore
	if ca.NotBefore.After(at) {
		at = ca.NotBefore
	}
	at = at.Add(time.Second)
	if at.After(cert.NotAfter) || at.After(ca.NotAfter) {
		if err := cert.CheckSignatureFrom(ca); err != nil {
			return x509.UnknownAuthorityError{Cert: cert}
		}
		for _, u := range usages {
			if u != x509.ExtKeyUsageAny && !slices.Contains(cert.ExtKeyUsage, u) && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) {
				return x509.CertificateInvalidError{Cert: cert, Reason: x509.IncompatibleUsage}
			}
		}
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, u := range usages {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
			return err
		}
	}
	return nil
}

// checkChain turns verifyChain's verdict into Problems, one per missing
// usage.
func checkChain(cert, ca *x509.Certificate, certPath, caPath string, kind Kind) []Problem {
	usages := kind.ExtKeyUsages()
	if usages == nil {
		usages = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
	}
	var probs []Problem
	for _, u := range usages {
		err := verifyChain(cert, ca, []x509.ExtKeyUsage{u})
		if err == nil {
			continue
		}
		var ua x509.UnknownAuthorityError
		var inv x509.CertificateInvalidError
		switch {
		case errors.As(err, &ua):
			return []Problem{{File: certPath, Severity: SeverityError, Code: "wrong-ca",
				Message: fmt.Sprintf("was not issued by the CA in %s (issuer %q, CA %q)", caPath, cert.Issuer.CommonName, ca.Subject.CommonName),
				Fix:     "reissue it from this CA with `etcdctl-wizard certs issue`, or use the CA that issued it"}}
		case errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage:
			probs = append(probs, Problem{File: certPath, Severity: SeverityError, Code: "usage",
				Message: fmt.Sprintf("is not valid for %s (a %s certificate needs %s)", ekuName(u), kind, ekuNames(kind.ExtKeyUsages())),
				Fix:     fmt.Sprintf("reissue it as a %s certificate with `etcdctl-wizard certs issue`", kind)})
		default:
			return []Problem{{File: certPath, Severity: SeverityError, Code: "wrong-ca", Message: "does not chain to " + caPath + ": " + err.Error(), Fix: "reissue it with `etcdctl-wizard certs issue`"}}
		}
	}
	return probs
}

func ekuName(u x509.ExtKeyUsage) string {
	switch u {
	case x509.ExtKeyUsageServerAuth:
		return "server auth"
	case x509.ExtKeyUsageClientAuth:
		return "client auth"
	case x509.ExtKeyUsageAny:
		return "any usage"
	}
	return fmt.Sprintf("usage %d", int(u))
}

func ekuNames(us []x509.ExtKeyUsage) string {
	names := make([]string, len(us))
	for i, u := range us {
		names[i] = ekuName(u)
	}
	return strings.Join(names, " and ")
}

// daysLeft formats the time until t in whole days ("0 days" on the last).
func daysLeft(t, now time.Time) string {
	d := int(t.Sub(now) / (24 * time.Hour))
	if d == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", d)
}

// CertInfo summarises a certificate for listings.
type CertInfo struct {
	File      string    `json:"file"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Kind      string    `json:"kind"`
	Usages    []string  `json:"usages"`
	IPs       []string  `json:"ips"`
	DNSNames  []string  `json:"dnsNames"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// DaysLeft is negative once expired by a day or more.
	DaysLeft int  `json:"daysLeft"`
	IsCA     bool `json:"isCA"`
}

func infoOf(file string, c *x509.Certificate, kind Kind, now time.Time) CertInfo {
	ci := CertInfo{
		File: file, Subject: c.Subject.CommonName, Issuer: c.Issuer.CommonName,
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), IsCA: c.IsCA,
		DNSNames: append([]string{}, c.DNSNames...), IPs: []string{}, Usages: []string{},
	}
	if kind != 0 {
		ci.Kind = kind.String()
	} else if c.IsCA {
		ci.Kind = "ca"
	}
	for _, ip := range c.IPAddresses {
		ci.IPs = append(ci.IPs, ip.String())
	}
	for _, u := range c.ExtKeyUsage {
		ci.Usages = append(ci.Usages, ekuName(u))
	}
	// Whole days, truncated toward zero: -2 for a certificate that
	// expired two and a half days ago.
	ci.DaysLeft = int(c.NotAfter.Sub(now) / (24 * time.Hour))
	return ci
}

// Inspect reads a certificate file and summarises it.
func Inspect(certPath string) (CertInfo, error) {
	cert, _, err := readCert(certPath, "certificate", "")
	if err != nil {
		return CertInfo{}, err
	}
	return infoOf(certPath, cert, kindOf(filepath.Base(certPath), cert), time.Now()), nil
}

// DirReport is the result of ScanDir.
type DirReport struct {
	Dir string `json:"dir"`
	// CA is nil when ca.crt cannot be read.
	CA    *CertInfo    `json:"ca"`
	Certs []CertReport `json:"certs"`
	// Problems of the CA and of the directory itself.
	Problems []Problem `json:"problems"`
}

// CertReport is one certificate of a directory.
type CertReport struct {
	CertInfo
	KeyFile  string    `json:"keyFile"`
	ChainOK  bool      `json:"chainOK"`
	Problems []Problem `json:"problems"`
}

// ProblemCount counts every problem in the report.
func (r *DirReport) ProblemCount() int {
	n := len(r.Problems)
	for _, c := range r.Certs {
		n += len(c.Problems)
	}
	return n
}

// ScanOptions tune ScanDir.
type ScanOptions struct {
	WarnWithin time.Duration
	Now        time.Time
}

// ScanDir checks every certificate (*.crt) in dir against dir/ca.crt, with
// the key of the same base name; a CA certificate under another name must
// be a copy of ca.crt. The kind comes from the file name as the
// wizard writes it ("<member>-peer.crt", "<member>-client.crt" for the
// client port, which etcd's guide names so) or else from the certificate's
// usages. SANs are not checked against a plan here. An error is returned
// only when dir cannot be listed.
func ScanDir(dir string, opts ScanOptions) (*DirReport, error) {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &FileError{File: dir, Code: "missing", Msg: "certificate directory does not exist", Fix: "run `etcdctl-wizard certs init --dir " + dir + "` first"}
		}
		return nil, fmt.Errorf("certificate directory: %w", err)
	}
	warn := opts.WarnWithin
	if warn == 0 {
		warn = DefaultWarnWithin
	}
	rep := &DirReport{Dir: dir, Certs: []CertReport{}, Problems: []Problem{}}
	caPath := filepath.Join(dir, CACertFile)
	ca, caProbs := checkCA(caPath, now, warn)
	rep.Problems = append(rep.Problems, caProbs...)
	if ca != nil {
		ci := infoOf(caPath, ca, 0, now)
		rep.CA = &ci
		rep.Problems = append(rep.Problems, checkCAKey(filepath.Join(dir, CAKeyFile), ca)...)
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".crt") || n == CACertFile || strings.HasPrefix(n, ".") {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		certPath := filepath.Join(dir, n)
		keyPath := filepath.Join(dir, strings.TrimSuffix(n, ".crt")+".key")
		cr := CertReport{KeyFile: keyPath, Problems: []Problem{}}
		kind := Kind(0)
		cert, _, err := readCert(certPath, "certificate", "")
		if err == nil && cert.IsCA {
			// A copy of the CA under another name (the guide's
			// ca-client.crt, ca-peer.crt): no key, must equal ca.crt.
			cr.CertInfo = infoOf(certPath, cert, 0, now)
			cr.KeyFile = ""
			cr.ChainOK = ca != nil && cert.Equal(ca)
			if ca != nil && !cr.ChainOK {
				cr.Problems = append(cr.Problems, Problem{File: certPath, Severity: SeverityError, Code: "wrong-ca",
					Message: fmt.Sprintf("is a CA certificate (%q) other than %s", cert.Subject.CommonName, caPath), Fix: "copy " + caPath + " over it"})
			}
			rep.Certs = append(rep.Certs, cr)
			continue
		}
		if err == nil {
			kind = kindOf(n, cert)
			cr.CertInfo = infoOf(certPath, cert, kind, now)
			cr.ChainOK = ca != nil
		} else {
			cr.CertInfo = CertInfo{File: certPath, Usages: []string{}, IPs: []string{}, DNSNames: []string{}}
		}
		for _, p := range Check(certPath, keyPath, caPath, CheckSpec{Kind: kind, WarnWithin: warn, Now: now}) {
			if p.File == caPath {
				continue // reported once for the directory
			}
			if p.Code == "wrong-ca" || p.Code == "usage" {
				cr.ChainOK = false
			}
			cr.Problems = append(cr.Problems, p)
		}
		rep.Certs = append(rep.Certs, cr)
	}
	return rep, nil
}

// checkCAKey judges ca.key when it is present: it is optional (a host's
// copy of the directory must not have it), but if there it must match and
// be private.
func checkCAKey(keyPath string, ca *x509.Certificate) []Problem {
	if _, err := os.Lstat(keyPath); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	key, _, err := readKey(keyPath, "CA key", "restore ca.key from a backup")
	if err != nil {
		var fe *FileError
		if errors.As(err, &fe) {
			return []Problem{{File: fe.File, Severity: SeverityError, Code: fe.Code, Message: fe.Msg, Fix: fe.Fix}}
		}
		return []Problem{{File: keyPath, Severity: SeverityError, Code: "unreadable", Message: err.Error()}}
	}
	var probs []Problem
	if !keyMatches(ca, key) {
		probs = append(probs, Problem{File: keyPath, Severity: SeverityError, Code: "key-mismatch", Message: "does not match the public key of ca.crt", Fix: "restore the matching ca.key from a backup"})
	}
	if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		probs = append(probs, Problem{File: keyPath, Severity: SeverityWarning, Code: "key-permissions", Message: fmt.Sprintf("CA key is readable by others (mode %04o)", fi.Mode().Perm()), Fix: "run chmod 600 " + keyPath})
	}
	return probs
}

// kindOf infers what a certificate in a wizard directory is for.
func kindOf(name string, c *x509.Certificate) Kind {
	base := strings.TrimSuffix(name, ".crt")
	switch {
	case strings.HasSuffix(base, "-peer"):
		return KindPeer
	case strings.HasSuffix(base, "-client"):
		// etcd's guide names the client-port certificate
		// <member>-client.crt; the wizard follows it.
		return KindServer
	case slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth):
		return KindServer
	case slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth):
		return KindClient
	}
	return 0
}
