package config

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMemberAndClusterIDVectors(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		id := MemberID([]string{"http://localhost:2380"}, "etcd-cluster", nil)
		if got := IDString(id); got != "8e9e05c52164694d" {
			t.Fatalf("member id = %s", got)
		}
		if got := IDString(ClusterID([]uint64{id})); got != "cdf818194e3a8c32" {
			t.Fatalf("cluster id = %s", got)
		}
	})
	t.Run("guide three members", func(t *testing.T) {
		want := []string{"140fedbeeb74765d", "d5dc5f8d75d04e29", "8a0a11c6194fc77"}
		var ids []uint64
		for i, w := range want {
			u := "http://10.0.1.1" + string(rune('0'+i)) + ":2380"
			id := MemberID([]string{u}, "etcd-cluster-1", nil)
			if IDString(id) != w {
				t.Errorf("member %d id = %s, want %s", i, IDString(id), w)
			}
			ids = append(ids, id)
		}
		if got := IDString(ClusterID(ids)); got != "acccc8912db0cd57" {
			t.Fatalf("cluster id = %s", got)
		}
	})
	t.Run("upstream member_test vectors", func(t *testing.T) {
		tm := time.Date(1984, 12, 23, 15, 4, 5, 0, time.UTC)
		cases := []struct {
			urls  []string
			token string
			t     *time.Time
			want  uint64
		}{
			{[]string{"http://10.0.0.8:2379"}, "", nil, 14544069596553697298},
			{[]string{"http://10.0.0.8:2379"}, "", &tm, 2448790162483548276},
			{[]string{"http://10.0.0.8:2379"}, "etcd", &tm, 6973882743191604649},
			{[]string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}, "", nil, 16552244735972308939},
			{[]string{"http://10.0.0.2:2379", "http://10.0.0.1:2379"}, "", nil, 16552244735972308939},
		}
		for _, c := range cases {
			if got := MemberID(c.urls, c.token, c.t); got != c.want {
				t.Errorf("MemberID(%v,%q) = %d, want %d", c.urls, c.token, got, c.want)
			}
		}
	})
}

func parse(t *testing.T, args string, env ...string) (*Config, *ParseResult, error) {
	t.Helper()
	return Parse("etcd-node", strings.Fields(args), env)
}

func TestParseDefaultsAndDerived(t *testing.T) {
	c, res, err := parse(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "default" || c.DataDir != "default.etcd" || c.InitialCluster != "default=http://localhost:2380" ||
		c.InitialClusterToken != "etcd-cluster" || c.InitialClusterState != "new" || c.HeartbeatMs != 100 ||
		c.ElectionMs != 1000 || c.SnapshotCount != 10000 || !c.PreVote || !c.StrictReconfigCheck {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if len(res.Warnings) < 2 {
		t.Fatalf("expected data-dir and default-name warnings, got %v", res.Warnings)
	}

	c, _, err = parse(t, "--name x --initial-advertise-peer-urls http://10.0.0.1:2380")
	if err != nil {
		t.Fatal(err)
	}
	if c.InitialCluster != "x=http://10.0.0.1:2380" || c.DataDir != "x.etcd" {
		t.Fatalf("name-only derived cluster = %q datadir %q", c.InitialCluster, c.DataDir)
	}
	c, _, err = parse(t, "--name x --discovery-srv example.com")
	if err != nil {
		t.Fatal(err)
	}
	if c.InitialCluster != "" {
		t.Fatalf("discovery must clear the default initial cluster, got %q", c.InitialCluster)
	}
}

func TestParseFlagForms(t *testing.T) {
	c, _, err := parse(t, "--name=a -data-dir /tmp/x --listen-client-urls=http://127.0.0.1:1,http://127.0.0.1:1 --advertise-client-urls http://a:1 --client-cert-auth --initial-cluster-state=existing")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "a" || c.DataDir != "/tmp/x" || len(c.ListenClientURLs) != 1 || !c.ClientTLS.ClientCertAuth || c.InitialClusterState != "existing" {
		t.Fatalf("parsed %+v", c)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, args string
		env        []string
		code       int
		want       string
	}{
		{"unknown flag", "--nope", nil, 2, "flag provided but not defined"},
		{"bad state", "--initial-cluster-state old", nil, 2, "valid values are new, existing"},
		{"bad url scheme", "--listen-peer-urls ftp://1.2.3.4:1", nil, 2, "URL scheme must be http, https, unix, or unixs"},
		{"url without port", "--listen-peer-urls http://1.2.3.4", nil, 2, "does not have the form \"host:port\""},
		{"url with path", "--listen-peer-urls http://1.2.3.4:1/x", nil, 2, "URL must not contain a path"},
		{"positional", "--name a extra", nil, 1, "\"extra\" is not a valid flag"},
		{"listen without advertise", "--listen-client-urls http://127.0.0.1:2379", nil, 1, "--advertise-client-urls is required when --listen-client-urls is set explicitly"},
		{"env shadowed", "--name a", []string{"ETCD_NAME=b"}, 1, "conflicting environment variable \"ETCD_NAME\" is shadowed"},
		{"env shadowed even empty", "--name a", []string{"ETCD_NAME="}, 1, "shadowed"},
		{"env invalid", "", []string{"ETCD_INITIAL_CLUSTER_STATE=maybe"}, 1, "invalid value \"maybe\" for ETCD_INITIAL_CLUSTER_STATE"},
		{"proxy", "--proxy on", nil, 1, "gateway start"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse(t, tc.args, tc.env...)
			if err == nil {
				t.Fatalf("expected error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || ExitCode(err) != tc.code {
				t.Fatalf("error %q (exit %d), want %q (exit %d)", err, ExitCode(err), tc.want, tc.code)
			}
		})
	}
}

func TestParseEnv(t *testing.T) {
	c, res, err := parse(t, "--name a", "ETCD_INITIAL_CLUSTER=a=http://10.0.0.1:2380", "ETCD_INITIAL_CLUSTER_STATE=new", "ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:1", "ETCD_ADVERTISE_CLIENT_URLS=http://10.0.0.1:1", "ETCD_BOGUS=secret", "ETCDCTL_API=3")
	if err != nil {
		t.Fatal(err)
	}
	if c.InitialCluster != "a=http://10.0.0.1:2380" || !c.IsSet("listen-client-urls") || len(res.EnvUsed) != 4 {
		t.Fatalf("env not applied: %+v %v", c, res.EnvUsed)
	}
	var unknown []string
	for _, w := range res.Warnings {
		if w.Msg == "unrecognized environment variable" {
			unknown = append(unknown, w.Fields["environment-variable"])
			for _, v := range w.Fields {
				if strings.Contains(v, "secret") {
					t.Fatalf("warning leaks the variable's value: %v", w)
				}
			}
		}
	}
	if strings.Join(unknown, ",") != "ETCD_BOGUS" {
		t.Fatalf("unknown vars = %v", unknown)
	}
	// The env alone triggers the advertise rule, as upstream.
	if _, _, err := parse(t, "", "ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:1"); err == nil {
		t.Fatal("ETCD_LISTEN_CLIENT_URLS without advertise must fail")
	}
}

func TestHelpAndVersion(t *testing.T) {
	_, res, err := parse(t, "--help")
	if err != nil || !res.Help {
		t.Fatalf("help: %v %+v", err, res)
	}
	_, res, err = parse(t, "--version")
	if err != nil || !res.Version {
		t.Fatalf("version: %v %+v", err, res)
	}
	var b strings.Builder
	Usage(&b, "etcd-node")
	for _, want := range []string{"--initial-cluster", "--peer-cert-file", "--discovery-srv", "ETCD_INITIAL_CLUSTER"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("usage lacks %s", want)
		}
	}
}

// The guide's commands, swapped to etcd-node.
const guideInfra0 = `--name infra0 --initial-advertise-peer-urls http://10.0.1.10:2380
  --listen-peer-urls http://10.0.1.10:2380
  --listen-client-urls http://10.0.1.10:2379,http://127.0.0.1:2379
  --advertise-client-urls http://10.0.1.10:2379
  --initial-cluster-token etcd-cluster-1
  --initial-cluster infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380
  --initial-cluster-state new`

const guideErrNotListed = `--name infra1 --initial-advertise-peer-urls http://10.0.1.11:2380
  --listen-peer-urls https://10.0.1.11:2380
  --listen-client-urls http://10.0.1.11:2379,http://127.0.0.1:2379
  --advertise-client-urls http://10.0.1.11:2379
  --initial-cluster infra0=http://10.0.1.10:2380
  --initial-cluster-state new`

const guideErrAdvertise = `--name infra0 --initial-advertise-peer-urls http://127.0.0.1:2380
  --listen-peer-urls http://10.0.1.10:2380
  --listen-client-urls http://10.0.1.10:2379,http://127.0.0.1:2379
  --advertise-client-urls http://10.0.1.10:2379
  --initial-cluster infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380,infra2=http://10.0.1.12:2380
  --initial-cluster-state=new`

func TestGuideBootstrapChecks(t *testing.T) {
	ctx := context.Background()
	c, _, err := parse(t, guideInfra0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := CheckNewCluster(ctx, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if IDString(b.LocalID) != "140fedbeeb74765d" || IDString(b.ClusterID) != "acccc8912db0cd57" {
		t.Fatalf("ids %s %s", IDString(b.LocalID), IDString(b.ClusterID))
	}

	cases := []struct {
		args, code, msg string
	}{
		{guideErrNotListed, CodeNotInInitialCluster, "infra1 not listed in the initial cluster config"},
		{guideErrAdvertise, CodeAdvertiseMismatch, "error setting up initial cluster: infra0 has different advertised URLs in the cluster and advertised peer URLs list"},
		{"--name a --initial-cluster a=http://10.0.0.1:2380,b=http://10.0.0.1:2380 --initial-advertise-peer-urls http://10.0.0.1:2380", CodeDuplicatePeerURL, "has duplicate url"},
		{"--name a --initial-cluster a=ftp://x", CodeInitialClusterInvalid, "error setting up initial cluster: URL scheme must be"},
	}
	for _, tc := range cases {
		c, _, err := parse(t, tc.args)
		if err != nil {
			t.Fatal(err)
		}
		_, err = CheckNewCluster(ctx, c, nil)
		var ce *CheckError
		if !errors.As(err, &ce) || ce.Code != tc.code || !strings.Contains(ce.Msg, tc.msg) {
			t.Errorf("%q: got %v, want code %s msg %q", tc.args, err, tc.code, tc.msg)
		}
	}
	// The guide's first error case has an https peer URL and no certificate:
	// the bootstrap check must still be the one reported first.
	c, _, _ = parse(t, guideErrNotListed)
	if len(c.CheckListenerTLS()) != 1 {
		t.Fatal("https peer URL without certificate not detected")
	}
}

func TestAdvertiseResolution(t *testing.T) {
	c, _, err := parse(t, "--name a --initial-cluster a=http://10.0.0.1:2380 --initial-advertise-peer-urls http://host-a:2380")
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(_ context.Context, hp string) (string, error) {
		if hp == "host-a:2380" {
			return "10.0.0.1:2380", nil
		}
		return "", errors.New("no such host")
	}
	if _, err := CheckNewCluster(context.Background(), c, resolve); err != nil {
		t.Fatalf("resolved names must match: %v", err)
	}
	if _, err := CheckNewCluster(context.Background(), c, nil); err == nil {
		t.Fatal("without a resolver differing strings must not match")
	}
}

func TestValidateRules(t *testing.T) {
	cases := []struct{ args, code string }{
		{"--listen-peer-urls http://example.com:2380", CodeListenURLNotIP},
		{"--name a --initial-cluster a=http://localhost:2380 --discovery-srv example.com", CodeBootstrapFlagsConflict},
		{"--heartbeat-interval 300 --election-timeout 1000", CodeElectionTooShort},
		{"--heartbeat-interval 100 --election-timeout 60000", CodeElectionTooLong},
		{"--discovery-token x", CodeDiscoveryTokenEndpoint},
		{"--discovery-fallback proxy", CodeDiscoveryFallbackProxy},
		{"--discovery http://d/x --discovery-endpoints http://a:1 --discovery-token t", CodeDiscoveryConflict},
		{"--auto-tls --self-signed-cert-validity 0", CodeSelfSignedValidity},
	}
	for _, tc := range cases {
		c, _, err := parse(t, tc.args)
		if err != nil {
			t.Fatalf("%s: %v", tc.args, err)
		}
		found := false
		for _, e := range c.ValidateAll() {
			if e.Code == tc.code {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: no %s in %v", tc.args, tc.code, c.ValidateAll())
		}
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/etcd.yaml"
	content := "name: infra9\ninitial-cluster: infra9=http://10.0.0.9:2380\ninitial-advertise-peer-urls: http://10.0.0.9:2380\nclient-transport-security:\n  cert-file: /c.pem\n  client-cert-auth: true\npeer-transport-security:\n  allowed-cn: etcd\n"
	if err := writeFile(path, content); err != nil {
		t.Fatal(err)
	}
	c, _, err := parse(t, "--config-file "+path+" --name ignored", "ETCD_DATA_DIR=/ignored")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "infra9" || c.ClientTLS.CertFile != "/c.pem" || !c.ClientTLS.ClientCertAuth || c.PeerTLS.AllowedCN != "etcd" || c.DataDir != "infra9.etcd" {
		t.Fatalf("config file not applied alone: %+v", c)
	}
	if err := writeFile(path, "nme: x\n"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := parse(t, "--config-file "+path); err == nil || !strings.Contains(err.Error(), "unknown key \"nme\"") {
		t.Fatalf("unknown key: %v", err)
	}
}

func FuzzParseURLsMap(f *testing.F) {
	f.Add("infra0=http://10.0.1.10:2380,infra1=http://10.0.1.11:2380")
	f.Add("a=unix://x,=,b")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseURLsMap(s)
		if err != nil {
			return
		}
		again, err := ParseURLsMap(m.String())
		if err != nil || again.String() != m.String() {
			t.Fatalf("round trip of %q: %q vs %q (%v)", s, m.String(), again.String(), err)
		}
	})
}
