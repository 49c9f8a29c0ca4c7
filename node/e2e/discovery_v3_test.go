package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdctl-wizard/node/config"
	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/node/nodetest/proc"
)

// registrations lists the v3 discovery registrations of token.
func registrations(t *testing.T, cli *clientv3.Client, token string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/_etcd/registry/"+token+"/members/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		out = append(out, strings.TrimPrefix(string(kv.Key), "/_etcd/registry/"+token+"/members/")+" "+string(kv.Value))
	}
	sort.Strings(out)
	return out
}

func putSize(t *testing.T, cli *clientv3.Client, token, size string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/_etcd/registry/"+token+"/_config/size", size); err != nil {
		t.Fatal(err)
	}
}

// TestDiscoveryV3AgainstUpstream bootstraps a cluster with v3 discovery
// against an upstream etcd v3.7.3 discovery service: three etcd-node members
// register under the token in upstream's format and form one cluster, with
// the member IDs upstream computes (token = --discovery-token).
func TestDiscoveryV3AgainstUpstream(t *testing.T) {
	bin := nodetest.BuildNode(t)
	etcd, _ := nodetest.Upstream(t)
	ds := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: etcd, Size: 1})
	testDiscoveryV3(t, bin, ds)
}

// TestDiscoveryV3ServedByEtcdNode is the other way round: an etcd-node
// cluster is the v3 discovery service (its KV and Watch), first for three
// upstream etcd v3.7.3 members, whose discovery client waits for its peers
// with a Watch, then for etcd-node members.
func TestDiscoveryV3ServedByEtcdNode(t *testing.T) {
	bin := nodetest.BuildNode(t)
	etcd, _ := nodetest.Upstream(t)
	ds := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: bin, Size: 1})
	putSize(t, ds.Client(t), "upstream-3", "3")
	var endpoints []string
	var ms []*nodetest.Member
	for i := 0; i < 3; i++ {
		spec := nodetest.NewMemberSpec(t, fmt.Sprintf("etcd%d", i))
		endpoints = append(endpoints, spec.ClientURL)
		ms = append(ms, nodetest.StartMember(t, nodetest.MemberOptions{Spec: spec, Binary: etcd,
			Args: append(memberFlags(spec), "--discovery-endpoints", ds.Member(0).ClientURL(), "--discovery-token", "upstream-3")}))
	}
	for _, m := range ms {
		m.WaitHealthy()
	}
	if out, errOut, err := nodetest.Etcdctl(t, endpoints, "member", "list"); err != nil || strings.Count(out, "started") != 3 {
		t.Fatalf("upstream members bootstrapped through etcd-node: %v\n%s%s", err, out, errOut)
	}
	testDiscoveryV3(t, bin, ds)
}

// testDiscoveryV3 bootstraps three etcd-node members through the v3
// discovery service ds, then checks its refusals.
func testDiscoveryV3(t *testing.T, bin string, ds *nodetest.Cluster) {
	t.Helper()
	dsCli := ds.Client(t)
	putSize(t, dsCli, "tok-3", "3")

	var specs []proc.MemberSpec
	var ms []*nodetest.Member
	for i := 0; i < 3; i++ {
		spec := nodetest.NewMemberSpec(t, fmt.Sprintf("infra%d", i))
		specs = append(specs, spec)
		ms = append(ms, nodetest.StartMember(t, nodetest.MemberOptions{Spec: spec, Binary: bin,
			Args: append(memberFlags(spec), "--discovery-endpoints", ds.Member(0).ClientURL(), "--discovery-token", "tok-3")}))
	}
	for _, m := range ms {
		m.WaitHealthy()
	}
	regs := registrations(t, dsCli, "tok-3")
	var want []string
	for _, s := range specs {
		want = append(want, config.IDString(config.MemberID([]string{s.PeerURL}, "tok-3", nil))+" "+s.Name+"="+s.PeerURL)
	}
	sort.Strings(want)
	if strings.Join(regs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("registrations:\n%s\nwant:\n%s", strings.Join(regs, "\n"), strings.Join(want, "\n"))
	}
	endpoints := []string{specs[0].ClientURL, specs[1].ClientURL, specs[2].ClientURL}
	out, errOut, err := nodetest.Etcdctl(t, endpoints, "member", "list")
	if err != nil || strings.Count(out, "started") != 3 {
		t.Fatalf("member list: %v\n%s%s", err, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(out, strings.Fields(w)[0]) {
			t.Fatalf("member list lacks ID %s:\n%s", strings.Fields(w)[0], out)
		}
	}
	if out, errOut, err := nodetest.Etcdctl(t, endpoints, "put", "k", "v"); err != nil {
		t.Fatalf("put: %v %s%s", err, out, errOut)
	}

	// Bad input: no size key, a full token, garbage registrations.
	run := func(token string) (int, string) {
		spec := nodetest.NewMemberSpec(t, "infra9")
		return nodetest.RunExpectExit(t, bin, append(memberFlags(spec), "--discovery-endpoints", ds.Member(0).ClientURL(), "--discovery-token", token), nil, 60*time.Second)
	}
	prog := filepath.Base(bin)
	if code, out := run("nosize"); code != 1 || !strings.Contains(out, prog+": failed to join discovery cluster (discovery: size key not found (/_etcd/registry/nosize/_config/size))") {
		t.Fatalf("no size: exit %d\n%s", code, out)
	}
	if code, out := run("tok-3"); code != 1 || !strings.Contains(out, "failed to join discovery cluster (discovery: cluster is full)") {
		t.Fatalf("full: exit %d\n%s", code, out)
	}
	putSize(t, dsCli, "junk", "3")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := dsCli.Put(ctx, "/_etcd/registry/junk/members/1", "garbage"); err != nil {
		t.Fatal(err)
	}
	if code, out := run("junk"); code != 1 || !strings.Contains(out, "invalid peer info returned from discovery service") {
		t.Fatalf("junk: exit %d\n%s", code, out)
	}
	if regs := registrations(t, dsCli, "junk"); len(regs) != 1 {
		t.Fatalf("something was registered: %q", regs)
	}
}

// TestDiscoveryV3TLS is v3 discovery against an upstream etcd v3.7.3
// serving clients over TLS: the members trust its CA with
// --discovery-cacert; without it they fail and exit 1.
func TestDiscoveryV3TLS(t *testing.T) {
	bin := nodetest.BuildNode(t)
	etcd, _ := nodetest.Upstream(t)
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	cert, key := ca.member(t, dir, "ds")
	dsSpec := nodetest.NewMemberSpec(t, "ds")
	metrics := nodetest.NewMemberSpec(t, "ds-metrics").ClientURL
	https := strings.Replace(dsSpec.ClientURL, "http://", "https://", 1)
	health := dsSpec
	health.ClientURL = metrics
	ds := nodetest.StartMember(t, nodetest.MemberOptions{Spec: health, Binary: etcd, Args: []string{
		"--name", "ds", "--data-dir", dsSpec.DataDir,
		"--listen-peer-urls", dsSpec.PeerURL, "--initial-advertise-peer-urls", dsSpec.PeerURL,
		"--initial-cluster", "ds=" + dsSpec.PeerURL,
		"--listen-client-urls", https, "--advertise-client-urls", https, "--listen-metrics-urls", metrics,
		"--cert-file", cert, "--key-file", key,
	}})
	ds.WaitHealthy()
	if out, err := tlsCtl(t, []string{https}, []string{"--cacert", ca.path}, "put", "/_etcd/registry/tls-tok/_config/size", "1"); err != nil {
		t.Fatalf("size: %v %s", err, out)
	}
	// Without the CA the certificate is not trusted.
	spec := nodetest.NewMemberSpec(t, "infra0")
	flags := append(memberFlags(spec), "--discovery-endpoints", https, "--discovery-token", "tls-tok",
		"--discovery-insecure-transport=false", "--discovery-dial-timeout", "1s", "--discovery-request-timeout", "1s")
	m := nodetest.StartMember(t, nodetest.MemberOptions{Spec: spec, Binary: bin, Args: flags})
	// It keeps retrying (as etcd does) and says why.
	waitLog(t, m, "retry connecting to discovery service", "x509")
	m.Kill()
	// With the CA it bootstraps.
	spec = nodetest.NewMemberSpec(t, "infra0")
	m = nodetest.StartMember(t, nodetest.MemberOptions{Spec: spec, Binary: bin,
		Args: append(memberFlags(spec), "--discovery-endpoints", https, "--discovery-token", "tls-tok", "--discovery-cacert", ca.path)})
	m.WaitHealthy()
	out, err := tlsCtl(t, []string{https}, []string{"--cacert", ca.path}, "get", "--prefix", "/_etcd/registry/tls-tok/members/")
	if err != nil || !strings.Contains(out, "infra0="+spec.PeerURL) {
		t.Fatalf("registration: %v %s", err, out)
	}
}

// waitLog waits until the member's log holds all of want.
func waitLog(t *testing.T, m *nodetest.Member, want ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		logs := m.Logs()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(logs, w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log of %s lacks %q:\n%s", m.Name(), want, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
