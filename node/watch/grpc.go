package watch

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// ServerOptions connect the Watch service to its member.
type ServerOptions struct {
	// Header fills a response header (cluster, member, raft term) for a
	// response at revision rev.
	Header func(rev int64) *pb.ResponseHeader
	// Refuse, when set, may refuse a new stream (a learner does).
	Refuse func() error
	// Leader is the current leader's ID, 0 when there is none.
	Leader func() uint64
	// LeaderCheckInterval is how often a stream opened with the require-leader
	// metadata checks for a leader; it ends with "no leader" after three
	// checks in a row without one, as etcd's leader monitor does.
	LeaderCheckInterval time.Duration
	// ProgressInterval is the progress_notify period (etcd: 10 min, plus up
	// to 10% jitter).
	ProgressInterval time.Duration
	// MaxRequestBytes splits responses of fragment watchers above it.
	MaxRequestBytes int
	// Permit, when set, checks a create request against the stream's
	// credentials (auth: read permission on the range); a refused watch is
	// answered created and canceled with the error's text, as etcd does.
	Permit func(ctx context.Context, key, rangeEnd []byte) error
}

// Server is etcd's Watch gRPC service.
type Server struct {
	pb.UnimplementedWatchServer
	h   *Hub
	opt ServerOptions
}

// NewServer serves the watchers of h.
func NewServer(h *Hub, opt ServerOptions) *Server {
	if opt.ProgressInterval <= 0 {
		opt.ProgressInterval = 10 * time.Minute
	}
	if opt.LeaderCheckInterval <= 0 {
		opt.LeaderCheckInterval = time.Second
	}
	if opt.MaxRequestBytes <= 0 {
		opt.MaxRequestBytes = 1536 * 1024
	}
	if opt.Header == nil {
		opt.Header = func(rev int64) *pb.ResponseHeader { return &pb.ResponseHeader{Revision: rev} }
	}
	return &Server{h: h, opt: opt}
}

func requiresLeader(ctx context.Context) bool {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return false
	}
	v := md.Get(rpctypes.MetadataRequireLeaderKey)
	return len(v) > 0 && v[0] == rpctypes.MetadataHasLeader
}

const maxNoLeaderChecks = 3

// Watch serves one stream: requests are handled as they arrive (by a
// receiving goroutine), responses are sent from this one in queue order.
func (s *Server) Watch(stream pb.Watch_WatchServer) error {
	ctx := stream.Context()
	if s.opt.Refuse != nil {
		if err := s.opt.Refuse(); err != nil {
			return err
		}
	}
	needLeader := requiresLeader(ctx) && s.opt.Leader != nil
	if needLeader && s.opt.Leader() == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	ws := s.h.NewStream()
	defer ws.Close()

	recvErr := make(chan error, 1)
	go func() { recvErr <- receive(stream, ws, s.opt.Permit) }()

	progress := time.NewTicker(jitter(s.opt.ProgressInterval))
	defer progress.Stop()
	var leaderc <-chan time.Time
	if needLeader {
		t := time.NewTicker(s.opt.LeaderCheckInterval)
		defer t.Stop()
		leaderc = t.C
	}
	noLeader := 0
	// sentEvents marks watchers that had events since the last progress tick.
	sentEvents := map[*watcher]bool{}
	for {
		select {
		case <-ws.Ready():
			for _, it := range ws.take() {
				if err := s.send(stream, it); err != nil {
					return err
				}
				if it.w != nil {
					sentEvents[it.w] = true
				}
			}
		case err := <-recvErr:
			if err == nil {
				recvErr = nil // the client closed its side; keep sending, as etcd does
				continue
			}
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return rpctypes.ErrGRPCWatchCanceled
			}
			return err
		case <-progress.C:
			var quiet []*watcher
			for _, w := range ws.progressWatchers() {
				if !sentEvents[w] {
					quiet = append(quiet, w)
				}
			}
			clear(sentEvents)
			ws.notifyProgress(quiet)
		case <-leaderc:
			if s.opt.Leader() != 0 {
				noLeader = 0
				continue
			}
			if noLeader++; noLeader >= maxNoLeaderChecks {
				return rpctypes.ErrGRPCNoLeader
			}
		case <-ctx.Done():
			return rpctypes.ErrGRPCWatchCanceled
		}
	}
}

// jitter adds up to 10% to d, as etcd does, so that streams opened together
// do not all notify at once.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/10+1))
}

// receive handles the client's requests until the stream ends; nil means the
// client closed its sending side.
func receive(stream pb.Watch_WatchServer, ws *Stream, permit func(ctx context.Context, key, rangeEnd []byte) error) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case req.GetCreateRequest() != nil:
			if permit != nil {
				cr := req.GetCreateRequest()
				if err := permit(stream.Context(), cr.GetKey(), cr.GetRangeEnd()); err != nil {
					ws.Refuse(err.Error())
					continue
				}
			}
			ws.Create(req.GetCreateRequest())
		case req.GetCancelRequest() != nil:
			ws.Cancel(req.GetCancelRequest().GetWatchId())
		case req.GetProgressRequest() != nil:
			ws.RequestProgress()
		}
	}
}

// send writes one queued response, with its header, the events in the form
// the watcher asked for, and in fragments when it asked for them.
func (s *Server) send(stream pb.Watch_WatchServer, it item) error {
	resp := it.resp
	resp.Header = s.opt.Header(it.rev)
	if it.w != nil && !it.w.prevKV {
		// Events are shared between watchers: strip prev_kv on copies.
		evs := make([]*mvccpb.Event, len(resp.Events))
		for i, ev := range resp.Events {
			evs[i] = ev
			if ev.PrevKv != nil {
				evs[i] = &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
			}
		}
		resp.Events = evs
	}
	if it.w == nil || !it.w.fragment || len(resp.Events) < 2 || proto.Size(resp) < s.opt.MaxRequestBytes {
		return stream.Send(resp)
	}
	return sendFragments(stream, resp, s.opt.MaxRequestBytes)
}

// sendFragments splits resp's events into responses below max bytes (at
// least one event each); all but the last have fragment set.
func sendFragments(stream pb.Watch_WatchServer, resp *pb.WatchResponse, max int) error {
	evs := resp.Events
	for len(evs) > 0 {
		part := &pb.WatchResponse{Header: resp.Header, WatchId: resp.WatchId}
		size := proto.Size(part)
		n := 0
		for n < len(evs) {
			es := proto.Size(evs[n]) + 8
			if n > 0 && size+es > max {
				break
			}
			size += es
			n++
		}
		part.Events, evs = evs[:n], evs[n:]
		part.Fragment = len(evs) > 0
		if err := stream.Send(part); err != nil {
			return err
		}
	}
	return nil
}
