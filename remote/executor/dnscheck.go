package executor

import (
	"context"
	"fmt"
	"time"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/plan/dnscheck"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/facts"
)

// checkDNS looks up the records of a dns-srv plan before any host is
// changed, from the host t (through its /etc/hosts and nameserver, or the
// given server), because the members resolve them there at start. Server
// record problems are fatal; client record problems are warnings.
func checkDNS(ctx context.Context, q *plan.Plan, t remote.Transport, server string) []facts.Problem {
	if q.Spec.Bootstrap.Mode != plan.ModeDNSSRV || t == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	r, err := remote.NewHostResolver(ctx, t, server)
	if err != nil {
		return []facts.Problem{{Host: t.String(), Fatal: true, Message: fmt.Sprintf("DNS SRV check: %v", err)}}
	}
	var problems []facts.Problem
	for _, rec := range dnscheck.Check(ctx, q, r).Problems() {
		problems = append(problems, facts.Problem{Host: "dns", Fatal: rec.Fatal,
			Message: fmt.Sprintf("%s (asked %s from %s)", rec.Problem, r.Server, t)})
	}
	return problems
}

// checkCertificates refuses member certificates the members would refuse
// (wrong SANs, the SRV domain missing, expired, another CA) before they are
// uploaded.
func checkCertificates(p *plan.Plan, baseDir string) []facts.Problem {
	var problems []facts.Problem
	for _, f := range plan.ValidateCertificates(p, baseDir) {
		problems = append(problems, facts.Problem{Host: f.Member, Fatal: f.Severity == plan.SeverityError,
			Message: f.Message + "; " + f.Hint})
	}
	return problems
}
