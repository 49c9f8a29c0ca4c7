// Package discoverytoken creates and reads etcd discovery tokens (the v2
// discovery protocol of discovery.etcd.io, which an etcd-node cluster also
// serves): the wizard's side of bootstrap by discovery.
package discoverytoken

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// New asks a discovery service for a fresh token expecting size members:
// GET <service>/new?size=N answers the token's URL. A service given as a
// v2 keys folder (http://host:2379/v2/keys/discovery) is the guide's custom
// discovery service instead: New makes the token there itself, with a
// random name and its size key (the guide's `curl -X PUT
// <url>/_config/size -d value=N`). client nil uses http.DefaultClient.
func New(ctx context.Context, client *http.Client, service string, size int) (string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	base, err := url.Parse(strings.TrimSpace(service))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return "", fmt.Errorf("discovery service %q: give its URL, e.g. http://10.0.0.5:2379 or https://discovery.etcd.io", service)
	}
	if strings.Contains(base.Path, "/v2/keys/") {
		return newInKeyspace(ctx, client, base, size)
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

// newInKeyspace creates <folder>/<random token>/_config/size = size with
// prevExist=false, so an existing token is never overwritten.
func newInKeyspace(ctx context.Context, client *http.Client, folder *url.URL, size int) (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := *folder
	token.Path = strings.TrimSuffix(folder.Path, "/") + "/" + hex.EncodeToString(b)
	token.RawQuery = ""
	sizeKey := token
	sizeKey.Path += "/_config/size"
	sizeKey.RawQuery = url.Values{"prevExist": {"false"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, sizeKey.String(), strings.NewReader(url.Values{"value": {strconv.Itoa(size)}}.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("discovery service: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("discovery service %s: creating %s: %s: %s", folder.Host, sizeKey.Path, resp.Status, strings.TrimSpace(string(body)))
	}
	return token.String(), nil
}
