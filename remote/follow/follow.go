// Package follow watches a provisioned cluster: its status through clientv3
// over each host's transport (SSH port-forwards reach member URLs that only
// exist behind a bastion or inside a lab), and the tail of a member's log.
package follow

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
)

// Endpoint is a member's client URL and the transport that reaches it.
type Endpoint struct {
	Member    string
	URL       string
	Transport remote.Transport
}

// MemberStatus is one member as it reports itself.
type MemberStatus struct {
	Name      string `json:"name"`
	ID        string `json:"id,omitempty"`
	URL       string `json:"url"`
	Leader    bool   `json:"leader"`
	RaftTerm  uint64 `json:"raftTerm,omitempty"`
	RaftIndex uint64 `json:"raftIndex,omitempty"`
	Version   string `json:"version,omitempty"`
	DBSize    int64  `json:"dbSize,omitempty"`
	Healthy   bool   `json:"healthy"`
	Err       string `json:"error,omitempty"`
}

// ClusterStatus is the cluster at one moment.
type ClusterStatus struct {
	Members []MemberStatus `json:"members"`
	Leader  string         `json:"leader,omitempty"`
	Term    uint64         `json:"raftTerm"`
	Index   uint64         `json:"raftIndex"`
	Healthy bool           `json:"healthy"` // every member healthy and agreeing on a leader
	Time    time.Time      `json:"time"`
}

// Status asks every endpoint for its status, in parallel.
func Status(ctx context.Context, eps []Endpoint, tlsCfg *tls.Config) ClusterStatus {
	cs := ClusterStatus{Members: make([]MemberStatus, len(eps)), Time: time.Now()}
	var wg sync.WaitGroup
	for i, ep := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs.Members[i] = memberStatus(ctx, ep, tlsCfg)
		}()
	}
	wg.Wait()
	leaders := map[string]bool{}
	cs.Healthy = len(eps) > 0
	for _, m := range cs.Members {
		if !m.Healthy {
			cs.Healthy = false
		}
		if m.Leader {
			leaders[m.Name] = true
			cs.Leader = m.Name
		}
		cs.Term, cs.Index = max(cs.Term, m.RaftTerm), max(cs.Index, m.RaftIndex)
	}
	if len(leaders) != 1 {
		cs.Healthy = false
	}
	return cs
}

func memberStatus(ctx context.Context, ep Endpoint, tlsCfg *tls.Config) MemberStatus {
	ms := MemberStatus{Name: ep.Member, URL: ep.URL}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cli, err := Client(ep, tlsCfg)
	if err != nil {
		ms.Err = err.Error()
		return ms
	}
	defer cli.Close()
	st, err := cli.Status(ctx, ep.URL)
	if err != nil {
		ms.Err = err.Error()
		return ms
	}
	ms.ID = strconv.FormatUint(st.Header.MemberId, 16)
	ms.Leader = st.Leader != 0 && st.Leader == st.Header.MemberId
	ms.RaftTerm, ms.RaftIndex, ms.Version, ms.DBSize = st.RaftTerm, st.RaftIndex, st.Version, st.DbSize
	ms.Healthy = st.Leader != 0 && len(st.Errors) == 0
	if len(st.Errors) > 0 {
		ms.Err = fmt.Sprint(st.Errors)
	}
	if ms.Healthy {
		// A linearizable read proves the member serves through a quorum.
		if _, err := cli.Get(ctx, "health", clientv3.WithCountOnly()); err != nil {
			ms.Healthy, ms.Err = false, err.Error()
		}
	}
	return ms
}

// Client returns a clientv3 client of one endpoint that dials through the
// endpoint's transport.
func Client(ep Endpoint, tlsCfg *tls.Config) (*clientv3.Client, error) {
	if ep.Transport == nil {
		return nil, errors.New("host unreachable")
	}
	t := ep.Transport
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{ep.URL},
		DialTimeout: 5 * time.Second,
		TLS:         tlsCfg,
		Logger:      zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return t.Dial(ctx, "tcp", addr)
		})},
	})
}

// Follow sends the cluster's status every interval until ctx ends.
func Follow(ctx context.Context, eps []Endpoint, tlsCfg *tls.Config, interval time.Duration) <-chan ClusterStatus {
	ch := make(chan ClusterStatus)
	go func() {
		defer close(ch)
		for {
			st := Status(ctx, eps, tlsCfg)
			select {
			case ch <- st:
			case <-ctx.Done():
				return
			}
			t := time.NewTimer(interval)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}()
	return ch
}

// Tail writes the last n lines of the member's log to w; with follow it
// keeps writing new lines until ctx ends.
func Tail(ctx context.Context, t remote.Transport, lay *plan.HostLayout, n int, follow bool, w io.Writer) error {
	err := t.Run(ctx, remote.Cmd{Root: true, Command: lay.LogTailCommand(n, follow), Stdout: w})
	if follow && ctx.Err() != nil {
		return nil
	}
	return err
}

// SortByName orders members by name.
func SortByName(ms []MemberStatus) {
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
}
