package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// HostKey describes a host key that is not in known_hosts yet.
type HostKey struct {
	// Name is the transport's label (SSHOptions.Name, e.g. the member name);
	// empty for jump hosts.
	Name string
	// Alias is the name the host was asked for by (plan or ~/.ssh/config).
	Alias string
	// Host is the name recorded in known_hosts: "10.0.1.10", or
	// "[10.0.1.10]:2222" for a port other than 22.
	Host string
	// Type is the key type, e.g. "ssh-ed25519".
	Type string
	// Fingerprint is "SHA256:...", as ssh-keygen -l prints it.
	Fingerprint string
}

// ConfirmFunc decides whether to trust an unknown host key. Returning false
// refuses the connection; an error aborts it with that error.
type ConfirmFunc func(HostKey) (bool, error)

// KnownHosts checks host keys against an OpenSSH known_hosts file and appends
// the keys that Confirm accepts. One KnownHosts is shared by all transports of
// a run so that concurrent connections append safely and ask once per key.
type KnownHosts struct {
	// Path is the known_hosts file; created (0600, folder 0700) when missing.
	Path string
	// Confirm is asked about unknown keys; nil refuses them.
	Confirm ConfirmFunc

	mu sync.Mutex
}

// HostKeyUnknownError is an unknown host key that was not accepted.
type HostKeyUnknownError struct {
	Key    HostKey
	Reason string
}

func (e *HostKeyUnknownError) Error() string {
	return fmt.Sprintf("host key of %s is not in known_hosts: %s %s (%s); to trust it, check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and pass --accept-host-key %s=%s",
		e.Key.Host, e.Key.Type, e.Key.Fingerprint, e.Reason, e.Key.Host, e.Key.Fingerprint)
}

// HostKeyChangedError is a host whose key differs from the one(s) recorded.
type HostKeyChangedError struct {
	Host      string
	File      string
	Known     []string // "SHA256:... (ssh-ed25519, line 3)"
	Presented string   // "SHA256:... (ssh-ed25519)"
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("HOST KEY CHANGED for %s: %s records %s, the host now presents %s. Someone may be intercepting the connection; if the host was reinstalled, verify the new fingerprint on it and remove the old entry with: ssh-keygen -R %s -f %s",
		e.Host, e.File, strings.Join(e.Known, ", "), e.Presented, e.Host, e.File)
}

// AcceptFingerprints returns a ConfirmFunc for keys pinned in advance, as
// given by `--accept-host-key HOST=SHA256:...`: a key of a pinned host is
// accepted when its fingerprint matches and refused otherwise; hosts without
// a pin are left to next (nil refuses). HOST may be the alias, the host name
// or the known_hosts form of the host.
func AcceptFingerprints(pins map[string]string, next ConfirmFunc) ConfirmFunc {
	return func(k HostKey) (bool, error) {
		for _, name := range []string{k.Name, k.Alias, k.Host, hostOnly(k.Host)} {
			if name == "" {
				continue
			}
			want, ok := pins[name]
			if !ok {
				continue
			}
			if want == k.Fingerprint {
				return true, nil
			}
			return false, fmt.Errorf("host key of %s is %s, not the accepted %s", k.Host, k.Fingerprint, want)
		}
		if next == nil {
			return false, nil
		}
		return next(k)
	}
}

// ParseAcceptHostKey splits "HOST=SHA256:..." into its host and fingerprint.
func ParseAcceptHostKey(s string) (host, fingerprint string, err error) {
	host, fingerprint, ok := strings.Cut(s, "=")
	if !ok || host == "" || !strings.HasPrefix(fingerprint, "SHA256:") || len(fingerprint) != len("SHA256:")+43 {
		return "", "", fmt.Errorf("accept-host-key %q: want HOST=SHA256:<43 base64 characters> as printed by ssh-keygen -lf", s)
	}
	return host, fingerprint, nil
}

func hostOnly(knownHost string) string {
	if h, _, err := net.SplitHostPort(knownHost); err == nil {
		return h
	}
	return knownHost
}

// callback returns the host key callback and the host key algorithms to offer
// for one connection to hostport (as dialed: "10.0.1.10:22").
func (k *KnownHosts) callback(name, alias, hostport string) (ssh.HostKeyCallback, []string, error) {
	if k == nil || k.Path == "" {
		return nil, nil, errors.New("no known_hosts file configured: host keys cannot be checked")
	}
	k.mu.Lock()
	db, err := k.load()
	k.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		return k.check(db, name, alias, hostname, remote, key)
	}
	algos := db.HostKeyAlgorithms(hostport)
	if len(algos) == 0 {
		// Unknown host: prefer the key types in OpenSSH's order, so that the
		// fingerprint shown for confirmation is the one `ssh` would show and
		// the one operators usually check (ed25519).
		algos = defaultHostKeyAlgos
	}
	return cb, algos, nil
}

func (k *KnownHosts) load() (*knownhosts.HostKeyDB, error) {
	if _, err := os.Stat(k.Path); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(k.Path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(k.Path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		f.Close()
	}
	db, err := knownhosts.NewDB(k.Path)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts %s: %w", k.Path, err)
	}
	return db, nil
}

var defaultHostKeyAlgos = []string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
	ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
}

func (k *KnownHosts) check(db *knownhosts.HostKeyDB, name, alias, hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := db.HostKeyCallback()(hostname, remote, key)
	if err == nil {
		return nil
	}
	known := knownhosts.Normalize(hostname)
	if knownhosts.IsHostKeyChanged(err) {
		return k.changed(err, known, key)
	}
	if !knownhosts.IsHostUnknown(err) {
		return err
	}
	hk := HostKey{Name: name, Alias: alias, Host: known, Type: key.Type(), Fingerprint: ssh.FingerprintSHA256(key)}
	// One question at a time: prompts of parallel connections must not
	// interleave, and a key accepted meanwhile must not be asked about again.
	k.mu.Lock()
	defer k.mu.Unlock()
	if fresh, lerr := k.load(); lerr == nil {
		if err := fresh.HostKeyCallback()(hostname, remote, key); err == nil {
			return nil
		} else if knownhosts.IsHostKeyChanged(err) {
			return k.changed(err, known, key)
		}
	}
	if k.Confirm == nil {
		return &HostKeyUnknownError{Key: hk, Reason: "no one was asked to confirm it"}
	}
	ok, cerr := k.Confirm(hk)
	if cerr != nil {
		return fmt.Errorf("host key of %s (%s): %w", known, hk.Fingerprint, cerr)
	}
	if !ok {
		return &HostKeyUnknownError{Key: hk, Reason: "not accepted"}
	}
	f, err := os.OpenFile(k.Path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("recording host key of %s: %w", known, err)
	}
	// Only the name as dialed: recording the address too would bind the key to
	// an IP that a later plan may give to another host.
	werr := knownhosts.WriteKnownHost(f, hostname, &net.TCPAddr{IP: net.IPv4zero}, key)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("recording host key of %s in %s: %w", known, k.Path, werr)
	}
	return nil
}

func (k *KnownHosts) changed(err error, known string, key ssh.PublicKey) error {
	var ke *xknownhosts.KeyError
	errors.As(err, &ke)
	e := &HostKeyChangedError{Host: known, File: k.Path,
		Presented: fmt.Sprintf("%s (%s)", ssh.FingerprintSHA256(key), key.Type())}
	for _, w := range ke.Want {
		e.Known = append(e.Known, fmt.Sprintf("%s (%s, line %d)", ssh.FingerprintSHA256(w.Key), w.Key.Type(), w.Line))
	}
	return e
}
