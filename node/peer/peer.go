package peer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Lane names, also the last element of the stream path.
const (
	laneMsgApp  = "msgapp"
	laneMessage = "message"
)

// maxBatchBytes caps one encoded batch so a deep queue does not build a
// huge buffer before the first byte goes out.
const maxBatchBytes = 1 << 20

// errStreamClosed reports that the remote end closed a stream or stopped
// answering pings.
var errStreamClosed = errors.New("stream closed by remote peer")

// peer holds the outgoing side of the connection to one member.
type peer struct {
	t      *Transport
	id     uint64
	lg     *zap.Logger
	ctx    context.Context
	cancel context.CancelFunc
	msgapp *lane
	other  *lane

	mu     sync.Mutex
	urls   []*url.URL
	next   int // index of the URL to dial next; advances on failure
	active int // connected lanes
	since  time.Time
}

func newPeer(t *Transport, id uint64, urls []*url.URL) *peer {
	ctx, cancel := context.WithCancel(t.ctx)
	p := &peer{
		t:      t,
		id:     id,
		lg:     t.lg.With(zap.String("remote-peer-id", idString(id))),
		ctx:    ctx,
		cancel: cancel,
		urls:   urls,
	}
	p.msgapp = &lane{p: p, name: laneMsgApp, q: make(chan *raftpb.Message, t.cfg.QueueSize)}
	p.other = &lane{p: p, name: laneMessage, q: make(chan *raftpb.Message, t.cfg.QueueSize)}
	return p
}

// start launches the lanes; the caller holds t.mu and saw !t.stopped.
func (p *peer) start() {
	p.t.goTracked(p.msgapp.run)
	p.t.goTracked(p.other.run)
}

// send routes m to its lane, or to its own goroutine for MsgSnap. The
// caller holds t.mu for reading and saw !t.stopped.
func (p *peer) send(m *raftpb.Message) {
	l := p.other
	switch m.GetType() {
	case raftpb.MsgSnap:
		p.t.goTracked(func() { p.sendSnapshot(m) })
		return
	case raftpb.MsgApp:
		l = p.msgapp
	}
	select {
	case l.q <- m:
	default:
		p.lg.Debug("dropped message, send queue full", zap.String("lane", l.name), zap.Stringer("type", m.GetType()))
		p.t.reportUnreachable(p.id)
	}
}

func (p *peer) setURLs(urls []*url.URL) {
	p.mu.Lock()
	p.urls, p.next = urls, 0
	p.mu.Unlock()
}

func (p *peer) pickURL() (*url.URL, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.urls) == 0 {
		return nil, errors.New("no valid peer URL")
	}
	return p.urls[p.next%len(p.urls)], nil
}

// urlFailed moves on to the peer's next URL after a failed attempt on u.
func (p *peer) urlFailed(u *url.URL) {
	p.mu.Lock()
	if len(p.urls) > 0 && p.urls[p.next%len(p.urls)] == u {
		p.next = (p.next + 1) % len(p.urls)
	}
	p.mu.Unlock()
}

func (p *peer) activate() {
	p.mu.Lock()
	p.active++
	first := p.active == 1
	if first {
		p.since = time.Now()
	}
	p.mu.Unlock()
	if first {
		p.lg.Info("peer became active")
	}
}

func (p *peer) deactivate() {
	p.mu.Lock()
	p.active--
	last := p.active == 0
	if last {
		p.since = time.Time{}
	}
	p.mu.Unlock()
	if last && p.ctx.Err() == nil {
		p.lg.Warn("peer became inactive (message send to peer failed)")
	}
}

func (p *peer) activeSince() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.since
}

// setIdentity adds the headers every peer request carries.
func (p *peer) setIdentity(h http.Header) {
	h.Set(HeaderClusterID, idString(p.t.clusterID.Load()))
	h.Set(HeaderFrom, idString(p.t.cfg.LocalID))
	h.Set(HeaderTo, idString(p.id))
	h.Set(HeaderVersion, p.t.cfg.ServerVersion)
}

// rejected turns a non-success answer into an error, firing the removed and
// cluster-ID callbacks when the answer says so.
func (p *peer) rejected(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch resp.StatusCode {
	case http.StatusPreconditionFailed:
		remote, err := strconv.ParseUint(resp.Header.Get(HeaderClusterID), 16, 64)
		if local := p.t.clusterID.Load(); err == nil && remote != local {
			p.lg.Warn("request sent was ignored by remote peer due to cluster ID mismatch",
				zap.String("local-cluster-id", idString(local)), zap.String("remote-cluster-id", idString(remote)))
			p.t.clusterIDMismatch(remote)
			return &ClusterIDMismatchError{Local: local, Remote: remote}
		}
	case http.StatusForbidden:
		p.t.memberRemoved()
		return ErrMemberRemoved
	}
	return fmt.Errorf("peer answered %s: %s", resp.Status, trimBody(body))
}

// ErrMemberRemoved is returned when a peer refuses this member because it
// was removed from the cluster (HTTP 403).
var ErrMemberRemoved = errors.New("the member has been permanently removed from the cluster")

// ClusterIDMismatchError is returned when a peer belongs to another cluster
// (HTTP 412).
type ClusterIDMismatchError struct{ Local, Remote uint64 }

func (e *ClusterIDMismatchError) Error() string {
	return fmt.Sprintf("cluster ID mismatch (local %s, remote %s)", idString(e.Local), idString(e.Remote))
}

// lane is one outgoing stream to a peer with its own queue; a single
// goroutine owns the connection, so messages of a lane arrive in order.
type lane struct {
	p    *peer
	name string
	q    chan *raftpb.Message
}

func (l *lane) run() {
	p := l.p
	backoff := minBackoff
	var lastErr string
	for p.ctx.Err() == nil {
		conn, br, err := l.dial()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			// Log each new kind of failure once, not every retry.
			if s := err.Error(); s != lastErr {
				lastErr = s
				p.lg.Warn("failed to open stream to peer", zap.String("lane", l.name), zap.Error(err))
			}
			if !l.dropFor(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff, lastErr = minBackoff, ""
		p.activate()
		err = l.stream(conn, br)
		p.deactivate()
		if err != nil && p.ctx.Err() == nil {
			p.lg.Warn("lost stream to peer", zap.String("lane", l.name), zap.Error(err))
		}
	}
}

// dropFor waits d, dropping whatever is queued meanwhile: while the peer is
// unreachable, raft should learn so and resend rather than get stale
// messages later. It reports false when the peer is being shut down.
func (l *lane) dropFor(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-l.p.ctx.Done():
			return false
		case <-timer.C:
			return true
		case <-l.q:
			l.p.t.reportUnreachable(l.p.id)
		}
	}
}

// dial connects to the peer and performs the upgrade handshake.
func (l *lane) dial() (net.Conn, *bufio.Reader, error) {
	p := l.p
	u, err := p.pickURL()
	if err != nil {
		return nil, nil, err
	}
	conn, br, err := l.handshake(u)
	if err != nil {
		p.urlFailed(u)
	}
	return conn, br, err
}

func (l *lane) handshake(u *url.URL) (net.Conn, *bufio.Reader, error) {
	p := l.p
	ctx, cancel := context.WithTimeout(p.ctx, p.t.cfg.DialTimeout)
	defer cancel()
	conn, err := p.t.dialer.DialContext(ctx, "tcp", hostPort(u))
	if err != nil {
		return nil, nil, err
	}
	// The deadline bounds the TLS and HTTP handshakes; AfterFunc aborts them
	// at once when the peer is removed or the transport stops.
	deadline, _ := ctx.Deadline()
	conn.SetDeadline(deadline)
	raw := conn // conn becomes the TLS connection below; deadlines reach it through raw
	stopAbort := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	ok := false
	defer func() {
		stopAbort()
		if !ok {
			raw.Close()
		}
	}()
	if u.Scheme == "https" {
		if p.t.cfg.TLS == nil {
			return nil, nil, errors.New("https peer URL but no TLS configuration")
		}
		cfg := p.t.cfg.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		// Only HTTP/1.1 can hand the connection over after the upgrade.
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, nil, err
		}
		conn = tc
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.JoinPath("raft", "stream", l.name).String(), nil)
	if err != nil {
		return nil, nil, err
	}
	p.setIdentity(req.Header)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", upgradeProtocol)
	if err := req.Write(conn); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, 512)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		err := p.rejected(resp)
		resp.Body.Close()
		return nil, nil, err
	}
	if !stopAbort() || conn.SetDeadline(time.Time{}) != nil {
		return nil, nil, context.Cause(ctx)
	}
	ok = true
	return conn, br, nil
}

// stream writes the lane's queue to conn until either end fails.
func (l *lane) stream(conn net.Conn, br *bufio.Reader) error {
	p := l.p
	keepAlive := p.t.cfg.KeepAliveInterval
	dead := 5 * keepAlive
	pongs := make(chan error, 1)
	go func() { pongs <- readPongs(conn, br, dead) }()
	defer func() {
		conn.Close()
		<-pongs // the reader ends once conn is closed
	}()

	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	var buf []byte
	for {
		select {
		case <-p.ctx.Done():
			return nil
		case err := <-pongs:
			pongs <- err // let the deferred wait see it too
			return err
		case <-ticker.C:
			conn.SetWriteDeadline(time.Now().Add(dead))
			if _, err := conn.Write(make([]byte, frameHeaderLen)); err != nil {
				return err
			}
		case m := <-l.q:
			var err error
			if buf, err = l.writeBatch(conn, buf[:0], m, dead); err != nil {
				p.t.reportUnreachable(p.id)
				return err
			}
			if cap(buf) > 4*maxBatchBytes {
				buf = nil // do not pin a buffer grown by one huge message
			}
		}
	}
}

// writeBatch encodes m and whatever else is queued right now and writes it
// out, in writes of about maxBatchBytes.
func (l *lane) writeBatch(conn net.Conn, buf []byte, m *raftpb.Message, timeout time.Duration) ([]byte, error) {
	conn.SetWriteDeadline(time.Now().Add(timeout))
	for m != nil {
		var err error
		if buf, err = appendFrame(buf, m); err != nil {
			l.p.lg.Error("cannot encode raft message; dropped", zap.Stringer("type", m.GetType()), zap.Error(err))
			l.p.t.reportUnreachable(l.p.id)
		}
		if len(buf) >= maxBatchBytes {
			if _, err := conn.Write(buf); err != nil {
				return buf, err
			}
			buf = buf[:0]
		}
		m = nil
		select {
		case m = <-l.q:
		default:
		}
	}
	if len(buf) == 0 {
		return buf, nil
	}
	_, err := conn.Write(buf)
	return buf, err
}

// readPongs consumes the receiver's ping answers; it fails when none came
// for dead, which means the peer or the path to it is gone.
func readPongs(conn net.Conn, br *bufio.Reader, dead time.Duration) error {
	var b [64]byte
	for {
		conn.SetReadDeadline(time.Now().Add(dead))
		if _, err := br.Read(b[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return errStreamClosed
			}
			return err
		}
	}
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

func trimBody(b []byte) string {
	s := string(b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}
