package remote

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// KeyPermissionError is a private key file that group or others may access.
type KeyPermissionError struct {
	Path string
	Mode os.FileMode
}

func (e *KeyPermissionError) Error() string {
	return fmt.Sprintf("private key %s has mode %04o: it must not be accessible by group or others; run: chmod 600 %s",
		e.Path, e.Mode.Perm(), e.Path)
}

// PassphraseFunc returns the passphrase of an encrypted private key file.
type PassphraseFunc func(keyFile string) ([]byte, error)

// authenticator supplies the public keys of one transport: the agent's first,
// then the key files. x/crypto tries each auth method name only once, so
// agent and files must share one publickey method.
type authenticator struct {
	agentSocket string
	passphrase  PassphraseFunc

	mu        sync.Mutex
	agentConn net.Conn
	files     map[string]ssh.Signer // loaded key files, kept across reconnects
}

func (a *authenticator) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.agentConn != nil {
		a.agentConn.Close()
		a.agentConn = nil
	}
}

// method returns the publickey auth method for ep. Key files are loaded (and
// their permissions checked) now, so that a bad key is reported as such
// rather than as a failed login.
func (a *authenticator) method(ep endpoint) (ssh.AuthMethod, []string, error) {
	var signers []ssh.Signer
	var tried []string
	if s := a.agentSigners(); len(s) > 0 {
		signers = append(signers, s...)
		tried = append(tried, fmt.Sprintf("ssh-agent (%d keys)", len(s)))
	}
	files := ep.keyFiles
	explicit := len(files) > 0
	if !explicit {
		home, err := os.UserHomeDir()
		if err == nil {
			for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
				files = append(files, filepath.Join(home, ".ssh", n))
			}
		}
	}
	for _, f := range files {
		s, err := a.keyFile(f)
		if errors.Is(err, os.ErrNotExist) && !explicit {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		signers = append(signers, s)
		tried = append(tried, f)
	}
	if len(signers) == 0 {
		return nil, nil, fmt.Errorf("no SSH key to log in to %s with: no ssh-agent keys and no key file (give ssh.keyFile or add one to ~/.ssh)", ep)
	}
	return ssh.PublicKeys(signers...), tried, nil
}

func (a *authenticator) agentSigners() []ssh.Signer {
	sock := a.agentSocket
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock == "" || sock == "none" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.agentConn == nil {
		c, err := net.Dial("unix", sock)
		if err != nil {
			// A stale SSH_AUTH_SOCK is common; the key files may still work.
			return nil
		}
		a.agentConn = c
	}
	s, err := agent.NewClient(a.agentConn).Signers()
	if err != nil {
		a.agentConn.Close()
		a.agentConn = nil
		return nil
	}
	return s
}

func (a *authenticator) keyFile(path string) (ssh.Signer, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.files[path]; ok {
		return s, nil
	}
	s, err := loadKeyFile(path, a.passphrase)
	if err != nil {
		return nil, err
	}
	if a.files == nil {
		a.files = map[string]ssh.Signer{}
	}
	a.files[path] = s
	return s, nil
}

// loadKeyFile reads a private key after checking its permissions, as OpenSSH
// does. An encrypted key whose public half is readable is decrypted only when
// the server accepts that public key, so no passphrase is asked for keys that
// would not be used.
func loadKeyFile(path string, passphrase PassphraseFunc) (ssh.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, &KeyPermissionError{Path: path, Mode: st.Mode()}
	}
	pem, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return s, nil
	case errors.As(err, &missing):
		if passphrase == nil {
			// Not an error yet: the agent may hold the same key and sign first.
			passphrase = func(string) ([]byte, error) {
				return nil, errors.New("the key is encrypted and there is no passphrase prompt (add it to ssh-agent)")
			}
		}
		l := &lazySigner{path: path, pem: pem, passphrase: passphrase, pub: missing.PublicKey}
		if l.pub == nil {
			if err := l.load(); err != nil {
				return nil, err
			}
			return l.signer, nil
		}
		return l, nil
	default:
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
}

// lazySigner decrypts its key on the first signature.
type lazySigner struct {
	path       string
	pem        []byte
	passphrase PassphraseFunc
	pub        ssh.PublicKey

	mu     sync.Mutex
	signer ssh.Signer
	err    error
}

func (l *lazySigner) load() error {
	if l.signer != nil || l.err != nil {
		return l.err
	}
	pass, err := l.passphrase(l.path)
	if err != nil {
		l.err = fmt.Errorf("passphrase for %s: %w", l.path, err)
		return l.err
	}
	s, err := ssh.ParsePrivateKeyWithPassphrase(l.pem, pass)
	clear(pass)
	if err != nil {
		l.err = fmt.Errorf("private key %s: %w", l.path, err)
		return l.err
	}
	l.signer = s
	l.pem = nil
	return nil
}

func (l *lazySigner) PublicKey() ssh.PublicKey { return l.pub }

func (l *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	return l.SignWithAlgorithm(rand, data, "")
}

// SignWithAlgorithm lets RSA keys sign with rsa-sha2-*: servers refuse the
// SHA-1 "ssh-rsa" signatures a plain Signer would produce.
func (l *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	l.mu.Lock()
	err := l.load()
	s := l.signer
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if as, ok := s.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	return s.Sign(rand, data)
}
