package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote/executor"
	"etcdctl-wizard/remote/lab"
)

func TestMemberUsageErrors(t *testing.T) {
	static := filepath.Join(plans, "static.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"member", "add", "-f", static, "--name", "infra3", "--ip", "10.0.1.13"}, "stdin is not a terminal: pass --yes"},
		{[]string{"member", "remove", "-f", static, "infra1"}, "stdin is not a terminal: pass --yes"},
		{[]string{"member", "add", "-f", static, "--ip", "10.0.1.13", "--yes"}, "needs the new member's --name and --ip"},
		{[]string{"member", "add", "-f", "-", "--name", "x", "--ip", "10.0.1.13", "--yes"}, "rewrites the plan file: give its path with -f, not -"},
		{[]string{"member", "remove", "-f", static, "--yes"}, "accepts 1 arg(s), received 0"},
		{[]string{"member", "list", "-f", static, "-o", "xml"}, "use text or json"},
		{[]string{"member", "add", "-f", filepath.Join(t.TempDir(), "none.yaml"), "--name", "x", "--ip", "10.0.1.13", "--yes"}, "none.yaml"},
	} {
		code, _, stderr := runCLI(t, "", tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 with %q", tc.args, code, stderr, tc.want)
		}
	}
}

func TestPrintMemberView(t *testing.T) {
	var b bytes.Buffer
	err := printMemberView(&b, &executor.MemberView{Cluster: "c1", ClusterID: "abc", PlanClusterID: "abc", Pinned: true, Via: "infra0",
		Members: []executor.MemberRow{
			{Name: "infra0", ID: "1", PeerURLs: []string{"http://10.0.1.10:2380"}, InPlan: true, InCluster: true, Leader: true, Health: "healthy"},
			{Name: "infra1", PeerURLs: []string{"http://10.0.1.11:2380"}, InPlan: true, Note: "only in the plan"},
			{Name: "", ID: "3", PeerURLs: []string{"http://10.0.1.13:2380"}, InCluster: true, Learner: true, Note: "only in the cluster"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"cluster c1: ID abc (pinned in the plan), asked through infra0; the plan and the cluster differ",
		"infra0       1   http://10.0.1.10:2380  yes   yes      leader   healthy",
		"infra1       -   http://10.0.1.11:2380  yes   -        -        -        only in the plan",
		"(unstarted)  3   http://10.0.1.13:2380  -     yes      learner  -        only in the cluster",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}

// TestLabMemberAddTLS adds a member to a self-signed TLS cluster through
// the wizard's binary: its certificates are issued first, it serves over
// https, and member list shows the plan and the cluster in step.
func TestLabMemberAddTLS(t *testing.T) {
	c := &labWizard{node: nodeBinary(t), wizard: filepath.Join(t.TempDir(), "etcdctl-wizard")}
	_, c.ctlPath = nodetest.Upstream(t)
	if out, err := exec.Command("go", "build", "-o", c.wizard, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	c.lab = lab.Start(t, 4)
	for _, h := range c.lab.Hosts {
		h.MustExec(t, ": > /root/.bashrc") // the machine's starts pyenv: slow
	}
	dir := t.TempDir()
	planFile := filepath.Join(dir, "plan.yaml")
	c.writeDNSPlan(t, planFile, labDNSVariant{advertise: "ips", tls: true}, false)
	p, err := plan.Load(planFile)
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.Members = p.Spec.Members[:3]
	if err := plan.Save(planFile, p); err != nil {
		t.Fatal(err)
	}
	if out, err := c.onHosts(planFile, "apply", "--yes", "--node-binary", c.node); err != nil || !strings.Contains(out, "3 members healthy") {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	out, err := c.onHosts(planFile, "member", "add", "--name", "infra1", "--ip", "10.0.1.13", "--yes")
	if err == nil || !strings.Contains(out, "member infra1 is already in the plan") {
		t.Errorf("add of an existing name: %v\n%s", err, out)
	}
	out, err = c.onHosts(planFile, "member", "add", "--name", "infra3", "--ip", "10.0.1.13", "--ssh-key", c.lab.ClientKey, "--yes", "--node-binary", c.node)
	if err != nil || !strings.Contains(out, "infra3 (ID ") || !strings.Contains(out, "is a voting member of cluster") {
		t.Fatalf("member add: %v\n%s", err, out)
	}
	t.Log(out)
	pki := filepath.Join(dir, "pki")
	local, err := os.ReadFile(filepath.Join(pki, "infra3-peer.crt"))
	if err != nil {
		t.Fatalf("infra3's certificate was not issued: %v", err)
	}
	if remote := c.lab.Host("infra3").MustExec(t, "cat /etc/etcd/pki/infra3-peer.crt"); remote != string(local) {
		t.Error("infra3's peer certificate on the host differs from the issued one")
	}
	ctl := []string{"--endpoints=https://10.0.1.10:2379,https://10.0.1.11:2379,https://10.0.1.12:2379,https://10.0.1.13:2379",
		"--cacert", filepath.Join(pki, "ca.crt"), "--cert", filepath.Join(pki, "etcdctl-wizard.crt"), "--key", filepath.Join(pki, "etcdctl-wizard.key")}
	if out, err := c.etcdctl(append(ctl, "endpoint", "health")...); err != nil || strings.Count(out, "is healthy") != 4 {
		t.Fatalf("etcdctl endpoint health: %v\n%s", err, out)
	}
	out, err = c.etcdctl(append(ctl, "member", "list", "-w", "json")...)
	var ml struct {
		Members []struct {
			Name      string `json:"name"`
			IsLearner bool   `json:"isLearner"`
		} `json:"members"`
	}
	if err != nil || json.Unmarshal([]byte(out), &ml) != nil || len(ml.Members) != 4 {
		t.Fatalf("member list: %v\n%s", err, out)
	}
	for _, m := range ml.Members {
		if m.IsLearner || m.Name == "" {
			t.Errorf("member %+v", m)
		}
	}
	out, err = c.onHosts(planFile, "member", "list")
	if err != nil || !strings.Contains(out, "the plan matches the cluster") || !strings.Contains(out, "pinned in the plan") {
		t.Errorf("member list: %v\n%s", err, out)
	}
	t.Log(out)
	if out, err := c.onHosts(planFile, "reset", "--yes"); err != nil || !strings.Contains(out, "4 hosts reset") {
		t.Fatalf("reset: %v\n%s", err, out)
	}
	out, err = c.onHosts(planFile, "member", "list")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "cannot reach cluster etcd-cluster-1 through any member of the plan") {
		t.Errorf("member list of a cluster that is gone: %v\n%s", err, out)
	}
}
