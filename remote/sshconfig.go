package remote

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kevinburke/ssh_config"
)

// endpoint is one SSH server to log in to, with the hops that reach it.
type endpoint struct {
	alias    string // the name asked for
	host     string // HostName
	port     int
	user     string
	keyFiles []string // IdentityFile entries, expanded
	jumps    []endpoint
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, strconv.Itoa(e.port)) }

func (e endpoint) String() string { return e.user + "@" + e.addr() }

// hops lists the connections to make, in order, ending with e itself. Only
// the first jump host's own ProxyJump is followed, as OpenSSH does for a
// ProxyJump list.
func (e endpoint) hops() []endpoint {
	var out []endpoint
	for i, j := range e.jumps {
		if i == 0 {
			out = append(out, j.hops()...)
		} else {
			j.jumps = nil
			out = append(out, j)
		}
	}
	e.jumps = nil
	return append(out, e)
}

// sshConfig is a parsed ~/.ssh/config, or nil for none.
type sshConfig struct {
	path string
	cfg  *ssh_config.Config
}

func loadSSHConfig(p string) (*sshConfig, error) {
	if p == "none" {
		return nil, nil
	}
	explicit := p != ""
	if !explicit {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, nil
		}
		p = filepath.Join(home, ".ssh", "config")
	}
	f, err := os.Open(p)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("ssh config: %w", err)
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %w", p, err)
	}
	return &sshConfig{path: p, cfg: cfg}, nil
}

func (c *sshConfig) get(alias, key string) (string, error) {
	if c == nil {
		return "", nil
	}
	v, err := c.cfg.Get(alias, key)
	if err != nil {
		return "", fmt.Errorf("ssh config %s: %s for %s: %w", c.path, key, alias, err)
	}
	return v, nil
}

func (c *sshConfig) getAll(alias, key string) ([]string, error) {
	if c == nil {
		return nil, nil
	}
	v, err := c.cfg.GetAll(alias, key)
	if err != nil {
		return nil, fmt.Errorf("ssh config %s: %s for %s: %w", c.path, key, alias, err)
	}
	return v, nil
}

// hostSpec is "[ssh://][user@]host[:port]" as in ProxyJump or a plan's jumpHost.
type hostSpec struct {
	user, host string
	port       int
}

func parseHostSpec(s string) (hostSpec, error) {
	orig := s
	s = strings.TrimPrefix(s, "ssh://")
	var h hostSpec
	if i := strings.LastIndex(s, "@"); i >= 0 {
		h.user, s = s[:i], s[i+1:]
		if h.user == "" {
			return h, fmt.Errorf("jump host %q: empty user", orig)
		}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port (or a bare IPv6 address).
		host, port = strings.Trim(s, "[]"), ""
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return h, fmt.Errorf("jump host %q: bad port %q", orig, port)
		}
		h.port = n
	}
	if host == "" || strings.ContainsAny(host, " /\t") {
		return h, fmt.Errorf("jump host %q: bad host", orig)
	}
	h.host = host
	return h, nil
}

// resolve builds the endpoint for alias from explicit settings (which win),
// then ~/.ssh/config, then defaults. jump is "" to use ProxyJump from the
// config, "none" for a direct connection, else a comma-separated list.
func resolve(cfg *sshConfig, alias string, port int, userName string, keyFiles []string, jump string, depth int) (endpoint, error) {
	if depth > 8 {
		return endpoint{}, fmt.Errorf("ssh: more than 8 nested jump hosts reaching %s (a ProxyJump loop?)", alias)
	}
	e := endpoint{alias: alias, host: alias, port: port, user: userName}
	hn, err := cfg.get(alias, "HostName")
	if err != nil {
		return e, err
	}
	if hn != "" {
		e.host = strings.ReplaceAll(strings.ReplaceAll(hn, "%h", alias), "%%", "%")
	}
	if e.port == 0 {
		p, err := cfg.get(alias, "Port")
		if err != nil {
			return e, err
		}
		if p != "" {
			if e.port, err = strconv.Atoi(p); err != nil || e.port < 1 || e.port > 65535 {
				return e, fmt.Errorf("ssh config %s: Port %q for %s is not a port", cfg.path, p, alias)
			}
		}
	}
	if e.port == 0 {
		e.port = 22
	}
	if e.user == "" {
		if e.user, err = cfg.get(alias, "User"); err != nil {
			return e, err
		}
	}
	if e.user == "" {
		u, err := user.Current()
		if err != nil {
			return e, fmt.Errorf("ssh %s: no user given and the local user is unknown: %w", alias, err)
		}
		e.user = u.Username
	}
	e.keyFiles = append(e.keyFiles, keyFiles...)
	ids, err := cfg.getAll(alias, "IdentityFile")
	if err != nil {
		return e, err
	}
	for _, id := range ids {
		if id == "none" {
			continue
		}
		e.keyFiles = append(e.keyFiles, expandTokens(id, e))
	}
	if jump == "" {
		if jump, err = cfg.get(alias, "ProxyJump"); err != nil {
			return e, err
		}
	}
	if jump == "" || jump == "none" {
		return e, nil
	}
	for _, spec := range strings.Split(jump, ",") {
		hs, err := parseHostSpec(strings.TrimSpace(spec))
		if err != nil {
			return e, err
		}
		// The keys given for the target serve its jump hosts too, as one
		// plan-level key usually opens the bastion and the members alike.
		j, err := resolve(cfg, hs.host, hs.port, hs.user, keyFiles, "", depth+1)
		if err != nil {
			return e, err
		}
		e.jumps = append(e.jumps, j)
	}
	return e, nil
}

// expandTokens expands ~ and the tokens OpenSSH allows in IdentityFile.
func expandTokens(s string, e endpoint) string {
	home, _ := os.UserHomeDir()
	if s == "~" || strings.HasPrefix(s, "~/") {
		s = home + s[1:]
	}
	local := ""
	if u, err := user.Current(); err == nil {
		local = u.Username
	}
	r := strings.NewReplacer("%%", "%", "%d", home, "%h", e.host, "%p", strconv.Itoa(e.port),
		"%r", e.user, "%u", local, "%n", e.alias)
	return r.Replace(s)
}
