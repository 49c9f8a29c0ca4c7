package plan

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"etcdctl-wizard/node/config"
)

// ImportSource is one input to Import: a shell snippet holding etcd command
// lines, or an ETCD_* environment file.
type ImportSource struct {
	Name string // file name, for messages
	Data []byte
}

// ImportResult is the plan built from existing configurations, with notes
// about what the importer could not infer.
type ImportResult struct {
	Plan  *Plan
	Notes []string
}

// importedMember is one etcd configuration read from an input.
type importedMember struct {
	origin string            // file:line
	flags  map[string]string // flag name -> value as written
	order  []string          // flag names in the order given
}

// get returns the value the member runs with: as written, or etcd's default.
func (im *importedMember) get(name string) string {
	if v, ok := im.flags[name]; ok {
		return v
	}
	return etcdDefault(name, im.flags)
}

// etcdDefault is the value etcd uses for a flag that is not given (SPEC-etcd.md
// §1.2), for the flags a plan renders.
func etcdDefault(name string, given map[string]string) string {
	switch name {
	case "name":
		return config.DefaultName
	case "listen-peer-urls":
		return config.DefaultListenPeerURLs
	case "listen-client-urls":
		return config.DefaultListenClientURLs
	case "initial-advertise-peer-urls":
		return config.DefaultAdvertisePeerURLs
	case "advertise-client-urls":
		return config.DefaultAdvertiseClientURLs
	case "initial-cluster-token":
		return config.DefaultInitialClusterToken
	case "initial-cluster-state":
		return "new"
	case "initial-cluster":
		for _, d := range []string{"discovery", "discovery-srv", "discovery-srv-name", "discovery-endpoints"} {
			if given[d] != "" {
				return ""
			}
		}
		self := given["name"]
		if self == "" || self == config.DefaultName {
			return config.DefaultName + "=" + config.DefaultAdvertisePeerURLs
		}
		adv := given["initial-advertise-peer-urls"]
		if adv == "" {
			adv = config.DefaultAdvertisePeerURLs
		}
		var pairs []string
		for _, u := range strings.Split(adv, ",") {
			pairs = append(pairs, self+"="+strings.TrimSpace(u))
		}
		return strings.Join(pairs, ",")
	}
	if isBoolFlag(name) {
		switch name {
		case "strict-reconfig-check", "pre-vote", "discovery-insecure-transport":
			return "true"
		}
		return "false"
	}
	return ""
}

// Import reads existing etcd command lines or ETCD_* files and builds a plan
// whose rendering gives the same configuration: what fits the plan's model
// becomes plan fields, the rest stays as per-member flag overrides, so that
// validation can judge it.
func Import(sources []ImportSource) (*ImportResult, error) {
	var members []*importedMember
	res := &ImportResult{}
	for _, src := range sources {
		ms, notes, err := parseSource(src)
		if err != nil {
			return nil, err
		}
		members = append(members, ms...)
		res.Notes = append(res.Notes, notes...)
	}
	if len(members) == 0 {
		return nil, fmt.Errorf("no etcd command line or ETCD_* variable found in the input: give 'etcd --name ...' commands (with or without '$ ' prompts) or ETCD_* environment files")
	}
	p, notes := buildImportedPlan(members)
	res.Plan = p
	res.Notes = append(res.Notes, notes...)
	return res, nil
}

func parseSource(src ImportSource) ([]*importedMember, []string, error) {
	text := strings.ReplaceAll(string(src.Data), "\r\n", "\n")
	if looksLikeEnvFile(text) {
		m, err := parseEnvFile(src.Name, text)
		if err != nil {
			return nil, nil, err
		}
		return []*importedMember{m}, nil, nil
	}
	cmds, err := splitCommands(text)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	var out []*importedMember
	var notes []string
	for _, c := range cmds {
		origin := fmt.Sprintf("%s:%d", src.Name, c.line)
		if len(c.words) == 0 {
			continue
		}
		prog := path.Base(c.words[0])
		if !strings.Contains(prog, "etcd") || strings.Contains(prog, "etcdctl") {
			notes = append(notes, fmt.Sprintf("%s: skipped %q: not an etcd command", origin, prog))
			continue
		}
		m, err := parseFlags(origin, c.words[1:])
		if err != nil {
			return nil, nil, err
		}
		out = append(out, m)
	}
	return out, notes, nil
}

func looksLikeEnvFile(text string) bool {
	sawEnv := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, _, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(k, "ETCD_") || strings.ContainsAny(k, " \t") {
			return false
		}
		sawEnv = true
	}
	return sawEnv
}

// parseEnvFile reads KEY=value lines (optionally quoted, optionally with
// "export"), as systemd's EnvironmentFile and sh both accept.
func parseEnvFile(name, text string) (*importedMember, error) {
	m := &importedMember{origin: name, flags: map[string]string{}}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, _ := strings.Cut(line, "=")
		words, err := shellWords(v)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", name, i+1, k, err)
		}
		if len(words) > 1 {
			return nil, fmt.Errorf("%s:%d: %s: the value has unquoted spaces; quote it", name, i+1, k)
		}
		val := ""
		if len(words) == 1 {
			val = words[0]
		}
		flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "ETCD_"), "_", "-"))
		if _, dup := m.flags[flag]; !dup {
			m.order = append(m.order, flag)
		}
		m.flags[flag] = val
	}
	return m, nil
}

// parseFlags reads etcd flags: --flag value, --flag=value, -flag, and bare
// booleans, like Go's flag package.
func parseFlags(origin string, args []string) (*importedMember, error) {
	m := &importedMember{origin: origin, flags: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return nil, fmt.Errorf("%s: unexpected argument %q: etcd takes only flags", origin, a)
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "" {
			return nil, fmt.Errorf("%s: malformed flag %q", origin, a)
		}
		if !hasVal {
			if isBoolFlag(name) {
				val = "true"
			} else {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("%s: flag --%s needs a value", origin, name)
				}
				i++
				val = args[i]
			}
		}
		if _, dup := m.flags[name]; !dup {
			m.order = append(m.order, name)
		}
		m.flags[name] = val
	}
	return m, nil
}

type command struct {
	line  int
	words []string
}

// splitCommands finds the command lines in a shell snippet. With '$ '
// prompts (as in the guide), only prompted lines and their continuations are
// commands and everything else is output; without prompts every line is.
func splitCommands(text string) ([]command, error) {
	lines := strings.Split(text, "\n")
	prompted := false
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "$ ") {
			prompted = true
			break
		}
	}
	var cmds []command
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if prompted {
			if !strings.HasPrefix(l, "$ ") {
				continue
			}
			l = strings.TrimSpace(strings.TrimPrefix(l, "$ "))
		}
		start := i + 1
		var b strings.Builder
		for {
			cont := strings.HasSuffix(l, "\\") && !strings.HasSuffix(l, "\\\\")
			b.WriteString(strings.TrimSuffix(l, "\\"))
			b.WriteString(" ")
			if !cont || i+1 >= len(lines) {
				break
			}
			i++
			l = strings.TrimSpace(lines[i])
		}
		words, err := shellWords(b.String())
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", start, err)
		}
		cmds = append(cmds, command{line: start, words: words})
	}
	return cmds, nil
}

// shellWords splits a line into words with POSIX quoting: single quotes,
// double quotes with backslash escapes, and backslash outside quotes. It
// expands nothing.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote")
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// majority returns the most frequent value, the first seen on a tie.
func majority(values []string) string {
	count := map[string]int{}
	for _, v := range values {
		count[v]++
	}
	best, bestN := "", 0
	for _, v := range values {
		if count[v] > bestN {
			best, bestN = v, count[v]
		}
	}
	return best
}

func firstURL(list string) *url.URL {
	for _, s := range strings.Split(list, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.Host != "" {
			return u
		}
	}
	return nil
}

func urlHosts(list string) []string {
	var hosts []string
	for _, s := range strings.Split(list, ",") {
		if u, err := url.Parse(strings.TrimSpace(s)); err == nil && u.Host != "" {
			hosts = append(hosts, u.Hostname())
		}
	}
	return hosts
}

func urlPort(list string) int {
	if u := firstURL(list); u != nil {
		if n, err := strconv.Atoi(u.Port()); err == nil {
			return n
		}
	}
	return 0
}

// inferIP finds the member's own address in its URLs.
func inferIP(im *importedMember) string {
	for _, flag := range []string{"listen-peer-urls", "initial-advertise-peer-urls", "advertise-client-urls", "listen-client-urls"} {
		for _, h := range urlHosts(im.get(flag)) {
			if ip := net.ParseIP(h); ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() {
				return h
			}
		}
	}
	return ""
}

func listenModeOf(im *importedMember, ip string) string {
	hosts := urlHosts(im.get("listen-client-urls"))
	switch {
	case len(hosts) == 1 && hosts[0] == "0.0.0.0":
		return ListenAny
	case len(hosts) == 1 && hosts[0] == ip:
		return ListenIP
	default:
		return ListenIPAndLoopback
	}
}

func tlsModeOf(im *importedMember) string {
	switch {
	case im.flags["cert-file"] != "" || im.flags["peer-cert-file"] != "":
		return TLSSelfSigned
	case im.get("auto-tls") == "true" || im.get("peer-auto-tls") == "true":
		return TLSAuto
	}
	return TLSNone
}

func modeOf(im *importedMember) string {
	switch {
	case im.flags["discovery"] != "":
		return ModeDiscovery
	case im.flags["discovery-srv"] != "":
		return ModeDNSSRV
	}
	return ModeStatic
}

// buildImportedPlan infers the plan-wide settings by majority, then keeps
// each member's differences from the plan's rendering as flag overrides.
func buildImportedPlan(members []*importedMember) (*Plan, []string) {
	var notes []string
	collect := func(f func(*importedMember) string) []string {
		out := make([]string, len(members))
		for i, m := range members {
			out[i] = f(m)
		}
		return out
	}
	p := &Plan{APIVersion: APIVersion, Kind: KindCluster}
	s := &p.Spec
	s.Bootstrap.Mode = majority(collect(modeOf))
	s.TLS.Mode = majority(collect(tlsModeOf))
	ips := collect(inferIP)
	switch s.Bootstrap.Mode {
	case ModeDiscovery:
		s.Bootstrap.Discovery.URL = majority(collect(func(m *importedMember) string { return m.flags["discovery"] }))
		s.Bootstrap.Discovery.Proxy = majority(collect(func(m *importedMember) string { return m.flags["discovery-proxy"] }))
		s.Bootstrap.Discovery.Size = len(members)
		p.Metadata.Name = config.DefaultInitialClusterToken
	default:
		p.Metadata.Name = majority(collect(func(m *importedMember) string { return m.get("initial-cluster-token") }))
	}
	if s.Bootstrap.Mode == ModeDNSSRV {
		s.Bootstrap.DNSSRV.Domain = majority(collect(func(m *importedMember) string { return m.flags["discovery-srv"] }))
		s.Bootstrap.DNSSRV.ServiceName = majority(collect(func(m *importedMember) string { return m.flags["discovery-srv-name"] }))
		s.Bootstrap.DNSSRV.Advertise = majority(collect(func(m *importedMember) string {
			if u := firstURL(m.get("initial-advertise-peer-urls")); u != nil && net.ParseIP(u.Hostname()) == nil && u.Hostname() != "localhost" {
				return AdvertiseHostnames
			}
			return AdvertiseIPs
		}))
	}
	dataDir := majority(collect(func(m *importedMember) string { return m.flags["data-dir"] }))
	s.Node.DataDir = &dataDir
	s.Node.PeerPort = atoiOr(majority(collect(func(m *importedMember) string {
		return strconv.Itoa(urlPort(m.get("initial-advertise-peer-urls")))
	})), DefaultPeerPort)
	s.Node.ClientPort = atoiOr(majority(collect(func(m *importedMember) string {
		return strconv.Itoa(urlPort(m.get("advertise-client-urls")))
	})), DefaultClientPort)
	listen := make([]string, len(members))
	for i, m := range members {
		listen[i] = listenModeOf(m, ips[i])
	}
	if l := majority(listen); l != ListenIPAndLoopback {
		s.Node.Listen = l
	}
	if s.TLS.Mode == TLSSelfSigned {
		s.TLS.Files = inferTLSFiles(members)
	}
	for i, im := range members {
		m := Member{Name: im.get("name"), IP: ips[i]}
		if u := firstURL(im.get("initial-advertise-peer-urls")); u != nil && net.ParseIP(u.Hostname()) == nil && u.Hostname() != "localhost" {
			m.Hostname = u.Hostname()
		}
		if port := urlPort(im.get("initial-advertise-peer-urls")); port != 0 && port != s.Node.PeerPort {
			m.PeerPort = port
		}
		if port := urlPort(im.get("advertise-client-urls")); port != 0 && port != s.Node.ClientPort {
			m.ClientPort = port
		}
		if m.IP == "" {
			notes = append(notes, fmt.Sprintf("%s: %s: no IP address in its URLs (host names, 0.0.0.0 or localhost); set spec.members[%d].ip", im.origin, m.Name, i))
		}
		s.Members = append(s.Members, m)
	}
	// Overrides are computed against the final plan, so that each member
	// renders exactly the configuration it was imported from.
	q := p.WithDefaults()
	// Default ports need not be written; q already holds them.
	if s.Node.PeerPort == DefaultPeerPort {
		s.Node.PeerPort = 0
	}
	if s.Node.ClientPort == DefaultClientPort {
		s.Node.ClientPort = 0
	}
	for i, im := range members {
		mc := q.memberConfig(i)
		overrides := diffFlags(&mc, im)
		if len(overrides) > 0 {
			s.Members[i].Flags = overrides
			q.Spec.Members[i].Flags = overrides
		}
	}
	return p, notes
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil && n != 0 {
		return n
	}
	return def
}

// inferTLSFiles turns per-member certificate paths into "{name}" templates
// when every member follows the same pattern.
func inferTLSFiles(members []*importedMember) TLSFiles {
	pick := func(flag string) string {
		tpl := ""
		for i, m := range members {
			v := m.flags[flag]
			if v == "" {
				return ""
			}
			if name := m.get("name"); name != "" {
				v = strings.ReplaceAll(v, name, "{name}")
			}
			if i > 0 && v != tpl {
				return ""
			}
			tpl = v
		}
		return tpl
	}
	f := TLSFiles{
		TrustedCA: pick("trusted-ca-file"), Cert: pick("cert-file"), Key: pick("key-file"),
		PeerTrustedCA: pick("peer-trusted-ca-file"), PeerCert: pick("peer-cert-file"), PeerKey: pick("peer-key-file"),
	}
	// Defaults need not be written out.
	d := DefaultTLSFiles
	for _, x := range []struct {
		v   *string
		def string
	}{
		{&f.TrustedCA, d.TrustedCA}, {&f.Cert, d.Cert}, {&f.Key, d.Key},
		{&f.PeerTrustedCA, d.PeerTrustedCA}, {&f.PeerCert, d.PeerCert}, {&f.PeerKey, d.PeerKey},
	} {
		if *x.v == x.def {
			*x.v = ""
		}
	}
	return f
}

// diffFlags returns the overrides that make mc render im's configuration.
func diffFlags(mc *MemberConfig, im *importedMember) map[string]string {
	rendered := map[string]string{}
	for _, f := range mc.Flags {
		rendered[f.Name] = f.Value
	}
	names := map[string]bool{}
	for n := range rendered {
		names[n] = true
	}
	for n := range im.flags {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	out := map[string]string{}
	for _, n := range sorted {
		have, ok := rendered[n]
		if !ok {
			have = etcdDefault(n, rendered)
		}
		want := im.get(n)
		if !sameValue(n, have, want) {
			out[n] = want
		}
	}
	return out
}

// sameValue compares flag values the way etcd reads them: URL lists as sets,
// --initial-cluster as a map, booleans by truth.
func sameValue(flag, a, b string) bool {
	if a == b {
		return true
	}
	if isBoolFlag(flag) {
		x, errA := strconv.ParseBool(a)
		y, errB := strconv.ParseBool(b)
		return errA == nil && errB == nil && x == y
	}
	if flag == "initial-cluster" {
		x, errA := config.ParseURLsMap(a)
		y, errB := config.ParseURLsMap(b)
		return errA == nil && errB == nil && x.String() == y.String()
	}
	if strings.HasSuffix(flag, "-urls") {
		x, errA := config.ParseURLs(a)
		y, errB := config.ParseURLs(b)
		return errA == nil && errB == nil && config.JoinURLs(x) == config.JoinURLs(y)
	}
	return false
}
