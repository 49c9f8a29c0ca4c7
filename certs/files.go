package certs

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File modes of what the package writes. Keys are private to the user;
// certificates are public.
const (
	DirMode  fs.FileMode = 0o700
	KeyMode  fs.FileMode = 0o600
	CertMode fs.FileMode = 0o644
)

// FileError is a problem with one file: it names the file and says what to
// do about it.
type FileError struct {
	File string
	// Code is a stable short name: missing, unreadable, not-pem, bad-cert,
	// bad-key, key-mismatch, ...
	Code string
	Msg  string
	Fix  string
	Err  error
}

func (e *FileError) Error() string {
	s := e.File + ": " + e.Msg
	if e.Fix != "" {
		s += "; " + e.Fix
	}
	return s
}

func (e *FileError) Unwrap() error { return e.Err }

// readFile reads a certificate or key file and turns the common failures
// into FileErrors with a suggestion.
func readFile(path, what, fix string) ([]byte, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		return nil, &FileError{File: path, Code: "missing", Msg: what + " does not exist", Fix: fix, Err: err}
	case errors.Is(err, fs.ErrPermission):
		return nil, &FileError{File: path, Code: "unreadable", Msg: "cannot read " + what + ": permission denied", Fix: "run as the file's owner or fix its permissions", Err: err}
	default:
		msg := "cannot read " + what + ": " + err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = "cannot read " + what + ": " + pe.Err.Error()
		}
		return nil, &FileError{File: path, Code: "unreadable", Msg: msg, Fix: fix, Err: err}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &FileError{File: path, Code: "not-pem", Msg: what + " is empty", Fix: fix}
	}
	return data, nil
}

// parseCertPEM parses the first CERTIFICATE block. Errors are plain and
// wrapped by the caller with the file name.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM certificate found")
		}
		switch {
		case block.Type == "CERTIFICATE":
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("malformed certificate: %w", err)
			}
			return cert, nil
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			return nil, errors.New("holds a private key, not a certificate (are the certificate and key files swapped?)")
		}
	}
}

// parseKeyPEM parses the first private key block: PKCS#8, SEC 1 (EC) or
// PKCS#1 (RSA).
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	rest := data
	sawCert := false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if sawCert {
				return nil, errors.New("holds a certificate, not a private key (are the certificate and key files swapped?)")
			}
			return nil, errors.New("no PEM private key found")
		}
		if block.Type == "CERTIFICATE" {
			sawCert = true
			continue
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] != "" {
			return nil, errors.New("the private key is encrypted; etcd needs an unencrypted key")
		}
		var key any
		var err error
		switch block.Type {
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		}
		if err != nil {
			return nil, fmt.Errorf("malformed private key: %w", err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported private key type %T", key)
		}
		return s, nil
	}
}

// keyMatches reports whether key is the private half of cert's public key.
func keyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// readCert reads and parses a certificate file.
func readCert(path, what, fix string) (*x509.Certificate, []byte, error) {
	data, err := readFile(path, what, fix)
	if err != nil {
		return nil, nil, err
	}
	cert, err := parseCertPEM(data)
	if err != nil {
		return nil, nil, &FileError{File: path, Code: "bad-cert", Msg: "not a usable PEM certificate: " + err.Error(), Fix: fix, Err: err}
	}
	return cert, data, nil
}

// readKey reads and parses a private key file.
func readKey(path, what, fix string) (crypto.Signer, []byte, error) {
	data, err := readFile(path, what, fix)
	if err != nil {
		return nil, nil, err
	}
	key, err := parseKeyPEM(data)
	if err != nil {
		return nil, nil, &FileError{File: path, Code: "bad-key", Msg: "not a usable PEM private key: " + err.Error(), Fix: fix, Err: err}
	}
	return key, data, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so readers never see a half-written file and a crash leaves
// either the old or the new content. With replace false an existing file is
// never overwritten: the temporary file is hard-linked into place, which
// fails if path exists (used for the CA, whose key must never be lost).
func writeFileAtomic(path string, data []byte, perm fs.FileMode, replace bool) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmp != nil {
			_ = tmp.Close()
		}
		// After a rename the temporary name is gone; after a link it is
		// a second name of the same file. Either way remove it.
		if rmErr := os.Remove(tmpName); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("write %s: %w", path, rmErr)
		}
	}()
	// Chmod rather than rely on the umask: keys must be 0600, and a
	// certificate 0644 even under a strict umask.
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		tmp = nil
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp = nil
	if replace {
		if err := os.Rename(tmpName, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return &FileError{File: path, Code: "exists", Msg: "already exists (created by another run?)", Fix: "run the command again to reuse it"}
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ensureDir creates dir with mode 0700 when it does not exist.
func ensureDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err == nil:
		if !fi.IsDir() {
			return &FileError{File: dir, Code: "not-dir", Msg: "is not a directory", Fix: "choose a directory for the certificates"}
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, DirMode); err != nil {
			return fmt.Errorf("create certificate directory: %w", err)
		}
		// MkdirAll applies the umask; make sure the final directory is
		// exactly 0700 because it holds the CA key.
		return os.Chmod(dir, DirMode)
	default:
		return fmt.Errorf("certificate directory: %w", err)
	}
}
