package executor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"etcdctl-wizard/node/discovery"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/facts"
)

// StepDiscovery is the step of the events that report a discovery token's
// registrations while the members start.
const StepDiscovery = "discovery"

// discoveryToken is the plan's etcd discovery token as the members reach
// it: through the host t, not necessarily from this machine.
type discoveryToken struct {
	url, proxy string
	client     *http.Client
}

func newDiscoveryToken(q *plan.Plan, t remote.Transport) *discoveryToken {
	d := q.Spec.Bootstrap.Discovery
	if q.Spec.Bootstrap.Mode != plan.ModeDiscovery || d.URL == "" || t == nil {
		return nil
	}
	return &discoveryToken{url: d.URL, proxy: d.Proxy, client: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return t.Dial(ctx, network, addr)
		}},
	}}
}

func (d *discoveryToken) inspect(ctx context.Context) (*discovery.V2Status, error) {
	return discovery.InspectV2(ctx, d.url, d.proxy, d.client)
}

// checkDiscovery looks at the plan's etcd discovery token before any host
// is changed, with the same client code the members run: the size key must
// be there (else the guide's "the cluster doesn't have a size configuration
// value" error, which would otherwise stop every member at start), its
// size must match the plan, and, for a cluster still to bootstrap (fresh),
// the token must not be in use already. Members that have their data
// ignore the token, so an existing cluster's token is not checked.
func checkDiscovery(ctx context.Context, q *plan.Plan, t remote.Transport, fresh bool) []facts.Problem {
	d := newDiscoveryToken(q, t)
	if d == nil || !fresh {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := d.inspect(ctx)
	if err != nil {
		return []facts.Problem{{Host: t.String(), Fatal: true,
			Message: fmt.Sprintf("discovery token %s: %v; create it with `curl -X PUT %s/_config/size -d value=%d` or pick a new token", d.url, err, d.url, len(q.Spec.Members))}}
	}
	var problems []facts.Problem
	if st.Size != len(q.Spec.Members) {
		problems = append(problems, facts.Problem{Host: t.String(), Fatal: true,
			Message: fmt.Sprintf("discovery token %s expects %d members but the plan has %d; use a token created for %d", d.url, st.Size, len(q.Spec.Members), len(q.Spec.Members))})
	}
	if n := len(st.Registrations); n > 0 {
		problems = append(problems, facts.Problem{Host: t.String(), Fatal: true,
			Message: fmt.Sprintf("discovery token %s already has %d registration(s): a token bootstraps one cluster once; create a new token", d.url, n)})
	}
	return problems
}

// followRegistrations reports the token's registrations as they arrive,
// one event each time the set changes, until all are in or the returned
// stop is called. The first look is taken before it returns, so the
// operator sees the token as it was before any member started.
func (s *session) followRegistrations(ctx context.Context, d *discoveryToken, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var last []string
	complete := false
	look := func() {
		st, err := d.inspect(ctx)
		if err != nil {
			return
		}
		names := registeredNames(st)
		complete = len(names) >= st.Size
		if last != nil && slices.Equal(names, last) {
			return
		}
		last = append([]string{}, names...)
		who := strings.Join(names, ", ")
		if who == "" {
			who = "none yet"
		}
		s.ev.emit(Event{Step: StepDiscovery, State: StateInfo,
			Message: fmt.Sprintf("%d of %d members registered: %s", len(names), st.Size, who)})
	}
	look()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !complete && sleepCtx(ctx, every) == nil {
			look()
		}
	}()
	return func() { cancel(); <-done }
}

// registeredNames are the member names of the registrations
// (name=peer-url values), in the order they registered.
func registeredNames(st *discovery.V2Status) []string {
	var names []string
	for _, r := range st.Registrations {
		name, _, _ := strings.Cut(r.Value, "=")
		names = append(names, name)
	}
	return names
}
