package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a configuration error with the exit status etcd uses for it:
// 2 for a malformed command line (like Go's flag package), 1 otherwise.
type Error struct {
	ExitCode int
	Err      error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ExitCode returns the exit status for err: the Error's, or 1.
func ExitCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.ExitCode
	}
	return 1
}

func fail(code int, format string, args ...any) error {
	return &Error{ExitCode: code, Err: fmt.Errorf(format, args...)}
}

// Warning is something etcd logs at start but does not stop for.
type Warning struct {
	Msg    string
	Fields map[string]string
}

// ParseResult says what else the command line asked for besides a config.
type ParseResult struct {
	Help     bool
	Version  bool
	Warnings []Warning
	// EnvUsed lists the ETCD_* variables that set a flag, for the
	// "recognized and used environment variable" log lines.
	EnvUsed []string
}

// Parse reads a member configuration like etcd (SPEC-etcd.md §1.1): command
// line first, then either the config file alone or the ETCD_* variables for
// flags the command line left unset, then defaults that depend on other
// flags. args excludes the program name; environ is os.Environ()'s form.
func Parse(prog string, args, environ []string) (*Config, *ParseResult, error) {
	c := &Config{Explicit: map[string]bool{}}
	meta := &metaFlags{}
	res := &ParseResult{}
	fs := newFlagSet(prog, c, meta)

	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			res.Help = true
			return c, res, nil
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, fail(2, "%v (see '%s --help')", err, prog)
	}
	if fs.NArg() > 0 {
		return nil, nil, fail(1, "%q is not a valid flag", fs.Arg(0))
	}
	if meta.version {
		res.Version = true
		return c, res, nil
	}
	fs.Visit(func(f *flag.Flag) { c.Explicit[f.Name] = true })

	env := envMap(environ)
	configFile := meta.configFile
	if configFile == "" {
		configFile = env["ETCD_CONFIG_FILE"]
	}
	if configFile != "" {
		// etcd: the file is the only source; flags and variables are ignored.
		fresh := &Config{Explicit: map[string]bool{}}
		fs = newFlagSet(prog, fresh, &metaFlags{})
		if err := applyConfigFile(fs, configFile); err != nil {
			return nil, nil, err
		}
		c = fresh
		fs.Visit(func(f *flag.Flag) { c.Explicit[f.Name] = true })
	} else {
		if err := applyEnv(fs, c, env, res); err != nil {
			return nil, nil, err
		}
	}
	if err := c.derive(res); err != nil {
		return nil, nil, err
	}
	return c, res, nil
}

func envMap(environ []string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			m[k] = v
		}
	}
	return m
}

// skipEnv are flags that no ETCD_* variable may set.
var skipEnv = map[string]bool{"version": true, "config-file": true}

func applyEnv(fs *flag.FlagSet, c *Config, env map[string]string, res *ParseResult) error {
	known := map[string]bool{}
	var shadowed []string
	var invalid error
	fs.VisitAll(func(f *flag.Flag) {
		key := EnvName(f.Name)
		known[key] = true
		if skipEnv[f.Name] {
			return
		}
		v, ok := env[key]
		if !ok {
			return
		}
		if c.Explicit[f.Name] {
			// Upstream calls this fatal even when the variable is empty.
			shadowed = append(shadowed, key)
			return
		}
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			if invalid == nil {
				invalid = fail(1, "invalid value %q for %s: %v", v, key, err)
			}
			return
		}
		c.Explicit[f.Name] = true
		res.EnvUsed = append(res.EnvUsed, key)
	})
	if invalid != nil {
		return invalid
	}
	if len(shadowed) > 0 {
		return fail(1, "conflicting environment variable %q is shadowed by corresponding command-line flag (either unset environment variable or disable flag)", shadowed[0])
	}
	var unknown []string
	for k := range env {
		if strings.HasPrefix(k, "ETCD_") && !known[k] && k != "ETCD_CONFIG_FILE" {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		// The value is not logged: it may be a secret.
		res.Warnings = append(res.Warnings, Warning{Msg: "unrecognized environment variable", Fields: map[string]string{"environment-variable": k}})
	}
	return nil
}

// transportSections maps the config file's nested TLS sections to flag
// prefixes.
var transportSections = map[string]string{"client-transport-security": "", "peer-transport-security": "peer-"}

// peerTLSKeys renames keys of peer-transport-security that do not simply
// take the "peer-" prefix.
var sectionKeyToFlag = map[string]string{
	"crl-file":         "crl-file",
	"allowed-cn":       "cert-allowed-cn",
	"allowed-hostname": "cert-allowed-hostname",
}

func applyConfigFile(fs *flag.FlagSet, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fail(1, "cannot read config file %s: %v", path, err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fail(1, "config file %s is not valid YAML: %v", path, err)
	}
	set := func(key, name string, v any) error {
		if v == nil {
			return nil
		}
		if fs.Lookup(name) == nil || skipEnv[name] {
			return fail(1, "config file %s: unknown key %q", path, key)
		}
		var s string
		switch x := v.(type) {
		case []any:
			parts := make([]string, len(x))
			for i := range x {
				parts[i] = fmt.Sprint(x[i])
			}
			s = strings.Join(parts, ",")
		default:
			s = fmt.Sprint(x)
		}
		if err := fs.Set(name, s); err != nil {
			return fail(1, "config file %s: invalid value %q for %s: %v", path, s, key, err)
		}
		return nil
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		prefix, isSection := transportSections[k]
		if !isSection {
			if err := set(k, k, doc[k]); err != nil {
				return err
			}
			continue
		}
		sec, ok := doc[k].(map[string]any)
		if !ok {
			if doc[k] == nil {
				continue
			}
			return fail(1, "config file %s: %s must be a mapping", path, k)
		}
		for sk, sv := range sec {
			name := sk
			if alt, ok := sectionKeyToFlag[sk]; ok {
				name = alt
			}
			if prefix == "" && sk == "crl-file" {
				name = "client-crl-file"
			}
			if prefix == "" && sk == "allowed-hostname" {
				name = "client-cert-allowed-hostname"
			}
			if prefix != "" {
				name = prefix + name
			}
			if err := set(k+"."+sk, name, sv); err != nil {
				return err
			}
		}
	}
	return nil
}

// derive applies the defaults that depend on other flags (SPEC-etcd.md §1.2).
func (c *Config) derive(res *ParseResult) error {
	if c.Proxy != "off" {
		return fail(1, "--proxy is not supported: the v2 proxy was removed in etcd 3.6; use 'gateway start' for a TCP proxy in front of the cluster")
	}
	if c.DataDir == "" {
		c.DataDir = c.Name + ".etcd"
		res.Warnings = append(res.Warnings, Warning{Msg: "'data-dir' was empty; using default", Fields: map[string]string{"data-dir": c.DataDir}})
	}
	if c.Name == DefaultName {
		res.Warnings = append(res.Warnings, Warning{Msg: "it isn't recommended to use default name, please set a value for --name. Note that etcd might run into issue when multiple members have the same default name"})
	}
	if c.IsSet("listen-client-urls") && !c.IsSet("advertise-client-urls") {
		return fail(1, "--advertise-client-urls is required when --listen-client-urls is set explicitly")
	}
	if !c.IsSet("initial-cluster") {
		switch {
		case c.UsesDiscovery():
			c.InitialCluster = ""
		case c.Name != DefaultName:
			var pairs []string
			for _, u := range c.InitialAdvertisePeerURLs {
				pairs = append(pairs, c.Name+"="+u.String())
			}
			c.InitialCluster = strings.Join(pairs, ",")
		}
	}
	return nil
}
