package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"etcdctl-wizard/node/config"
)

// V2 configures a v2 discovery join (--discovery).
type V2 struct {
	URL   string // the discovery URL
	Proxy string // --discovery-proxy
	ID    uint64 // this member's ID, computed with token = URL
	// Value is what this member registers: its name=peer-url pairs
	// (InitialPeerURLsMap.String()).
	Value  string
	Logger *zap.Logger
	// RetryBase is the backoff unit: retry n sleeps RetryBase*2^min(n,8).
	// Default 1s, as etcd.
	RetryBase time.Duration
	// RequestTimeout bounds each non-wait request; default 5s.
	RequestTimeout time.Duration
	// Client replaces the HTTP client (tests); Proxy is then ignored.
	Client *http.Client
}

// v2 wire types, with the v2 API's exact (case-sensitive) names.
type v2Node struct {
	Key           string    `json:"key"`
	Value         string    `json:"value"`
	Dir           bool      `json:"dir"`
	Nodes         []*v2Node `json:"nodes"`
	CreatedIndex  uint64    `json:"createdIndex"`
	ModifiedIndex uint64    `json:"modifiedIndex"`
}

type v2Response struct {
	Action string  `json:"action"`
	Node   *v2Node `json:"node"`
	index  uint64  // X-Etcd-Index
}

// v2Error is an error answer of the keys API.
type v2Error struct {
	Code    int    `json:"errorCode"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
	Index   uint64 `json:"index"`
}

func (e *v2Error) Error() string {
	return fmt.Sprintf("%d: %s (%s) [%d]", e.Code, e.Message, e.Cause, e.Index)
}

// clusterError is a failure worth retrying: no answer, or a 5xx.
type clusterError struct{ err error }

func (e *clusterError) Error() string { return e.err.Error() }
func (e *clusterError) Unwrap() error { return e.err }

var errEmptyBody = errors.New("discovery: empty body")

type v2Client struct {
	cfg     V2
	hc      *http.Client
	base    url.URL // scheme://host of the discovery URL
	cluster string  // the discovery URL's path
	retries uint
	lg      *zap.Logger
}

// NewV2Transport is etcd's transport for the discovery service: 30 s dial,
// 10 s TLS handshake, system roots, and the proxy only when one is given
// (HTTP_PROXY variables are ignored).
func NewV2Transport(proxy string) (*http.Transport, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if proxy != "" {
		u, err := parseProxy(proxy)
		if err != nil {
			return nil, err
		}
		tr.Proxy = http.ProxyURL(u)
	}
	return tr, nil
}

func parseProxy(p string) (*url.URL, error) {
	u, err := url.Parse(p)
	if err != nil || !strings.HasPrefix(u.Scheme, "http") {
		// Like etcd: a value without an http(s) scheme gets http:// in
		// front; the original error is reported if that does not parse.
		if u2, err2 := url.Parse("http://" + p); err2 == nil {
			u, err = u2, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("invalid proxy address %q: %v", p, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid proxy address %q: no host", p)
	}
	return u, nil
}

// JoinV2 runs the v2 discovery protocol (SPEC-etcd.md §3.2) and returns the
// initial cluster string. Errors other than a missing size key come wrapped
// in a JoinError.
func JoinV2(ctx context.Context, cfg V2) (string, error) {
	c, err := newV2Client(cfg)
	if err != nil {
		return "", err
	}
	s, err := c.join(ctx)
	if err != nil {
		var snf *SizeNotFoundError
		if errors.As(err, &snf) {
			return "", err
		}
		return "", &JoinError{Err: err}
	}
	return s, nil
}

func newV2Client(cfg V2) (*v2Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid discovery URL %q: must be http(s)://host[:port]/path", cfg.URL)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = time.Second
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	hc := cfg.Client
	if hc == nil {
		tr, err := NewV2Transport(cfg.Proxy)
		if err != nil {
			return nil, err
		}
		hc = &http.Client{Transport: tr}
	}
	return &v2Client{
		cfg: cfg, hc: hc, lg: cfg.Logger,
		base:    url.URL{Scheme: u.Scheme, Host: u.Host, User: u.User},
		cluster: strings.TrimSuffix(u.Path, "/"),
	}, nil
}

func (c *v2Client) selfKey() string { return c.cluster + "/" + config.IDString(c.cfg.ID) }

func (c *v2Client) join(ctx context.Context) (string, error) {
	// Fast path: refuse a full cluster, a bad token or garbage before this
	// member registers, so a failure leaves nothing behind.
	nodes, size, _, err := c.checkCluster(ctx)
	if err != nil {
		return "", err
	}
	if err := c.precheck(nodes, size); err != nil {
		return "", err
	}
	created, err := c.createSelf(ctx)
	if err != nil {
		return "", err
	}
	str, err := c.afterRegistered(ctx)
	if err != nil && (errors.Is(err, ErrInvalidURL) || errors.Is(err, ErrDuplicateName)) {
		// No member can bootstrap from this token's registrations: take
		// this member's back, so the token is not left half used by it.
		c.deleteSelf(created)
	}
	return str, err
}

func (c *v2Client) afterRegistered(ctx context.Context) (string, error) {
	nodes, size, index, err := c.checkCluster(ctx)
	if err != nil {
		return "", err
	}
	all, err := c.waitNodes(ctx, nodes, size, index)
	if err != nil {
		return "", err
	}
	return nodesToCluster(all, size)
}

// precheck refuses what would fail anyway once every member registered:
// an entry among the first size that is not a name=url list, or one that
// already uses this member's name.
func (c *v2Client) precheck(nodes []*v2Node, size int) error {
	self, err := config.ParseURLsMap(c.cfg.Value)
	if err != nil {
		return err
	}
	selfID := path.Base(c.selfKey())
	for i, n := range nodes {
		if i >= size {
			break
		}
		if path.Base(n.Key) == selfID {
			continue
		}
		m, err := config.ParseURLsMap(n.Value)
		if err != nil || len(m) == 0 {
			detail := "not a name=url list"
			if err != nil {
				detail = err.Error()
			}
			return fmt.Errorf("%w: registration %s has %q: %s", ErrInvalidURL, n.Key, n.Value, detail)
		}
		for name := range m {
			if _, dup := self[name]; dup {
				return fmt.Errorf("%w: %q is already registered as %s", ErrDuplicateName, name, n.Key)
			}
		}
	}
	return nil
}

func (c *v2Client) endpoint(key string, q url.Values) string {
	u := c.base
	u.Path = key
	u.RawQuery = q.Encode()
	return u.String()
}

// do sends one request and decodes the answer.
func (c *v2Client) do(ctx context.Context, method, key string, q url.Values, body url.Values) (*v2Response, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(body.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(key, q), rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			return nil, ctx.Err()
		}
		return nil, &clusterError{err: fmt.Errorf("client: etcd cluster is unavailable or misconfigured; error #0: %v", err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, &clusterError{err: fmt.Errorf("client: reading the answer of %s: %v", c.base.Host, err)}
	}
	switch {
	case resp.StatusCode == http.StatusInternalServerError || resp.StatusCode == http.StatusServiceUnavailable:
		return nil, &clusterError{err: fmt.Errorf("client: etcd member %s has no leader", c.base.String())}
	case resp.StatusCode >= 500:
		return nil, &clusterError{err: fmt.Errorf("client: etcd member %s returns server error [%s]", c.base.String(), http.StatusText(resp.StatusCode))}
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		if len(strings.TrimSpace(string(data))) == 0 {
			return nil, errEmptyBody
		}
		var r v2Response
		if err := json.Unmarshal(data, &r); err != nil || r.Node == nil {
			return nil, fmt.Errorf("%w (answer to %s %s is not a v2 keys response: %s)", ErrBadDiscoveryEndpoint, method, key, snippet(data))
		}
		r.index, _ = strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
		return &r, nil
	}
	var e v2Error
	if err := json.Unmarshal(data, &e); err != nil || e.Code == 0 {
		return nil, fmt.Errorf("%w (%s %s answered %d: %s)", ErrBadDiscoveryEndpoint, method, key, resp.StatusCode, snippet(data))
	}
	return nil, &e
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strconv.Quote(s)
}

func (c *v2Client) get(ctx context.Context, key string) (*v2Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()
	q := url.Values{"quorum": {"false"}, "recursive": {"false"}, "sorted": {"false"}}
	r, err := c.do(ctx, http.MethodGet, key, q, nil)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		err = &clusterError{err: fmt.Errorf("client: %s did not answer within %v", c.base.Host, c.cfg.RequestTimeout)}
	}
	return r, err
}

// backoff sleeps before a retry: 2^min(retries,8) units.
func (c *v2Client) backoff(ctx context.Context, reason string, err error) error {
	if c.retries >= math.MaxUint32 {
		return err
	}
	c.retries++
	d := c.cfg.RetryBase * time.Duration(1<<min(c.retries, 8))
	c.lg.Info("retry connecting to discovery service", zap.String("url", c.cfg.URL), zap.String("reason", reason),
		zap.Duration("backoff", d), zap.Error(err))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func retryable(err error) bool {
	var ce *clusterError
	return errors.As(err, &ce)
}

// checkCluster reads the size and the registrations (§3.2 step 1).
func (c *v2Client) checkCluster(ctx context.Context) (nodes []*v2Node, size int, index uint64, err error) {
	for {
		nodes, size, index, err = c.checkClusterOnce(ctx)
		if err == nil || errors.Is(err, ErrFullCluster) || !retryable(err) {
			return nodes, size, index, err
		}
		if berr := c.backoff(ctx, "cluster status check", err); berr != nil {
			return nil, 0, 0, berr
		}
	}
}

func (c *v2Client) checkClusterOnce(ctx context.Context) ([]*v2Node, int, uint64, error) {
	r, err := c.get(ctx, c.cluster+"/_config/size")
	if err != nil {
		var e *v2Error
		if errors.As(err, &e) && e.Code == 100 {
			return nil, 0, 0, &SizeNotFoundError{URL: c.cfg.URL}
		}
		return nil, 0, 0, err
	}
	size, err := strconv.ParseUint(r.Node.Value, 10, 0)
	if err != nil || size == 0 {
		return nil, 0, 0, fmt.Errorf("%w (%s/_config/size is %q)", ErrBadSizeKey, c.cfg.URL, r.Node.Value)
	}
	r, err = c.get(ctx, c.cluster)
	if err != nil {
		return nil, 0, 0, err
	}
	var nodes []*v2Node
	for _, n := range r.Node.Nodes {
		if path.Base(n.Key) != "_config" {
			nodes = append(nodes, n)
		}
	}
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].CreatedIndex < nodes[j].CreatedIndex })
	self := path.Base(c.selfKey())
	for i, n := range nodes {
		if path.Base(n.Key) == self {
			break
		}
		if i >= int(size)-1 {
			return nodes[:size], int(size), r.index, ErrFullCluster
		}
	}
	return nodes, int(size), r.index, nil
}

// createSelf registers this member with prevExist=false and waits until the
// registration is visible (§3.2 step 2). It returns the createdIndex.
func (c *v2Client) createSelf(ctx context.Context) (uint64, error) {
	pctx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	r, err := c.do(pctx, http.MethodPut, c.selfKey(), url.Values{"prevExist": {"false"}}, url.Values{"value": {c.cfg.Value}})
	cancel()
	if err != nil {
		var e *v2Error
		if errors.As(err, &e) && e.Code == 105 {
			return 0, ErrDuplicateID
		}
		return 0, err
	}
	created := r.Node.CreatedIndex
	c.lg.Info("registered with the discovery service", zap.String("key", c.selfKey()), zap.Uint64("created-index", created))
	// Make sure the write is visible before reading the registrations.
	for {
		_, err := c.watch(ctx, c.selfKey(), false, created)
		if err != errEmptyBody {
			return created, err
		}
	}
}

func (c *v2Client) watch(ctx context.Context, key string, recursive bool, waitIndex uint64) (*v2Response, error) {
	q := url.Values{"wait": {"true"}, "waitIndex": {strconv.FormatUint(waitIndex, 10)}, "recursive": {strconv.FormatBool(recursive)}}
	return c.do(ctx, http.MethodGet, key, q, nil)
}

// waitNodes watches the token directory until size members registered
// (§3.2 step 4). Every event is a registration, as in etcd.
func (c *v2Client) waitNodes(ctx context.Context, nodes []*v2Node, size int, index uint64) ([]*v2Node, error) {
	if len(nodes) > size {
		nodes = nodes[:size]
	}
	all := append([]*v2Node(nil), nodes...)
	waitIndex := index + 1
	for len(all) < size {
		c.lg.Info("found peers from discovery service", zap.Int("found", len(all)), zap.Int("size", size))
		r, err := c.watch(ctx, c.cluster, true, waitIndex)
		switch {
		case err == errEmptyBody:
			continue
		case retryable(err):
			if berr := c.backoff(ctx, "waiting for other nodes", err); berr != nil {
				return nil, berr
			}
			// Start over from the directory's state, like etcd.
			all = append(all[:0], nodes...)
			waitIndex = index + 1
			continue
		case err != nil:
			return nil, err
		}
		waitIndex = r.Node.ModifiedIndex + 1
		if r.Action == "delete" || r.Action == "compareAndDelete" || r.Action == "expire" {
			continue // a withdrawn registration (etcd-node's own cleanup)
		}
		all = append(all, r.Node)
	}
	c.lg.Info("found all peers from discovery service", zap.Int("size", size))
	return all, nil
}

func (c *v2Client) deleteSelf(created uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
	defer cancel()
	_, err := c.do(ctx, http.MethodDelete, c.selfKey(), url.Values{"prevIndex": {strconv.FormatUint(created, 10)}}, nil)
	if err != nil {
		c.lg.Warn("could not withdraw the registration", zap.String("key", c.selfKey()), zap.Error(err))
	}
}

// nodesToCluster builds the initial cluster from the registrations (§3.2
// step 5).
func nodesToCluster(nodes []*v2Node, size int) (string, error) {
	vals := make([]string, len(nodes))
	for i, n := range nodes {
		vals[i] = n.Value
	}
	joined := strings.Join(vals, ",")
	m, err := config.ParseURLsMap(joined)
	if err != nil {
		return joined, fmt.Errorf("%w (%s: %v)", ErrInvalidURL, joined, err)
	}
	if len(m) != size {
		return joined, fmt.Errorf("%w (%s)", ErrDuplicateName, joined)
	}
	return m.String(), nil
}
