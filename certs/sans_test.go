package certs

import (
	"slices"
	"strings"
	"testing"
)

func TestSANsForMember(t *testing.T) {
	for _, tc := range []struct {
		name              string
		ip, hostname      string
		listen, advertise []string
		srv               string
		wantIPs, wantDNS  []string
	}{
		{name: "ip only", ip: "10.0.1.10", wantIPs: []string{"10.0.1.10"}},
		{name: "guide static", ip: "10.0.1.10", hostname: "infra0.example.com",
			listen: []string{"http://10.0.1.10:2379", "http://127.0.0.1:2379"}, advertise: []string{"http://10.0.1.10:2379"},
			wantIPs: []string{"10.0.1.10", "127.0.0.1"}, wantDNS: []string{"infra0.example.com", "localhost"}},
		{name: "guide dns srv", ip: "10.0.1.10", hostname: "infra0.example.com",
			listen: []string{"https://10.0.1.10:2380"}, advertise: []string{"https://infra0.example.com:2380"}, srv: "example.com",
			wantIPs: []string{"10.0.1.10"}, wantDNS: []string{"infra0.example.com", "example.com"}},
		{name: "srv domain with trailing dot and case", ip: "10.0.1.10", srv: "Example.COM.",
			wantIPs: []string{"10.0.1.10"}, wantDNS: []string{"example.com"}},
		{name: "0.0.0.0 and :: are never SANs", ip: "10.0.1.10",
			listen: []string{"http://0.0.0.0:2379", "http://[::]:2380", "0.0.0.0"}, advertise: []string{"10.0.1.10:2379"},
			wantIPs: []string{"10.0.1.10"}},
		{name: "unspecified member ip", ip: "0.0.0.0", hostname: "h", wantDNS: []string{"h"}},
		{name: "localhost brings 127.0.0.1", ip: "10.0.1.10", listen: []string{"http://localhost:2379"},
			wantIPs: []string{"10.0.1.10", "127.0.0.1"}, wantDNS: []string{"localhost"}},
		{name: "ipv6 loopback", ip: "fd00::10", listen: []string{"https://[fd00::10]:2379", "https://[::1]:2379"},
			wantIPs: []string{"fd00::10", "::1"}, wantDNS: []string{"localhost"}},
		{name: "duplicates and host:port", ip: "10.0.1.10", hostname: "infra0.example.com",
			listen: []string{"10.0.1.10:2380", "10.0.1.10"}, advertise: []string{"INFRA0.example.com.", "infra0.example.com:2379"},
			wantIPs: []string{"10.0.1.10"}, wantDNS: []string{"infra0.example.com"}},
		{name: "empty entries", ip: "10.0.1.10", listen: []string{"", " "}, advertise: []string{""},
			wantIPs: []string{"10.0.1.10"}},
	} {
		gotIPs, gotDNS := SANsForMember(tc.ip, tc.hostname, tc.listen, tc.advertise, tc.srv)
		if s := ipStrings(gotIPs); !slices.Equal(s, tc.wantIPs) {
			t.Errorf("%s: IPs %v, want %v", tc.name, s, tc.wantIPs)
		}
		if !slices.Equal(gotDNS, tc.wantDNS) {
			t.Errorf("%s: DNS %v, want %v", tc.name, gotDNS, tc.wantDNS)
		}
		for _, ip := range gotIPs {
			if ip.IsUnspecified() {
				t.Errorf("%s: unspecified address %s in SANs", tc.name, ip)
			}
		}
		// Whatever SANsForMember derives, Issue accepts.
		if len(gotIPs)+len(gotDNS) > 0 {
			if _, _, err := normalizeSANs(gotIPs, gotDNS); err != nil {
				t.Errorf("%s: derived SANs rejected: %v", tc.name, err)
			}
		}
	}
}

func TestHostsOfURLs(t *testing.T) {
	got, err := HostsOfURLs("https://10.0.1.10:2380,https://127.0.0.1:2380", "", "https://[::1]:2379", "http://infra0.example.com:2379")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.1.10", "127.0.0.1", "::1", "infra0.example.com"}
	if !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
	for _, bad := range []string{"10.0.1.10:2380", "http://%zz", "https://"} {
		if _, err := HostsOfURLs(bad); err == nil || !strings.Contains(err.Error(), "scheme://host:port") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestValidateDNSName(t *testing.T) {
	for _, ok := range []string{"localhost", "infra0.example.com", "*.example.com", "a-b.c_d.e", "x1"} {
		if err := validateDNSName(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "a.*.b", "-a.b", "a-.b", "a b", "a..b", "ä.de", strings.Repeat("a", 64) + ".b", strings.Repeat("a.", 127) + "ab"} {
		if err := validateDNSName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
