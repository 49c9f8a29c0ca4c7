package main

import (
	"strings"
	"testing"

	"etcdctl-wizard/node/nodetest"
)

func TestDiscoveryNewAndShow(t *testing.T) {
	svc := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t), Size: 1})
	code, out, errOut := runCLI(t, "", "discovery", "new", "--service", svc.Member(0).ClientURL(), "--size", "3")
	if code != 0 || !strings.HasPrefix(out, svc.Member(0).ClientURL()+"/") {
		t.Fatalf("discovery new: exit %d %q %q", code, out, errOut)
	}
	token := strings.TrimSpace(out)
	code, out, errOut = runCLI(t, "", "discovery", "show", token)
	if code != 0 || out != "size 3, 0 registered\n" {
		t.Fatalf("discovery show: exit %d %q %q", code, out, errOut)
	}
	// The guide's error for a token without a size key.
	code, _, errOut = runCLI(t, "", "discovery", "show", svc.Member(0).ClientURL()+"/v2/keys/discovery/nosuchtoken")
	if code != 1 || !strings.Contains(errOut, "the cluster doesn't have a size configuration value in") {
		t.Fatalf("missing size key: exit %d %q", code, errOut)
	}
	if code, _, errOut = runCLI(t, "", "discovery", "new", "--service", "ftp://nowhere"); code != 1 || !strings.Contains(errOut, "give its URL") {
		t.Fatalf("bad service: exit %d %q", code, errOut)
	}
}
