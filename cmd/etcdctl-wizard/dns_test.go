package main

import (
	"fmt"
	"strings"
	"testing"

	"etcdctl-wizard/node/discovery/dnstest"
)

func TestDNSRecordsAndCheck(t *testing.T) {
	const planFile = "../../testdata/plans/dns-srv-hostnames.yaml"
	code, out, errOut := runCLI(t, "", "dns", "records", "-f", planFile)
	if code != 0 || !strings.Contains(out, "_etcd-server._tcp.example.com. 300 IN SRV 0 0 2380 infra0.example.com.\n") ||
		!strings.Contains(out, "infra2.example.com. 300 IN A 10.0.1.12") {
		t.Fatalf("dns records: exit %d\n%s%s", code, out, errOut)
	}

	// A real DNS server with the guide's records, infra2's A record missing
	// and no client records.
	s := dnstest.Start(t)
	for i, h := range []string{"infra0", "infra1", "infra2"} {
		s.AddSRV(dnstest.SRV{Name: "_etcd-server._tcp.example.com", Target: h + ".example.com", Port: 2380})
		if i < 2 {
			s.AddA(h+".example.com", fmt.Sprintf("10.0.1.%d", 10+i))
		}
	}
	code, out, errOut = runCLI(t, "", "dns", "check", "-f", planFile, "--server", s.Addr)
	if code != 1 || !strings.Contains(out, "ok       SRV  _etcd-server._tcp.example.com. infra0.example.com.:2380") ||
		!strings.Contains(out, "error    A    infra2.example.com 10.0.1.12\n         missing: infra2.example.com does not resolve") ||
		!strings.Contains(out, "warning  SRV  _etcd-client._tcp.example.com. infra1.example.com.:2379") ||
		!strings.Contains(errOut, "1 record would stop the members at start") {
		t.Fatalf("dns check with a missing A record: exit %d\n%s%s", code, out, errOut)
	}
	s.AddA("infra2.example.com", "10.0.1.12")
	if code, out, errOut = runCLI(t, "", "dns", "check", "-f", planFile, "--server", s.Addr); code != 0 || strings.Contains(out, "error") {
		t.Fatalf("dns check with every server record: exit %d\n%s%s", code, out, errOut)
	}

	if code, _, errOut = runCLI(t, "", "dns", "check", "-f", "../../testdata/plans/static.yaml"); code != 1 || !strings.Contains(errOut, `spec.bootstrap.mode is "static": only dns-srv plans need DNS records`) {
		t.Fatalf("static plan: exit %d %q", code, errOut)
	}
	if code, _, errOut = runCLI(t, "", "dns", "check", "-f", planFile, "--server", "dns.example.com"); code != 1 || !strings.Contains(errOut, "give the DNS server's IP address") {
		t.Fatalf("server by name: exit %d %q", code, errOut)
	}
}
