package config

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strings"
)

// ParseURLs parses a comma-separated URL list like etcd does: entries are
// trimmed, validated, de-duplicated and sorted by their string form.
func ParseURLs(s string) ([]url.URL, error) {
	seen := map[string]bool{}
	var out []url.URL
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		u, err := ParseURL(part)
		if err != nil {
			return nil, err
		}
		if seen[u.String()] {
			continue
		}
		seen[u.String()] = true
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// ParseURL validates one member URL with etcd's rules: a known scheme, and for
// http(s) a host:port with no path.
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "http", "https":
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return nil, fmt.Errorf("URL address does not have the form \"host:port\": %s", s)
		}
		if u.Path != "" {
			return nil, fmt.Errorf("URL must not contain a path: %s", s)
		}
	case "unix", "unixs":
	default:
		return nil, fmt.Errorf("URL scheme must be http, https, unix, or unixs: %s", s)
	}
	return u, nil
}

// URLStrings returns the string forms of urls, in order.
func URLStrings(urls []url.URL) []string {
	out := make([]string, len(urls))
	for i := range urls {
		out[i] = urls[i].String()
	}
	return out
}

// JoinURLs is the canonical comma-joined form of a URL list.
func JoinURLs(urls []url.URL) string { return strings.Join(URLStrings(urls), ",") }

// URLsMap maps member names to their peer URLs, as --initial-cluster does.
type URLsMap map[string][]url.URL

// ParseURLsMap parses an --initial-cluster value: comma-separated name=url
// items, split at the first '='; a repeated name collects several URLs.
func ParseURLsMap(s string) (URLsMap, error) {
	m := URLsMap{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, rawURL, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q is not a name=url pair", item)
		}
		u, err := ParseURL(strings.TrimSpace(rawURL))
		if err != nil {
			return nil, err
		}
		m[name] = append(m[name], *u)
	}
	for name := range m {
		urls := m[name]
		sort.Slice(urls, func(i, j int) bool { return urls[i].String() < urls[j].String() })
	}
	return m, nil
}

// Names returns the member names in sorted order.
func (m URLsMap) Names() []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// String is the canonical form: sorted name=url pairs joined by ','. Discovery
// registers exactly this string.
func (m URLsMap) String() string {
	var pairs []string
	for name, urls := range m {
		for _, u := range urls {
			pairs = append(pairs, name+"="+u.String())
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// isBindableHost reports whether a listen URL host can be bound: etcd only
// accepts IP literals and "localhost" (no domain names since 3.2).
func isBindableHost(u url.URL) bool {
	if u.Scheme == "unix" || u.Scheme == "unixs" {
		return true
	}
	host := u.Hostname()
	return host == "localhost" || net.ParseIP(host) != nil
}
