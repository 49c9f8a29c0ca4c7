package peer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Errors of FetchMembers, worded as etcd words them (the caller adds
// "cannot fetch cluster info from peer urls: ").
var (
	ErrNoClusterInfo = errors.New("could not retrieve cluster information from the given URLs")
	ErrNoMembers     = errors.New("failed to get raft cluster member(s) from the given URLs")
)

// FetchError is returned when no peer URL answered; its text is exactly
// ErrNoClusterInfo's and Causes tells what each URL did.
type FetchError struct {
	Causes []error
}

func (e *FetchError) Error() string { return ErrNoClusterInfo.Error() }

// Is makes errors.Is(err, ErrNoClusterInfo) hold.
func (e *FetchError) Is(target error) bool { return target == ErrNoClusterInfo }

// Unwrap exposes the per-URL failures.
func (e *FetchError) Unwrap() []error { return e.Causes }

// defaultTimeout is etcd's per-URL budget when a joining member asks for
// the cluster.
const defaultTimeout = 10 * time.Second

// FetchMembers asks the peer URLs, sorted, for GET /members; the first
// answer that parses wins. client.Timeout (10s when client is nil) is the
// per-URL budget.
func FetchMembers(ctx context.Context, client *http.Client, peerURLs []string) (uint64, []MemberInfo, error) {
	urls := slices.Clone(peerURLs)
	slices.Sort(urls)
	fe := &FetchError{}
	for _, u := range urls {
		var members []MemberInfo
		cid, err := get(ctx, client, u, "members", &members)
		if err != nil {
			fe.Causes = append(fe.Causes, fmt.Errorf("%s: %w", u, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if len(members) == 0 {
			return cid, nil, ErrNoMembers
		}
		return cid, members, nil
	}
	return 0, nil, fe
}

// ProbeClusterID returns the cluster ID that the member at peerURL serves
// (the X-Etcd-Cluster-ID header of GET /members).
func ProbeClusterID(ctx context.Context, client *http.Client, peerURL string) (uint64, error) {
	return get(ctx, client, peerURL, "members", nil)
}

// FetchVersion returns the GET /version answer of the member at peerURL.
func FetchVersion(ctx context.Context, client *http.Client, peerURL string) (Versions, error) {
	var v Versions
	_, err := get(ctx, client, peerURL, "version", &v)
	return v, err
}

// get fetches base/path, decodes the JSON body into out (when not nil) and
// returns the cluster ID header (0 when the path does not send one).
func get(ctx context.Context, client *http.Client, base, path string, out any) (uint64, error) {
	if client == nil {
		client = &http.Client{Timeout: defaultTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	}
	req, err := newRequest(ctx, http.MethodGet, base, nil, path)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		return 0, fmt.Errorf("GET /%s answered %s: %s", path, resp.Status, strings.TrimSpace(string(b)))
	}
	var cid uint64
	if path == "members" {
		if cid, err = strconv.ParseUint(resp.Header.Get(HeaderClusterID), 16, 64); err != nil {
			return 0, fmt.Errorf("GET /members answered a bad %s header %q", HeaderClusterID, resp.Header.Get(HeaderClusterID))
		}
	}
	if out != nil {
		if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(out); err != nil {
			return 0, fmt.Errorf("cannot parse GET /%s answer: %w", path, err)
		}
	}
	return cid, nil
}

// newRequest builds a request for the peer port at peerURL (an http or
// https URL with a host), to the path made of elems.
func newRequest(ctx context.Context, method, peerURL string, body io.Reader, elems ...string) (*http.Request, error) {
	u, err := url.Parse(peerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid peer URL %q", peerURL)
	}
	return http.NewRequestWithContext(ctx, method, u.JoinPath(elems...).String(), body)
}

// newForwardRequest is newRequest for a request one member forwards to
// another (the leader): it carries the sender's identity, as raft traffic
// does, so the receiver can refuse another cluster's member.
func newForwardRequest(ctx context.Context, peerURL string, clusterID, from uint64, body io.Reader, elems ...string) (*http.Request, error) {
	req, err := newRequest(ctx, http.MethodPost, peerURL, body, elems...)
	if err != nil {
		return nil, err
	}
	req.Header.Set(HeaderClusterID, idString(clusterID))
	req.Header.Set(HeaderFrom, idString(from))
	return req, nil
}
