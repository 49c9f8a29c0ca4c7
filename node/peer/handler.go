package peer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// Request and response headers of the peer protocol (etcd's names).
const (
	HeaderClusterID = "X-Etcd-Cluster-ID"
	HeaderFrom      = "X-Server-From"
	HeaderTo        = "X-Raft-To"
	HeaderVersion   = "X-Server-Version"

	upgradeProtocol = "etcd-node-raft/1"
)

// Handler serves the peer port: raft streams, snapshots, /members,
// /version, forwarded member promotions and forwarded lease requests.
func (t *Transport) Handler() http.Handler { return t.handler }

func (t *Transport) newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /raft/stream/{lane}", t.serveStream)
	mux.HandleFunc("POST /raft/snapshot", t.serveSnapshot)
	mux.HandleFunc("GET /members", t.serveMembers)
	mux.HandleFunc("GET /version", t.serveVersion)
	mux.HandleFunc("POST /members/promote/{id}", t.servePromote)
	mux.HandleFunc("POST "+LeasePath, t.serveLeaseRenew)
	mux.HandleFunc("POST "+LeaseInternalPath, t.serveLeaseTimeToLive)
	return mux
}

// checkRequest validates the identity headers of a raft request and answers
// it when it must be refused.
func (t *Transport) checkRequest(w http.ResponseWriter, r *http.Request) (from uint64, ok bool) {
	local := t.clusterID.Load()
	w.Header().Set(HeaderClusterID, idString(local))
	if t.ctx.Err() != nil {
		http.Error(w, "transport stopped", http.StatusServiceUnavailable)
		return 0, false
	}
	if local == 0 {
		// Until the cluster ID is known nothing can be checked; the sender
		// retries rather than concluding it talks to another cluster.
		http.Error(w, "cluster ID not yet known", http.StatusServiceUnavailable)
		return 0, false
	}
	remote, err := strconv.ParseUint(r.Header.Get(HeaderClusterID), 16, 64)
	if err != nil || remote != local {
		t.lg.Warn("request cluster ID mismatch",
			zap.String("local-cluster-id", idString(local)),
			zap.String("remote-cluster-id", r.Header.Get(HeaderClusterID)),
			zap.String("remote-peer-id", r.Header.Get(HeaderFrom)))
		http.Error(w, "cluster ID mismatch", http.StatusPreconditionFailed)
		return 0, false
	}
	from, err = strconv.ParseUint(r.Header.Get(HeaderFrom), 16, 64)
	if err != nil || from == 0 {
		http.Error(w, "invalid "+HeaderFrom+" header", http.StatusBadRequest)
		return 0, false
	}
	if to := r.Header.Get(HeaderTo); to != "" {
		if id, err := strconv.ParseUint(to, 16, 64); err != nil || id != t.cfg.LocalID {
			// The URL now belongs to another member (e.g. replaced host).
			http.Error(w, "to field mismatch", http.StatusPreconditionFailed)
			return 0, false
		}
	}
	if t.cfg.Raft.IsIDRemoved(from) {
		t.lg.Warn("rejected request from removed member", zap.String("remote-peer-id", idString(from)))
		http.Error(w, "removed member", http.StatusForbidden)
		return 0, false
	}
	return from, true
}

func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request) {
	lane := r.PathValue("lane")
	if lane != laneMsgApp && lane != laneMessage {
		http.Error(w, "unknown stream type", http.StatusNotFound)
		return
	}
	from, ok := t.checkRequest(w, r)
	if !ok {
		return
	}
	if r.Header.Get("Upgrade") != upgradeProtocol {
		w.Header().Set("Upgrade", upgradeProtocol)
		http.Error(w, "stream requires Upgrade: "+upgradeProtocol, http.StatusUpgradeRequired)
		return
	}
	// ResponseController also reaches through wrappers that implement
	// Unwrap (metrics, logging middleware).
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.lg.Warn("cannot take over stream connection", zap.String("proto", r.Proto), zap.Error(err))
		http.Error(w, "raft streams need HTTP/1.1", http.StatusHTTPVersionNotSupported)
		return
	}
	if !t.trackInbound(conn, from) {
		conn.Close()
		return
	}
	defer t.untrackInbound(conn)
	// RemovePeer only closes streams it can see; one accepted while it ran
	// is caught here, since raft marks a member removed before that call.
	if t.cfg.Raft.IsIDRemoved(from) {
		return
	}

	// The server's read/write timeouts stay armed on a hijacked connection.
	conn.SetDeadline(time.Time{})
	var rd io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		peeked, _ := brw.Reader.Peek(n)
		rd = io.MultiReader(bytes.NewReader(bytes.Clone(peeked)), conn)
	}
	conn.SetWriteDeadline(time.Now().Add(t.cfg.DialTimeout))
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+upgradeProtocol+"\r\n\r\n"); err != nil {
		return
	}
	lg := t.lg.With(zap.String("remote-peer-id", idString(from)), zap.String("lane", lane))
	lg.Debug("accepted stream from peer")
	if err := t.receive(conn, bufio.NewReaderSize(rd, 64<<10), from); err != nil && t.ctx.Err() == nil {
		lg.Info("stream from peer ended", zap.Error(err))
	}
}

// receive hands the frames of one stream to raft, in order, answering pings.
func (t *Transport) receive(conn net.Conn, br *bufio.Reader, from uint64) error {
	dead := 5 * t.cfg.KeepAliveInterval
	var buf []byte
	pong := []byte{0}
	for frames := 0; ; frames++ {
		// Refreshing the deadline costs a timer update; do it only before
		// reads that may block, or now and then while draining the buffer.
		if br.Buffered() < frameHeaderLen || frames%256 == 0 {
			conn.SetReadDeadline(time.Now().Add(dead))
		}
		var err error
		if buf, err = readFrame(br, buf); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if len(buf) == 0 {
			conn.SetWriteDeadline(time.Now().Add(dead))
			if _, err := conn.Write(pong); err != nil {
				return err
			}
			continue
		}
		m, err := decodeMessage(buf)
		if err != nil {
			return err // the stream is out of sync; the sender reconnects
		}
		if m.GetFrom() != from {
			t.lg.Warn("dropped message with a sender that does not match its stream",
				zap.String("stream-peer-id", idString(from)), zap.String("message-from", idString(m.GetFrom())))
			continue
		}
		if err := t.cfg.Raft.Process(t.ctx, m); err != nil {
			if t.ctx.Err() != nil {
				return nil
			}
			t.lg.Warn("failed to process raft message", zap.String("remote-peer-id", idString(from)), zap.Error(err))
		}
	}
}

func (t *Transport) trackInbound(c net.Conn, from uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return false
	}
	// Stop waits for the handler too, so no goroutine outlives the transport.
	t.wg.Add(1)
	t.inbound[c] = from
	return true
}

func (t *Transport) untrackInbound(c net.Conn) {
	c.Close()
	t.mu.Lock()
	delete(t.inbound, c)
	t.mu.Unlock()
	t.wg.Done()
}

func (t *Transport) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	from, ok := t.checkRequest(w, r)
	if !ok {
		return
	}
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		http.Error(w, "transport stopped", http.StatusServiceUnavailable)
		return
	}
	t.wg.Add(1)
	t.mu.Unlock()
	defer t.wg.Done()

	// A db image may take longer than the server's read timeout allows;
	// Stop instead ends a stalled upload at once.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	defer context.AfterFunc(t.ctx, func() { rc.SetReadDeadline(time.Unix(1, 0)) })()

	lg := t.lg.With(zap.String("remote-peer-id", idString(from)))
	status, err := t.receiveSnapshot(r.Body, from)
	if err != nil {
		lg.Warn("failed to receive snapshot", zap.Error(err))
		http.Error(w, err.Error(), status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (t *Transport) receiveSnapshot(body io.Reader, from uint64) (int, error) {
	if t.cfg.SnapshotSink == nil {
		return http.StatusInternalServerError, errors.New("this member cannot receive snapshots")
	}
	payload, err := readFrame(body, nil)
	if err != nil {
		return http.StatusBadRequest, fmt.Errorf("cannot read snapshot message: %w", err)
	}
	m, err := decodeMessage(payload)
	if err != nil {
		return http.StatusBadRequest, err
	}
	if m.GetType() != raftpb.MsgSnap || m.GetFrom() != from {
		return http.StatusBadRequest, fmt.Errorf("unexpected %s from %s on the snapshot path", m.GetType(), idString(m.GetFrom()))
	}
	var size [8]byte
	if _, err := io.ReadFull(body, size[:]); err != nil {
		return http.StatusBadRequest, fmt.Errorf("cannot read snapshot size: %w", err)
	}
	db := &exactReader{r: body, n: binary.BigEndian.Uint64(size[:])}
	if err := t.cfg.SnapshotSink(m, db); err != nil {
		return http.StatusInternalServerError, fmt.Errorf("cannot store snapshot: %w", err)
	}
	if !db.done {
		return http.StatusBadRequest, errors.New("snapshot data was not read to the end")
	}
	t.lg.Info("received snapshot", zap.String("remote-peer-id", idString(from)),
		zap.Uint64("snapshot-index", m.GetSnapshot().GetMetadata().GetIndex()), zap.Uint64("bytes", db.read))
	if err := t.cfg.Raft.Process(t.ctx, m); err != nil {
		return http.StatusInternalServerError, fmt.Errorf("raft refused snapshot: %w", err)
	}
	return 0, nil
}

// unknownSize marks a snapshot body that runs to the end of the request.
const unknownSize = ^uint64(0)

// exactReader yields exactly n bytes of r (all of r when n is unknownSize)
// and fails when r ends early, so a truncated upload never looks complete.
type exactReader struct {
	r    io.Reader
	n    uint64
	read uint64
	done bool
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.n != unknownSize {
		left := e.n - e.read
		if left == 0 {
			e.done = true
			return 0, io.EOF
		}
		if uint64(len(p)) > left {
			p = p[:left]
		}
	}
	k, err := e.r.Read(p)
	e.read += uint64(k)
	if err == io.EOF {
		if e.n == unknownSize {
			e.done = true
			return k, io.EOF
		}
		if e.read < e.n {
			return k, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return k, err
}

func (t *Transport) serveMembers(w http.ResponseWriter, _ *http.Request) {
	members := []MemberInfo{}
	if t.cfg.Members != nil {
		for _, m := range t.cfg.Members() {
			// etcd always sends arrays here, never null.
			if m.PeerURLs == nil {
				m.PeerURLs = []string{}
			}
			if m.ClientURLs == nil {
				m.ClientURLs = []string{}
			}
			members = append(members, m)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(HeaderClusterID, idString(t.clusterID.Load()))
	if err := json.NewEncoder(w).Encode(members); err != nil {
		t.lg.Warn("failed to send members", zap.Error(err))
	}
}

// Versions is the GET /version answer.
type Versions struct {
	Server  string `json:"etcdserver"`
	Cluster string `json:"etcdcluster"`
}

func (t *Transport) serveVersion(w http.ResponseWriter, _ *http.Request) {
	v := Versions{Server: t.cfg.ServerVersion, Cluster: "not_decided"}
	if t.cfg.ClusterVersion != nil {
		if cv := t.cfg.ClusterVersion(); cv != "" {
			v.Cluster = cv
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		t.lg.Warn("failed to send version", zap.Error(err))
	}
}
