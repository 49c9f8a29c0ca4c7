package executor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"etcdctl-wizard/node/discovery"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/facts"
)

// checkDiscovery looks at the plan's etcd discovery token before any host
// is changed, with the same client code the members run: the size key must
// be there (else the guide's "the cluster doesn't have a size configuration
// value" error, which would otherwise stop every member at start), its
// size must match the plan, and the token must not be in use already. The
// service is asked through the host t, since the members reach it from
// there, not necessarily from this machine.
func checkDiscovery(ctx context.Context, q *plan.Plan, t remote.Transport) []facts.Problem {
	d := q.Spec.Bootstrap.Discovery
	if q.Spec.Bootstrap.Mode != plan.ModeDiscovery || d.URL == "" || t == nil {
		return nil
	}
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return t.Dial(ctx, network, addr)
		}},
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	st, err := discovery.InspectV2(ctx, d.URL, d.Proxy, client)
	if err != nil {
		return []facts.Problem{{Host: t.String(), Fatal: true,
			Message: fmt.Sprintf("discovery token %s: %v; create it with `curl -X PUT %s/_config/size -d value=%d` or pick a new token", d.URL, err, d.URL, len(q.Spec.Members))}}
	}
	var problems []facts.Problem
	if st.Size != len(q.Spec.Members) {
		problems = append(problems, facts.Problem{Host: t.String(), Fatal: true,
			Message: fmt.Sprintf("discovery token %s expects %d members but the plan has %d; use a token created for %d", d.URL, st.Size, len(q.Spec.Members), len(q.Spec.Members))})
	}
	if n := len(st.Registrations); n > 0 {
		problems = append(problems, facts.Problem{Host: t.String(), Fatal: true,
			Message: fmt.Sprintf("discovery token %s already has %d registration(s): a token bootstraps one cluster once; create a new token", d.URL, n)})
	}
	return problems
}
