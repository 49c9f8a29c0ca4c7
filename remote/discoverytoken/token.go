// Package discoverytoken creates and reads etcd discovery tokens (the v2
// discovery protocol of discovery.etcd.io, which an etcd-node cluster also
// serves): the wizard's side of bootstrap by discovery.
package discoverytoken

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// New asks a discovery service for a fresh token expecting size members:
// GET <service>/new?size=N answers the token's URL. client nil uses
// http.DefaultClient.
func New(ctx context.Context, client *http.Client, service string, size int) (string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	base, err := url.Parse(strings.TrimSpace(service))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", fmt.Errorf("discovery service %q: give its URL, e.g. http://10.0.0.5:2379 or https://discovery.etcd.io", service)
	}
	base.Path = strings.TrimSuffix(strings.TrimSuffix(base.Path, "/"), "/new") + "/new"
	base.RawQuery = url.Values{"size": {strconv.Itoa(size)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String(), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery service: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("discovery service: %w", err)
	}
	text := strings.TrimSpace(string(body))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("discovery service %s: %s: %s", base.Host, resp.Status, text)
	}
	if u, err := url.Parse(text); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("discovery service %s answered %q, not a discovery URL", base.Host, text)
	}
	return text, nil
}
