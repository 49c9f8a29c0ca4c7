package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/remote/lab"
)

// labDNSVariant is one DNS SRV bootstrap: the plan's dnsSRV settings and
// TLS mode, and the SRV services the lab's name server publishes for it.
type labDNSVariant struct {
	name        string
	serviceName string // spec.bootstrap.dnsSRV.serviceName
	advertise   string // ips or hostnames
	tls         bool   // self-signed, in pki next to the plan
	server      string // e.g. etcd-server: _etcd-server._tcp.example.com
	client      string
}

// TestLabDNS bootstraps a 3-member cluster by DNS SRV through the wizard's
// binary over SSH: the lab's dnsmasq at 10.0.1.1 (every host's resolver)
// publishes the SRV and A records of each variant, etcd-node on every host
// finds its peers there, and upstream etcdctl checks the cluster: healthy on
// all three, with the client URLs the plan advertises (host names or IPs).
// Each variant resets the hosts for the next.
func TestLabDNS(t *testing.T) {
	c := newLabWizard(t)
	for _, v := range []labDNSVariant{
		{name: "ips", advertise: "ips", server: "etcd-server", client: "etcd-client"},
		{name: "hostnames", advertise: "hostnames", server: "etcd-server", client: "etcd-client"},
		// Only the named service exists: members that looked up the plain
		// one would find nothing.
		{name: "srv-name", serviceName: "cluster1", advertise: "ips", server: "etcd-server-cluster1", client: "etcd-client-cluster1"},
		{name: "tls", advertise: "hostnames", tls: true, server: "etcd-server-ssl", client: "etcd-client-ssl"},
	} {
		t.Run(v.name, func(t *testing.T) {
			l := c.lab
			l.StartDNS(t, exampleZone(l, v.server, v.client))
			dir := t.TempDir()
			planFile := filepath.Join(dir, "plan.yaml")
			c.writeDNSPlan(t, planFile, v, true)
			t.Cleanup(func() { c.reset(t, planFile) })
			out, err := c.onHosts(planFile, "apply", "--yes", "--node-binary", c.node)
			if err != nil || !strings.Contains(out, "3 members healthy") {
				t.Fatalf("apply: %v\n%s", err, out)
			}
			scheme, tlsArgs := "http", []string(nil)
			if v.tls {
				scheme = "https"
				pki := filepath.Join(dir, "pki")
				tlsArgs = []string{"--cacert", filepath.Join(pki, "ca.crt"),
					"--cert", filepath.Join(pki, "etcdctl-wizard.crt"), "--key", filepath.Join(pki, "etcdctl-wizard.key")}
				// The peer certificates apply issued carry the SRV domain,
				// and they are what the hosts got.
				for _, h := range l.Hosts {
					local := filepath.Join(pki, h.Name+"-peer.crt")
					if dns := certDNSNames(t, local); !slices.Contains(dns, "example.com") {
						t.Errorf("%s: DNS SANs %v lack example.com", local, dns)
					}
					b, _ := os.ReadFile(local)
					if remote := h.MustExec(t, "cat /etc/etcd/pki/"+h.Name+"-peer.crt"); remote != string(b) {
						t.Errorf("%s: /etc/etcd/pki/%s-peer.crt differs from %s", h.Name, h.Name, local)
					}
				}
			}
			var eps []string
			for _, h := range l.Hosts {
				eps = append(eps, scheme+"://"+h.IP+":2379")
			}
			ctl := append([]string{"--endpoints=" + strings.Join(eps, ",")}, tlsArgs...)
			if out, err := c.etcdctl(append(ctl, "endpoint", "health")...); err != nil || strings.Count(out, "is healthy") != 3 {
				t.Fatalf("etcdctl endpoint health: %v\n%s", err, out)
			}
			out, err = c.etcdctl(append(ctl, "member", "list", "-w", "json")...)
			if err != nil {
				t.Fatalf("etcdctl member list: %v\n%s", err, out)
			}
			var ml struct {
				Members []struct {
					Name       string   `json:"name"`
					PeerURLs   []string `json:"peerURLs"`
					ClientURLs []string `json:"clientURLs"`
				} `json:"members"`
			}
			if err := json.Unmarshal([]byte(out), &ml); err != nil {
				t.Fatalf("member list: %v\n%s", err, out)
			}
			// etcd names each member's peer URL after its SRV target, not
			// its advertised peer URL (SPEC-etcd.md §6), so peers are
			// host names either way; clients see what the plan advertises.
			var got, want []string
			for _, m := range ml.Members {
				got = append(got, fmt.Sprintf("%s %v %v", m.Name, m.PeerURLs, m.ClientURLs))
			}
			for _, h := range l.Hosts {
				adv := h.IP
				if v.advertise == "hostnames" {
					adv = h.Name + ".example.com"
				}
				want = append(want, fmt.Sprintf("%s [%s://%s.example.com:2380] [%s://%s:2379]", h.Name, scheme, h.Name, scheme, adv))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("member list:\n got %q\nwant %q", got, want)
			}
		})
	}

	// Records the members could not bootstrap from: apply's DNS preflight,
	// asked from the first host through its nameserver (the lab's
	// dnsmasq), refuses before any host is changed, naming each record.
	t.Run("wrong-records", func(t *testing.T) {
		l := c.lab
		v := labDNSVariant{advertise: "ips", server: "etcd-server", client: "etcd-client"}
		z := exampleZone(l, v.server, v.client)
		delete(z.A, "infra2.example.com")
		for i := range z.SRV {
			if z.SRV[i].Target == "infra1.example.com" && z.SRV[i].Port == 2380 {
				z.SRV[i].Port = 2390
			}
		}
		l.StartDNS(t, z)
		planFile := filepath.Join(t.TempDir(), "plan.yaml")
		c.writeDNSPlan(t, planFile, v, true)
		out, err := c.onHosts(planFile, "apply", "--yes", "--node-binary", c.node)
		for _, want := range []string{"preflight failed, no host was changed",
			"_etcd-server._tcp.example.com. names infra1.example.com. on port 2390, but the member listens for peers on 2380",
			"missing: infra2.example.com does not resolve (no such name); publish `infra2.example.com. 300 IN A 10.0.1.12`",
			"asked 10.0.1.1:53 from infra0"} {
			if err == nil || !strings.Contains(out, want) {
				t.Errorf("apply with wrong records: want %q in\n%v\n%s", want, err, out)
			}
		}
		for _, h := range l.Hosts {
			if out := h.MustExec(t, "ls -A /etc /var/lib /usr/local/bin | grep etcd || true"); strings.TrimSpace(out) != "" {
				t.Errorf("%s changed by the refused apply: %s", h.Name, out)
			}
		}
	})

	// Certificates issued for a static twin of the plan lack the SRV domain
	// that DNS SRV with TLS wants in every member certificate (etcd's
	// security guide). apply must refuse them before touching any host,
	// naming the missing SAN, and keep the files; re-issuing them with
	// certs issue --force is the way out.
	t.Run("tls-cert-without-domain", func(t *testing.T) {
		l := c.lab
		v := labDNSVariant{advertise: "hostnames", tls: true, server: "etcd-server-ssl", client: "etcd-client-ssl"}
		l.StartDNS(t, exampleZone(l, v.server, v.client))
		dir := t.TempDir()
		static, planFile := filepath.Join(dir, "static.yaml"), filepath.Join(dir, "plan.yaml")
		c.writeDNSPlan(t, static, v, false)
		c.writeDNSPlan(t, planFile, v, true)
		t.Cleanup(func() { c.reset(t, planFile) })
		if out, err := c.wiz(dir, "certs", "issue", "-f", static); err != nil {
			t.Fatalf("certs issue for the static plan: %v\n%s", err, out)
		}
		peer := filepath.Join(dir, "pki", "infra0-peer.crt")
		before, _ := os.ReadFile(peer)
		if dns := certDNSNames(t, peer); slices.Contains(dns, "example.com") {
			t.Fatalf("the static plan's certificate already has example.com: %v", dns)
		}
		out, err := c.onHosts(planFile, "apply", "--yes", "--node-binary", c.node)
		if err == nil || !strings.Contains(out, "no host was changed") || strings.Count(out, "does not cover DNS name example.com") != 6 ||
			!strings.Contains(out, "replace them with `etcdctl-wizard certs issue -f "+planFile+" --force`") {
			t.Fatalf("apply with certificates lacking the domain: %v\n%s", err, out)
		}
		if after, _ := os.ReadFile(peer); string(after) != string(before) {
			t.Errorf("the refused apply rewrote %s", peer)
		}
		for _, h := range l.Hosts {
			if out := h.MustExec(t, "ls -A /etc /var/lib /usr/local/bin | grep etcd || true"); strings.TrimSpace(out) != "" {
				t.Errorf("%s changed by the refused apply: %s", h.Name, out)
			}
		}
		if out, err := c.wiz(dir, "certs", "issue", "-f", planFile, "--force"); err != nil {
			t.Fatalf("certs issue --force: %v\n%s", err, out)
		}
		if dns := certDNSNames(t, peer); !slices.Contains(dns, "example.com") {
			t.Fatalf("re-issued %s lacks example.com: %v", peer, dns)
		}
		if out, err := c.onHosts(planFile, "apply", "--yes", "--node-binary", c.node); err != nil || !strings.Contains(out, "3 members healthy") {
			t.Fatalf("apply after re-issuing: %v\n%s", err, out)
		}
	})
}

// labWizard runs the wizard's binary and upstream etcdctl inside a 3-host
// lab, the way an operator's laptop would.
type labWizard struct {
	lab                   *lab.Lab
	wizard, node, ctlPath string
}

func newLabWizard(t *testing.T) *labWizard {
	c := &labWizard{node: nodeBinary(t), wizard: filepath.Join(t.TempDir(), "etcdctl-wizard")}
	_, c.ctlPath = nodetest.Upstream(t)
	if out, err := exec.Command("go", "build", "-o", c.wizard, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c.lab = lab.Start(t, 3)
	for _, h := range c.lab.Hosts {
		h.MustExec(t, ": > /root/.bashrc") // the machine's starts pyenv: slow
	}
	return c
}

// wiz runs the wizard in dir (where a relative spec.tls.dir lives), without
// the SSH agent of this machine.
func (c *labWizard) wiz(dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.lab.Command(ctx, c.wizard, args...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// onHosts runs a wizard command that reaches the hosts of planFile: the
// lab's host keys, no ssh config of this machine, state next to the plan.
func (c *labWizard) onHosts(planFile string, args ...string) (string, error) {
	dir := filepath.Dir(planFile)
	return c.wiz(dir, append(args, "-f", planFile, "--state-dir", filepath.Join(dir, "state"),
		"--known-hosts", c.lab.KnownHosts, "--ssh-config", "none")...)
}

func (c *labWizard) etcdctl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := c.lab.Command(ctx, c.ctlPath, args...).CombinedOutput()
	return string(out), err
}

// reset undoes apply and checks that nothing of etcd is left on the hosts.
func (c *labWizard) reset(t *testing.T, planFile string) {
	out, err := c.onHosts(planFile, "reset", "--yes")
	if err != nil || !strings.Contains(out, "3 hosts reset") {
		t.Errorf("reset: %v\n%s", err, out)
	}
	for _, h := range c.lab.Hosts {
		if out := h.MustExec(t, "ls -A /etc /var/lib /usr/local/bin | grep etcd || true"); strings.TrimSpace(out) != "" {
			t.Errorf("%s after reset: %s", h.Name, out)
		}
	}
}

// writeDNSPlan writes a dns-srv plan for the lab's hosts as
// infraN.example.com; members listen on their IP, or on every address when
// they advertise names.
func (c *labWizard) writeDNSPlan(t *testing.T, path string, v labDNSVariant, dnsSRV bool) {
	listen, tls := "ip", "mode: none"
	if v.advertise == "hostnames" {
		listen = "any"
	}
	if v.tls {
		tls = "mode: self-signed\n    dir: pki"
	}
	bootstrap := fmt.Sprintf(`
  bootstrap:
    mode: dns-srv
    dnsSRV:
      domain: example.com
      serviceName: %q
      advertise: %s`, v.serviceName, v.advertise)
	if !dnsSRV {
		bootstrap = "" // static, the default
	}
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: etcdctl-wizard/v1
kind: Cluster
metadata:
  name: etcd-cluster-1
spec:%s
  tls:
    %s
  node:
    dataDir: ""
    listen: %s
  members:
`, bootstrap, tls, listen)
	for _, h := range c.lab.Hosts {
		fmt.Fprintf(&b, "    - name: %s\n      ip: %s\n      hostname: %s.example.com\n      ssh:\n        keyFile: %s\n", h.Name, h.IP, h.Name, c.lab.ClientKey)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// exampleZone is example.com as the clustering guide publishes it: server
// (peer port) and client SRV records under the given services, pointing at
// infraN.example.com, and their A records.
func exampleZone(l *lab.Lab, server, client string) lab.Zone {
	z := lab.Zone{A: map[string]string{}}
	for _, h := range l.Hosts {
		name := h.Name + ".example.com"
		z.SRV = append(z.SRV,
			lab.SRV{Name: "_" + server + "._tcp.example.com", Target: name, Port: 2380},
			lab.SRV{Name: "_" + client + "._tcp.example.com", Target: name, Port: 2379})
		z.A[name] = h.IP
	}
	return z
}

func certDNSNames(t *testing.T, path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return cert.DNSNames
}
