package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/discovery/dnstest"
	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/node/nodetest/proc"
)

const srvDomain = "example.test"

// srvCluster is three member specs with SRV and A records for them.
type srvCluster struct {
	dns   *dnstest.Server
	specs []proc.MemberSpec
	hosts []string // infra<i>.example.test:<peer port>
}

// newSRVCluster publishes _<service>._tcp.example.test records for three
// members, the guide's infra0..2, whose names resolve to 127.0.0.1.
func newSRVCluster(t *testing.T, service string) *srvCluster {
	t.Helper()
	c := &srvCluster{dns: dnstest.Start(t)}
	for i := 0; i < 3; i++ {
		spec := nodetest.NewMemberSpec(t, fmt.Sprintf("infra%d", i))
		u, _ := url.Parse(spec.PeerURL)
		port, _ := strconv.Atoi(u.Port())
		host := fmt.Sprintf("infra%d.%s", i, srvDomain)
		c.dns.AddSRV(dnstest.SRV{Name: service + "." + srvDomain, Target: host, Port: uint16(port)})
		c.dns.AddA(host, "127.0.0.1")
		c.specs = append(c.specs, spec)
		c.hosts = append(c.hosts, net.JoinHostPort(host, u.Port()))
	}
	return c
}

func (c *srvCluster) start(t *testing.T, bin string, flags func(i int, s proc.MemberSpec) []string, env []string) []*nodetest.Member {
	t.Helper()
	var ms []*nodetest.Member
	for i, s := range c.specs {
		ms = append(ms, nodetest.StartMember(t, nodetest.MemberOptions{Spec: s, Binary: bin, Args: flags(i, s),
			Env: append([]string{"ETCDNODE_DNS_SERVER=" + c.dns.Addr}, env...)}))
	}
	return ms
}

func (c *srvCluster) endpoints() []string {
	var eps []string
	for _, s := range c.specs {
		eps = append(eps, s.ClientURL)
	}
	return eps
}

// TestDiscoverySRV bootstraps the guide's DNS SRV cluster from a real DNS
// server: members advertising IPs with _etcd-server records, members
// advertising names with --discovery-srv-name records, and SRV records
// pointing nowhere.
func TestDiscoverySRV(t *testing.T) {
	bin := nodetest.BuildNode(t)
	for _, variant := range []struct{ name, service, srvName string }{
		{"ips", "_etcd-server._tcp", ""},
		{"names and srv-name", "_etcd-server-guide._tcp", "guide"},
	} {
		t.Run(variant.name, func(t *testing.T) {
			c := newSRVCluster(t, variant.service)
			ms := c.start(t, bin, func(i int, s proc.MemberSpec) []string {
				f := memberFlags(s)
				if variant.srvName != "" {
					for j := range f {
						if f[j] == "--initial-advertise-peer-urls" {
							f[j+1] = "http://" + c.hosts[i]
						}
					}
					f = append(f, "--discovery-srv-name", variant.srvName)
				}
				return append(f, "--discovery-srv", srvDomain, "--initial-cluster-token", "etcd-cluster-1")
			}, nil)
			for _, m := range ms {
				m.WaitHealthy()
			}
			out, errOut, err := nodetest.Etcdctl(t, c.endpoints(), "member", "list")
			if err != nil || strings.Count(out, "started") != 3 {
				t.Fatalf("member list: %v\n%s%s", err, out, errOut)
			}
			for i, h := range c.hosts {
				if !strings.Contains(out, fmt.Sprintf("infra%d, http://%s", i, h)) {
					t.Fatalf("member list lacks infra%d with peer URL http://%s:\n%s", i, h, out)
				}
			}
		})
	}
	t.Run("records pointing nowhere", func(t *testing.T) {
		d := dnstest.Start(t)
		d.AddSRV(dnstest.SRV{Name: "_etcd-server._tcp." + srvDomain, Target: "nowhere." + srvDomain, Port: 2380})
		spec := nodetest.NewMemberSpec(t, "infra0")
		code, out := nodetest.RunExpectExit(t, bin, append(memberFlags(spec), "--discovery-srv", srvDomain),
			[]string{"ETCDNODE_DNS_SERVER=" + d.Addr}, 30*time.Second)
		if code != 1 || !strings.Contains(out, filepath.Base(bin)+": error setting up initial cluster: error querying DNS SRV records for _etcd-server-ssl") ||
			!strings.Contains(out, "nowhere.example.test:2380 of _etcd-server._tcp.example.test does not resolve") {
			t.Fatalf("exit %d\n%s", code, out)
		}
		// Records for other members only.
		d.AddSRV(dnstest.SRV{Name: "_etcd-server._tcp." + srvDomain, Target: "infra1." + srvDomain, Port: 2381})
		d.AddA("infra1."+srvDomain, "127.0.0.1")
		code, out = nodetest.RunExpectExit(t, bin, append(memberFlags(spec), "--discovery-srv", srvDomain),
			[]string{"ETCDNODE_DNS_SERVER=" + d.Addr}, 30*time.Second)
		if code != 1 || !strings.Contains(out, `error setting up initial cluster: cannot find local etcd member "infra0" in SRV records`) {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
}

// issueSAN issues a peer certificate for 127.0.0.1 with the given DNS names.
func issueSAN(t *testing.T, ca *testCA, dir, name string, dnsNames []string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dnsNames, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	certFile, keyFile := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return certFile, keyFile
}

// TestDiscoverySRVTLS is the guide's _etcd-server-ssl variant: without
// --peer-trusted-ca-file the peers are verified against the SRV domain, so
// certificates that carry the domain form a cluster and certificates
// without it are refused. (The CA is made the system's with SSL_CERT_FILE.)
func TestDiscoverySRVTLS(t *testing.T) {
	bin := nodetest.BuildNode(t)
	for _, withDomain := range []bool{true, false} {
		t.Run(fmt.Sprintf("domain in SAN %v", withDomain), func(t *testing.T) {
			dir := t.TempDir()
			ca := newTestCA(t, dir, "ca")
			c := newSRVCluster(t, "_etcd-server-ssl._tcp")
			for i := range c.specs {
				c.specs[i].PeerURL = strings.Replace(c.specs[i].PeerURL, "http://", "https://", 1)
			}
			ms := c.start(t, bin, func(i int, s proc.MemberSpec) []string {
				names := []string{fmt.Sprintf("infra%d.%s", i, srvDomain)}
				if withDomain {
					names = append(names, srvDomain)
				}
				cert, key := issueSAN(t, ca, dir, s.Name, names)
				return append(memberFlags(s), "--discovery-srv", srvDomain, "--peer-cert-file", cert, "--peer-key-file", key)
			}, []string{"SSL_CERT_FILE=" + ca.path})
			if withDomain {
				for _, m := range ms {
					m.WaitHealthy()
				}
				out, errOut, err := nodetest.Etcdctl(t, c.endpoints(), "member", "list")
				if err != nil || strings.Count(out, "https://infra") != 3 {
					t.Fatalf("member list: %v\n%s%s", err, out, errOut)
				}
				return
			}
			waitLog(t, ms[0], "certificate is valid for infra")
			for _, m := range ms {
				if !m.Running() {
					continue
				}
				m.Kill()
			}
			if !strings.Contains(ms[0].Logs(), "not "+srvDomain) {
				t.Fatalf("no refusal for the domain:\n%s", ms[0].Logs())
			}
		})
	}
}
