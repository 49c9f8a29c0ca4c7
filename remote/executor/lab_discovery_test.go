package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote/discoverytoken"
)

// discoveryLabPlan is a plan for the lab hosts named in members (infraN at
// 10.0.1.1N) with the given bootstrap section.
func discoveryLabPlan(t testing.TB, name, bootstrap string, members ...int) *plan.Plan {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: etcdctl-wizard/v1\nkind: Cluster\nmetadata:\n  name: %s\nspec:\n  bootstrap:\n%s  tls:\n    mode: none\n  node:\n    dataDir: \"\"\n  members:\n", name, bootstrap)
	for _, i := range members {
		fmt.Fprintf(&b, "    - name: infra%d\n      ip: 10.0.1.%d\n", i, 10+i)
	}
	p, err := plan.LoadReader(strings.NewReader(b.String()), name+".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLabDiscovery is the guide's custom discovery service over SSH: a
// 1-member etcd-node cluster on infra3 serves discovery; a fresh token;
// apply of a 3-member discovery plan on infra0..2, following the
// registrations live; the registrations read with curl on a host; a member
// killed and restarted by its supervisor ignores the used token with etcd's
// warning; a re-apply changes nothing. And the guide's error, a token
// without a size key, stops apply before any host is changed.
func TestLabDiscovery(t *testing.T) {
	e := newLabEnv(t, 4)
	_, etcdctl := nodetest.Upstream(t)
	ctx := context.Background()

	service := discoveryLabPlan(t, "discovery-service", "    mode: static\n", 3)
	if _, err := Apply(ctx, service, e.options()); err != nil {
		t.Fatalf("apply of the discovery service: %v", err)
	}
	const serviceURL = "http://10.0.1.13:2379"
	labHTTP := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: e.lab.Dial}}

	// The guide's error first: no size key under the token.
	missing := serviceURL + "/v2/keys/discovery/6c007a14875d53d9bf0ef5a6fc0257c817f0fb83"
	p := discoveryLabPlan(t, "etcd-cluster-1", "    mode: discovery\n    discovery:\n      url: "+missing+"\n", 0, 1, 2)
	_, err := Apply(ctx, p, e.options())
	var pe *PreflightError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "error: the cluster doesn't have a size configuration value in "+missing+"/_config") {
		t.Fatalf("apply with a token without size: %v", err)
	}
	e.hostsUntouched(t, e.lab.Hosts[:3]...)

	token, err := discoverytoken.New(ctx, labHTTP, serviceURL, 3)
	if err != nil {
		t.Fatal(err)
	}
	p = discoveryLabPlan(t, "etcd-cluster-1", "    mode: discovery\n    discovery:\n      url: "+token+"\n      size: 3\n", 0, 1, 2)
	n0 := len(e.events.all())
	if _, err := Apply(ctx, p, e.options()); err != nil {
		t.Fatalf("apply in discovery mode: %v", err)
	}
	var registered []string
	for _, ev := range e.events.all()[n0:] {
		if ev.Step == StepDiscovery {
			registered = append(registered, ev.Message)
		}
	}
	t.Logf("registrations as apply saw them: %q", registered)
	if len(registered) < 2 || !strings.HasPrefix(registered[len(registered)-1], "3 of 3 members registered: ") ||
		registered[0] != "0 of 3 members registered: none yet" {
		t.Errorf("registrations not followed live: %q", registered)
	}
	for _, n := range []string{"infra0", "infra1", "infra2"} {
		if !strings.Contains(registered[len(registered)-1], n) {
			t.Errorf("%s missing from %q", n, registered[len(registered)-1])
		}
	}

	endpoints := "--endpoints=http://10.0.1.10:2379,http://10.0.1.11:2379,http://10.0.1.12:2379"
	if out := e.etcdctl(t, etcdctl, endpoints, "endpoint", "health"); strings.Count(out, "is healthy") != 3 {
		t.Fatalf("etcdctl endpoint health:\n%s", out)
	}
	list := e.etcdctl(t, etcdctl, endpoints, "member", "list")
	for i := 0; i < 3; i++ {
		if !strings.Contains(list, fmt.Sprintf("infra%d, http://10.0.1.1%d:2380", i, i)) {
			t.Errorf("member list lacks infra%d:\n%s", i, list)
		}
	}
	// The guide reads the token with curl; so does an operator on a host.
	tokenPath := strings.TrimPrefix(token, serviceURL)
	out := e.lab.Hosts[0].MustExec(t, "curl -sS "+serviceURL+tokenPath)
	var dir struct {
		Node struct {
			Nodes []struct{ Key, Value string }
		}
	}
	if err := json.Unmarshal([]byte(out), &dir); err != nil {
		t.Fatalf("curl %s: %v\n%s", token, err, out)
	}
	var values []string
	for _, n := range dir.Node.Nodes {
		values = append(values, n.Value)
	}
	slices.Sort(values)
	if got := strings.Join(values, " "); got != "infra0=http://10.0.1.10:2380 infra1=http://10.0.1.11:2380 infra2=http://10.0.1.12:2380" {
		t.Errorf("registrations read with curl: %s\n%s", got, out)
	}

	// A write, then infra1 killed: its supervisor starts it again with the
	// same flags, discovery URL included; it keeps its data and says so.
	e.etcdctl(t, etcdctl, endpoints, "put", "guide", "discovery")
	infra1 := e.lab.Hosts[1]
	infra1.MustExec(t, "kill -9 $(cat /run/etcd-node.pid.child)")
	want := "discovery token ignored since a cluster has already been initialized. Valid log found at "
	waitFor(t, func() bool {
		log, err := infra1.Exec(ctx, "cat /var/log/etcd-node.log")
		return err == nil && strings.Contains(log, want)
	})
	waitFor(t, func() bool {
		c, err := e.lab.Dial(ctx, "tcp", net.JoinHostPort(infra1.IP, "2379"))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	if out := e.etcdctl(t, etcdctl, "--endpoints=http://10.0.1.11:2379", "get", "guide", "--print-value-only"); strings.TrimSpace(out) != "discovery" {
		t.Errorf("infra1 after its restart reads %q", out)
	}
	// A re-apply: the used token is no reason to refuse, nothing changes.
	res, err := Apply(ctx, p, e.options())
	if err != nil {
		t.Fatalf("re-apply of the discovery plan: %v", err)
	}
	if changed, uploads, restarts := res.Changes(); changed+uploads+restarts != 0 {
		t.Errorf("re-apply changed %d steps, %d uploads, %d restarts", changed, uploads, restarts)
	}
}
