// Package dnscheck compares the DNS records a dns-srv plan needs with what a
// DNS server really serves, before any member is started: the members look
// the same records up at start (SPEC-etcd.md §6), and a missing record, a
// wrong port or a name that resolves elsewhere stops every one of them, or
// worse, makes them wait for a member that never comes.
package dnscheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"etcdctl-wizard/plan"
)

// Resolver is the part of net.Resolver the check uses.
type Resolver interface {
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Record is one record the plan needs, or one the server has that the plan
// does not expect, with what is wrong with it.
type Record struct {
	// Kind is "SRV", "A" or "AAAA".
	Kind string
	// Name is the SRV name or the host name.
	Name string
	// Want is the record's data: "infra0.example.com.:2380" or "10.0.1.10".
	Want string
	// Problem says what is wrong and what to do; "" when the record is right.
	Problem string
	// Fatal problems stop the bootstrap (server records and the addresses
	// of their targets); problems with client records only hurt clients.
	Fatal bool
}

// OK reports whether the record is published as the plan needs it.
func (r Record) OK() bool { return r.Problem == "" }

// String renders the record as a short line.
func (r Record) String() string {
	return fmt.Sprintf("%-4s %s %s", r.Kind, r.Name, r.Want)
}

// Report is the outcome of Check, in the order of the plan's records.
type Report struct {
	Records []Record
}

// OK reports whether nothing is wrong.
func (r Report) OK() bool { return len(r.Problems()) == 0 }

// Problems lists the records with a problem.
func (r Report) Problems() []Record {
	var out []Record
	for _, rec := range r.Records {
		if !rec.OK() {
			out = append(out, rec)
		}
	}
	return out
}

// Check looks up every record a dns-srv plan needs through r: the server
// and client SRV records (right target, right port, nothing else under the
// server name) and the address of every target. Plans in other modes need
// no records: the report is empty.
func Check(ctx context.Context, p *plan.Plan, r Resolver) Report {
	q := p.WithDefaults()
	if q.Spec.Bootstrap.Mode != plan.ModeDNSSRV {
		return Report{}
	}
	var rep Report
	server, client := q.SRVRecords()
	rep.checkSRV(ctx, r, server, true, "peer")
	rep.checkSRV(ctx, r, client, false, "client")
	for _, m := range q.Spec.Members {
		if m.Hostname != "" {
			rep.checkAddress(ctx, r, m.Name, m.Hostname, m.IP)
		}
	}
	return rep
}

// checkSRV compares the records under one SRV name with the plan's. Extra
// targets under the server name are fatal: etcd puts every target in the
// initial cluster, so the members would wait for a member the plan never
// starts.
func (rep *Report) checkSRV(ctx context.Context, r Resolver, want []plan.SRVRecord, server bool, side string) {
	if len(want) == 0 {
		return
	}
	name := want[0].Name
	_, got, err := r.LookupSRV(ctx, "", "", name)
	published := func(rec plan.SRVRecord) string {
		return fmt.Sprintf("publish `%s 300 IN SRV 0 0 %d %s`", rec.Name, rec.Port, rec.Target)
	}
	matched := make([]bool, len(got))
	for _, w := range want {
		rec := Record{Kind: "SRV", Name: w.Name, Want: net.JoinHostPort(w.Target, strconv.Itoa(w.Port)), Fatal: server}
		var ports []string
		found := false
		for i, g := range got {
			if !sameName(g.Target, w.Target) {
				continue
			}
			if int(g.Port) == w.Port {
				found, matched[i] = true, true
			} else {
				ports = append(ports, strconv.Itoa(int(g.Port)))
			}
		}
		switch {
		case found:
		case len(ports) > 0:
			rec.Problem = fmt.Sprintf("%s names %s on port %s, but the member listens for %ss on %d; change the record's port to %d",
				w.Name, w.Target, strings.Join(ports, ", "), side, w.Port, w.Port)
		case err != nil:
			rec.Problem = fmt.Sprintf("missing: looking up %s failed (%s); %s", w.Name, lookupError(err), published(w))
		default:
			rec.Problem = fmt.Sprintf("missing: %s does not name %s; %s", w.Name, w.Target, published(w))
		}
		rep.Records = append(rep.Records, rec)
	}
	for i, g := range got {
		if matched[i] || slices.ContainsFunc(want, func(w plan.SRVRecord) bool { return sameName(g.Target, w.Target) }) {
			continue
		}
		rec := Record{Kind: "SRV", Name: name, Want: net.JoinHostPort(g.Target, strconv.Itoa(int(g.Port))), Fatal: server}
		if server {
			rec.Problem = fmt.Sprintf("%s also names %s:%d, which is no member of the plan: every member would put it in the initial cluster and wait for it; remove the record or add the host to the plan",
				name, g.Target, g.Port)
		} else {
			rec.Problem = fmt.Sprintf("%s also names %s:%d, which is no member of the plan: clients would try it; remove the record", name, g.Target, g.Port)
		}
		rep.Records = append(rep.Records, rec)
	}
}

// checkAddress makes sure a member's host name resolves to its address:
// the members find themselves in the SRV records by that address.
func (rep *Report) checkAddress(ctx context.Context, r Resolver, member, hostname, ip string) {
	kind := "A"
	if a := net.ParseIP(ip); a != nil && a.To4() == nil {
		kind = "AAAA"
	}
	rec := Record{Kind: kind, Name: hostname, Want: ip, Fatal: true}
	addrs, err := r.LookupHost(ctx, hostname)
	want := net.ParseIP(ip)
	switch {
	case err != nil:
		rec.Problem = fmt.Sprintf("missing: %s does not resolve (%s); publish `%s. 300 IN %s %s`", hostname, lookupError(err), strings.TrimSuffix(hostname, "."), kind, ip)
	case !slices.ContainsFunc(addrs, func(a string) bool { return net.ParseIP(a).Equal(want) }):
		rec.Problem = fmt.Sprintf("%s resolves to %s, not to %s's address %s; fix its %s record", hostname, strings.Join(addrs, ", "), member, ip, kind)
	}
	rep.Records = append(rep.Records, rec)
}

func sameName(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "."), strings.TrimSuffix(b, "."))
}

// lookupError shortens a resolver error to its reason.
func lookupError(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsNotFound:
			return "no such name"
		case de.IsTimeout:
			return "the DNS server did not answer"
		}
		return de.Err
	}
	return err.Error()
}
