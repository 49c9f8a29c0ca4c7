package discovery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"etcdctl-wizard/node/config"
)

// V3 configures a v3 discovery join (--discovery-endpoints, --discovery-token).
type V3 struct {
	Endpoints string // comma-separated
	Token     string
	Settings  config.DiscoveryV3
	ID        uint64
	Value     string // name=url,...
	Logger    *zap.Logger
	// RetryBase is the backoff unit (default 1s).
	RetryBase time.Duration
}

type v3Member struct {
	key   string
	value string
	rev   int64
}

type v3Client struct {
	cfg     V3
	c       *clientv3.Client
	lg      *zap.Logger
	retries uint
	prefix  string // /_etcd/registry/<token>
}

// errPermanent marks v3 check errors that are not retried.
type errPermanent struct{ error }

func (e errPermanent) Unwrap() error { return e.error }

// JoinV3 runs etcd's v3 discovery (SPEC-etcd.md §5) through clientv3 and
// returns the initial cluster string; errors come wrapped in a JoinError.
func JoinV3(ctx context.Context, cfg V3) (string, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.RetryBase == 0 {
		cfg.RetryBase = time.Second
	}
	ccfg, err := v3ClientConfig(cfg)
	if err != nil {
		return "", err
	}
	cli, err := clientv3.New(ccfg)
	if err != nil {
		return "", &JoinError{Err: err}
	}
	defer cli.Close()
	d := &v3Client{cfg: cfg, c: cli, lg: cfg.Logger, prefix: "/_etcd/registry/" + cfg.Token}
	s, err := d.join(ctx)
	if err != nil {
		return "", &JoinError{Err: err}
	}
	return s, nil
}

func v3ClientConfig(cfg V3) (clientv3.Config, error) {
	s := cfg.Settings
	var eps []string
	for _, e := range strings.Split(cfg.Endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	cc := clientv3.Config{
		Endpoints:            eps,
		DialTimeout:          s.DialTimeout,
		DialKeepAliveTime:    s.KeepAliveTime,
		DialKeepAliveTimeout: s.KeepAliveTimeout,
		Logger:               cfg.Logger.Named("discovery-client").WithOptions(zap.IncreaseLevel(zap.WarnLevel)),
	}
	if s.User != "" {
		user, pass, ok := strings.Cut(s.User, ":")
		if !ok {
			pass = s.Password
		}
		cc.Username, cc.Password = user, pass
	}
	if s.CertFile != "" || s.KeyFile != "" || s.CAFile != "" {
		t := &tls.Config{MinVersion: tls.VersionTLS12}
		if s.CertFile != "" || s.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
			if err != nil {
				return cc, fmt.Errorf("--discovery-cert/--discovery-key: %v", err)
			}
			t.Certificates = []tls.Certificate{cert}
		}
		if s.CAFile != "" {
			pem, err := os.ReadFile(s.CAFile)
			if err != nil {
				return cc, fmt.Errorf("--discovery-cacert: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return cc, fmt.Errorf("--discovery-cacert: no certificate in %s", s.CAFile)
			}
			t.RootCAs = pool
		}
		cc.TLS = t
	}
	if cc.TLS == nil && !s.InsecureTransport {
		cc.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cc.TLS != nil && s.InsecureSkipTLSVerify {
		cc.TLS.InsecureSkipVerify = true
	}
	return cc, nil
}

func (d *v3Client) sizeKey() string    { return d.prefix + "/_config/size" }
func (d *v3Client) membersKey() string { return d.prefix + "/members" }
func (d *v3Client) selfKey() string {
	return d.membersKey() + "/" + config.IDString(d.cfg.ID)
}

func (d *v3Client) backoff(ctx context.Context, reason string, err error) error {
	d.retries++
	wait := d.cfg.RetryBase * time.Duration(1<<min(d.retries, 8))
	d.lg.Info("retry connecting to discovery service", zap.String("reason", reason), zap.Duration("backoff", wait), zap.Error(err))
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (d *v3Client) join(ctx context.Context) (string, error) {
	members, size, _, err := d.checkClusterRetry(ctx)
	if err != nil {
		return "", err
	}
	// Refuse garbage among the first size registrations before this member
	// registers (nothing left behind by a doomed bootstrap).
	for i, m := range members {
		if i >= size {
			break
		}
		if _, perr := config.ParseURLsMap(m.value); perr != nil {
			return "", fmt.Errorf("%w: registration %s has %q: %v", ErrInvalidPeerURL, m.key, m.value, perr)
		}
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, d.cfg.Settings.RequestTimeout)
		_, err := d.c.Put(rctx, d.selfKey(), d.cfg.Value)
		cancel()
		if err == nil {
			break
		}
		if berr := d.backoff(ctx, "register member itself", err); berr != nil {
			return "", berr
		}
	}
	d.lg.Info("registered with the discovery service", zap.String("key", d.selfKey()))
	members, size, rev, err := d.checkClusterRetry(ctx)
	if err != nil {
		return "", err
	}
	members, err = d.waitPeers(ctx, members, size, rev)
	if err != nil {
		return "", err
	}
	vals := make([]string, 0, size)
	for _, m := range members[:size] {
		vals = append(vals, m.value)
	}
	joined := strings.Join(vals, ",")
	urls, err := config.ParseURLsMap(joined)
	if err != nil {
		return "", fmt.Errorf("%w (%s: %v)", ErrInvalidPeerURL, joined, err)
	}
	return urls.String(), nil
}

func (d *v3Client) checkClusterRetry(ctx context.Context) ([]v3Member, int, int64, error) {
	for {
		ms, size, rev, err := d.checkCluster(ctx)
		var perm errPermanent
		switch {
		case err == nil:
			return ms, size, rev, nil
		case errors.As(err, &perm):
			return nil, 0, 0, perm.error
		case ctx.Err() != nil:
			return nil, 0, 0, ctx.Err()
		}
		if berr := d.backoff(ctx, "cluster status check", err); berr != nil {
			return nil, 0, 0, berr
		}
	}
}

func (d *v3Client) checkCluster(ctx context.Context) ([]v3Member, int, int64, error) {
	rctx, cancel := context.WithTimeout(ctx, d.cfg.Settings.RequestTimeout)
	resp, err := d.c.Get(rctx, d.sizeKey())
	cancel()
	if err != nil {
		return nil, 0, 0, err
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, 0, errPermanent{fmt.Errorf("%w (%s)", ErrSizeNotFound, d.sizeKey())}
	}
	size, err := strconv.Atoi(string(resp.Kvs[0].Value))
	if err != nil || size <= 0 {
		return nil, 0, 0, errPermanent{fmt.Errorf("%w (%s is %q)", ErrBadSizeKey, d.sizeKey(), resp.Kvs[0].Value)}
	}
	rctx, cancel = context.WithTimeout(ctx, d.cfg.Settings.RequestTimeout)
	resp, err = d.c.Get(rctx, d.membersKey(), clientv3.WithPrefix())
	cancel()
	if err != nil {
		return nil, 0, 0, err
	}
	var ms []v3Member
	seen := map[string]bool{}
	for _, kv := range resp.Kvs {
		m, err := d.member(kv)
		if err != nil {
			return nil, 0, 0, errPermanent{err}
		}
		if seen[m.key] {
			return nil, 0, 0, errPermanent{fmt.Errorf("found duplicate peer from discovery service: %s", m.key)}
		}
		seen[m.key] = true
		ms = append(ms, m)
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].rev < ms[j].rev })
	for i, m := range ms {
		if m.key == d.selfKey() {
			break
		}
		if i >= size-1 {
			return nil, 0, 0, errPermanent{ErrFullCluster}
		}
	}
	return ms, size, resp.Header.Revision, nil
}

func (d *v3Client) member(kv *mvccpb.KeyValue) (v3Member, error) {
	k, v := string(kv.Key), string(kv.Value)
	if !strings.HasPrefix(k, d.membersKey()+"/") {
		return v3Member{}, fmt.Errorf("invalid peer registry key: %s", k)
	}
	if !strings.Contains(v, "=") {
		return v3Member{}, fmt.Errorf("invalid peer info returned from discovery service: %s has %q", k, v)
	}
	return v3Member{key: k, value: v, rev: kv.CreateRevision}, nil
}

func (d *v3Client) waitPeers(ctx context.Context, ms []v3Member, size int, rev int64) ([]v3Member, error) {
	if len(ms) >= size {
		return ms, nil
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	seen := map[string]bool{}
	for _, m := range ms {
		seen[m.key] = true
	}
	d.lg.Info("waiting for peers from discovery service", zap.Int("found", len(ms)), zap.Int("size", size))
	wch := d.c.Watch(wctx, d.membersKey(), clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for len(ms) < size {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case wr, ok := <-wch:
			if !ok {
				return nil, errors.New("discovery: watch closed")
			}
			if err := wr.Err(); err != nil {
				if berr := d.backoff(ctx, "waiting for other nodes", err); berr != nil {
					return nil, berr
				}
				// Start over from the current registrations.
				nms, nsize, nrev, err := d.checkClusterRetry(ctx)
				if err != nil {
					return nil, err
				}
				return d.waitPeers(ctx, nms, nsize, nrev)
			}
			for _, ev := range wr.Events {
				if ev.Type != clientv3.EventTypePut || seen[string(ev.Kv.Key)] {
					continue
				}
				m, err := d.member(ev.Kv)
				if err != nil {
					return nil, err
				}
				seen[m.key] = true
				ms = append(ms, m)
			}
		}
	}
	d.lg.Info("found all peers from discovery service", zap.Int("size", size))
	return ms, nil
}
