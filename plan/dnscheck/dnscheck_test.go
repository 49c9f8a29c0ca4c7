package dnscheck

import (
	"context"
	"strings"
	"testing"

	"etcdctl-wizard/node/discovery/dnstest"
	"etcdctl-wizard/plan"
)

func guidePlan(t *testing.T) *plan.Plan {
	t.Helper()
	p, err := plan.Load("../../testdata/plans/dns-srv-hostnames.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// publish serves the records the plan asks for on a real DNS server
// (loopback), except the ones skip says no to.
func publish(t *testing.T, p *plan.Plan, skip func(kind, name, target string) bool) *dnstest.Server {
	t.Helper()
	s := dnstest.Start(t)
	server, client := p.SRVRecords()
	for _, r := range append(server, client...) {
		if !skip("SRV", r.Name, r.Target) {
			s.AddSRV(dnstest.SRV{Name: r.Name, Target: r.Target, Port: uint16(r.Port)})
		}
	}
	for _, m := range p.Spec.Members {
		if !skip("A", m.Hostname, m.IP) {
			s.AddA(m.Hostname, m.IP)
		}
	}
	return s
}

func none(string, string, string) bool { return false }

func problems(rep Report) string {
	var b strings.Builder
	for _, r := range rep.Problems() {
		b.WriteString(r.String() + ": " + r.Problem + "\n")
	}
	return b.String()
}

func TestAllPublished(t *testing.T) {
	p := guidePlan(t)
	s := publish(t, p, none)
	rep := Check(context.Background(), p, s.Resolver())
	if !rep.OK() || len(rep.Records) != 9 {
		t.Fatalf("want 9 records, all right; got %d:\n%s", len(rep.Records), problems(rep))
	}
}

func TestServiceNameAndTLS(t *testing.T) {
	p := guidePlan(t)
	p.Spec.TLS.Mode = plan.TLSAuto
	p.Spec.Bootstrap.DNSSRV.ServiceName = "cluster1"
	s := dnstest.Start(t)
	// Published under the name without the service suffix: etcd would not
	// find them with --discovery-srv-name cluster1.
	for _, m := range p.Spec.Members {
		s.AddSRV(dnstest.SRV{Name: "_etcd-server-ssl._tcp.example.com", Target: m.Hostname, Port: 2380})
		s.AddA(m.Hostname, m.IP)
	}
	rep := Check(context.Background(), p, s.Resolver())
	got := problems(rep)
	for _, want := range []string{
		"missing: looking up _etcd-server-ssl-cluster1._tcp.example.com. failed (no such name); publish `_etcd-server-ssl-cluster1._tcp.example.com. 300 IN SRV 0 0 2380 infra0.example.com.`",
		"_etcd-client-ssl-cluster1._tcp.example.com.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in\n%s", want, got)
		}
	}
	if n := len(rep.Problems()); n != 6 {
		t.Errorf("want the 6 SRV records reported, got %d:\n%s", n, got)
	}
}

func TestWrongPortExtraTargetAndAddress(t *testing.T) {
	p := guidePlan(t)
	s := publish(t, p, func(kind, name, target string) bool {
		return (kind == "SRV" && strings.HasPrefix(name, "_etcd-server.") && target == "infra1.example.com.") ||
			(kind == "A" && name == "infra2.example.com") || (kind == "A" && name == "infra1.example.com")
	})
	s.AddSRV(dnstest.SRV{Name: "_etcd-server._tcp.example.com", Target: "infra1.example.com", Port: 2390})
	s.AddSRV(dnstest.SRV{Name: "_etcd-server._tcp.example.com", Target: "infra9.example.com", Port: 2380})
	s.AddA("infra1.example.com", "10.0.1.99")
	rep := Check(context.Background(), p, s.Resolver())
	got := problems(rep)
	for _, want := range []string{
		"_etcd-server._tcp.example.com. names infra1.example.com. on port 2390, but the member listens for peers on 2380; change the record's port to 2380",
		"_etcd-server._tcp.example.com. also names infra9.example.com.:2380, which is no member of the plan: every member would put it in the initial cluster and wait for it",
		"infra1.example.com resolves to 10.0.1.99, not to infra1's address 10.0.1.11; fix its A record",
		"missing: infra2.example.com does not resolve (no such name); publish `infra2.example.com. 300 IN A 10.0.1.12`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q in\n%s", want, got)
		}
	}
	if n := len(rep.Problems()); n != 4 {
		t.Errorf("want 4 problems, got %d:\n%s", n, got)
	}
	for _, r := range rep.Problems() {
		if !r.Fatal {
			t.Errorf("not fatal: %s", r.Problem)
		}
	}
}

func TestClientRecordProblemsAreWarnings(t *testing.T) {
	p := guidePlan(t)
	s := publish(t, p, func(kind, name, _ string) bool { return kind == "SRV" && strings.HasPrefix(name, "_etcd-client") })
	rep := Check(context.Background(), p, s.Resolver())
	if n := len(rep.Problems()); n != 3 {
		t.Fatalf("want 3 client records missing:\n%s", problems(rep))
	}
	for _, r := range rep.Problems() {
		if r.Fatal {
			t.Errorf("a missing client record stops nothing: %s", r.Problem)
		}
	}
}

func TestOtherModesNeedNoRecords(t *testing.T) {
	p, err := plan.Load("../../testdata/plans/static.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if rep := Check(context.Background(), p, dnstest.Start(t).Resolver()); len(rep.Records) != 0 {
		t.Fatalf("static plan: %+v", rep)
	}
}
