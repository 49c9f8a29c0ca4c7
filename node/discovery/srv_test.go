package discovery

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/discovery/dnstest"
)

func guideDNS(t *testing.T, service string) *dnstest.Server {
	t.Helper()
	d := dnstest.Start(t)
	for i := 0; i < 3; i++ {
		host := fmt.Sprintf("infra%d.example.test", i)
		d.AddSRV(dnstest.SRV{Name: service + ".example.test", Target: host, Port: uint16(2380 + i)})
		d.AddA(host, "127.0.0.1")
	}
	return d
}

func srvCfg(d *dnstest.Server, name, advertise string) SRV {
	urls, err := config.ParseURLs(advertise)
	if err != nil {
		panic(err)
	}
	return SRV{Domain: "example.test", Name: name, AdvertisePeerURLs: urls, Resolver: d.Resolver()}
}

func TestSRVCluster(t *testing.T) {
	ctx := context.Background()
	d := guideDNS(t, "_etcd-server._tcp")
	want := "0=http://infra0.example.test:2380,1=http://infra2.example.test:2382,infra1=http://infra1.example.test:2381"
	// The advertise URL as an IP and as a name resolve to the same record.
	for _, adv := range []string{"http://127.0.0.1:2381", "http://infra1.example.test:2381"} {
		res, err := SRVCluster(ctx, srvCfg(d, "infra1", adv))
		if err != nil || res.Cluster != want || res.HTTPS {
			t.Fatalf("%s: %+v %v", adv, res, err)
		}
	}
	// Self not among the records.
	if _, err := SRVCluster(ctx, srvCfg(d, "infra9", "http://127.0.0.1:2999")); err == nil ||
		err.Error() != `error setting up initial cluster: cannot find local etcd member "infra9" in SRV records` {
		t.Fatalf("not listed: %v", err)
	}
	// --discovery-srv-name selects other records.
	c := srvCfg(d, "infra1", "http://127.0.0.1:2381")
	c.ServiceName = "custom"
	if _, err := SRVCluster(ctx, c); err == nil || !strings.Contains(err.Error(), "error querying DNS SRV records for _etcd-server-ssl-custom") ||
		!strings.Contains(err.Error(), "error querying DNS SRV records for _etcd-server-custom") {
		t.Fatalf("no custom records: %v", err)
	}
	dc := guideDNS(t, "_etcd-server-custom._tcp")
	c = srvCfg(dc, "infra1", "http://127.0.0.1:2381")
	c.ServiceName = "custom"
	if res, err := SRVCluster(ctx, c); err != nil || res.Cluster != want {
		t.Fatalf("custom: %+v %v", res, err)
	}
}

func TestSRVClusterTLSAndMismatch(t *testing.T) {
	ctx := context.Background()
	d := guideDNS(t, "_etcd-server-ssl._tcp")
	res, err := SRVCluster(ctx, srvCfg(d, "infra0", "https://127.0.0.1:2380"))
	if err != nil || !res.HTTPS || !strings.Contains(res.Cluster, "infra0=https://infra0.example.test:2380") {
		t.Fatalf("ssl: %+v %v", res, err)
	}
	// Self advertises http but is listed as https: dropped, with etcd's words.
	_, err = SRVCluster(ctx, srvCfg(d, "infra0", "http://127.0.0.1:2380"))
	if err == nil || !strings.Contains(err.Error(), "cannot find local etcd member \"infra0\"") {
		t.Fatalf("mismatch: %v", err)
	}
	// A target that does not resolve, and nothing else.
	bad := dnstest.Start(t)
	bad.AddSRV(dnstest.SRV{Name: "_etcd-server._tcp.example.test", Target: "nowhere.example.test", Port: 2380})
	_, err = SRVCluster(ctx, srvCfg(bad, "infra0", "http://127.0.0.1:2380"))
	if err == nil || !strings.HasPrefix(err.Error(), "error setting up initial cluster: ") || !strings.Contains(err.Error(), "nowhere.example.test:2380 of _etcd-server._tcp.example.test does not resolve") {
		t.Fatalf("nowhere: %v", err)
	}
	// An advertise URL that does not resolve.
	if _, err := SRVCluster(ctx, srvCfg(bad, "infra0", "http://unknown.example.test:2380")); err == nil || !strings.Contains(err.Error(), "cannot resolve --initial-advertise-peer-urls") {
		t.Fatalf("advertise: %v", err)
	}
}

func TestCheckDuplicateURLs(t *testing.T) {
	if err := CheckDuplicateURLs("a=http://127.0.0.1:1,b=http://127.0.0.1:1"); err == nil || err.Error() != "discovery cluster a=http://127.0.0.1:1,b=http://127.0.0.1:1 has duplicate url" {
		t.Fatal(err)
	}
	if err := CheckDuplicateURLs("a=http://127.0.0.1:1,b=http://127.0.0.1:2"); err != nil {
		t.Fatal(err)
	}
}

func TestSRVClients(t *testing.T) {
	d := dnstest.Start(t)
	d.AddSRV(dnstest.SRV{Name: "_etcd-client-ssl._tcp.example.test", Target: "infra0.example.test", Port: 2379},
		dnstest.SRV{Name: "_etcd-client._tcp.example.test", Target: "infra1.example.test", Port: 2379})
	eps, err := SRVClients(context.Background(), d.Resolver(), "etcd-client", "example.test", "")
	if err != nil || strings.Join(eps, ",") != "https://infra0.example.test.:2379,http://infra1.example.test.:2379" {
		t.Fatalf("%q %v", eps, err)
	}
	if _, err := SRVClients(context.Background(), d.Resolver(), "etcd-client", "example.test", "other"); err == nil || !strings.HasPrefix(err.Error(), "dns lookup errors: ") {
		t.Fatalf("none: %v", err)
	}
}
