package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/node/nodetest/proc"
)

// memberFlags are a member's URL flags without any bootstrap flag.
func memberFlags(s proc.MemberSpec) []string {
	return []string{
		"--name", s.Name,
		"--data-dir", s.DataDir,
		"--initial-advertise-peer-urls", s.PeerURL,
		"--listen-peer-urls", s.PeerURL,
		"--listen-client-urls", s.ClientURL,
		"--advertise-client-urls", s.ClientURL,
	}
}

func httpDo(t *testing.T, method, u string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

type v2Answer struct {
	Action string `json:"action"`
	Node   struct {
		Key   string `json:"key"`
		Value string `json:"value"`
		Nodes []struct {
			Key          string `json:"key"`
			Value        string `json:"value"`
			CreatedIndex int64  `json:"createdIndex"`
		} `json:"nodes"`
		ModifiedIndex int64 `json:"modifiedIndex"`
	} `json:"node"`
}

// TestDiscoveryV2EtcdNodeService is the guide's "existing etcd cluster as
// discovery service" with etcd-node on both sides: a one-member cluster
// hands out a token (/new), three members bootstrap from it, the
// registrations are visible over plain HTTP, a restarted member warns that
// the token is ignored, and a used token, a URL without a size key, a
// garbage registration and a malformed answer are refused with exit 1.
func TestDiscoveryV2EtcdNodeService(t *testing.T) {
	bin := nodetest.BuildNode(t)
	prog := filepath.Base(bin)
	ds := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: bin, Size: 1})
	dsURL := ds.Member(0).ClientURL()

	code, durl := httpDo(t, "GET", dsURL+"/new?size=3", nil)
	if code != 200 || !strings.HasPrefix(durl, dsURL+"/v2/keys/_etcd/registry/") {
		t.Fatalf("/new: %d %q", code, durl)
	}
	var members []*nodetest.Member
	var specs []proc.MemberSpec
	for i := 0; i < 3; i++ {
		spec := nodetest.NewMemberSpec(t, fmt.Sprintf("infra%d", i))
		specs = append(specs, spec)
		opts := nodetest.MemberOptions{Spec: spec, Binary: bin, Args: append(memberFlags(spec), "--discovery", durl)}
		if i == 2 { // the same through the environment
			opts.Args, opts.Env = memberFlags(spec), []string{"ETCD_DISCOVERY=" + durl}
		}
		members = append(members, nodetest.StartMember(t, opts))
	}
	for _, m := range members {
		m.WaitHealthy()
	}
	// The registrations, as curl shows them.
	code, body := httpDo(t, "GET", durl, nil)
	var reg v2Answer
	if err := json.Unmarshal([]byte(body), &reg); code != 200 || err != nil || len(reg.Node.Nodes) != 3 {
		t.Fatalf("registrations: %d %s", code, body)
	}
	got := map[string]bool{}
	for _, n := range reg.Node.Nodes {
		got[n.Value] = true
	}
	for _, s := range specs {
		if !got[s.Name+"="+s.PeerURL] {
			t.Fatalf("registration of %s missing: %s", s.Name, body)
		}
	}
	// One cluster of three.
	endpoints := []string{specs[0].ClientURL, specs[1].ClientURL, specs[2].ClientURL}
	out, errOut, err := nodetest.Etcdctl(t, endpoints, "member", "list")
	if err != nil || strings.Count(out, "started") != 3 {
		t.Fatalf("member list: %v\n%s%s", err, out, errOut)
	}
	if out, errOut, err := nodetest.Etcdctl(t, endpoints, "put", "k", "v"); err != nil {
		t.Fatalf("put: %v %s%s", err, out, errOut)
	}

	// The v2 keys API of the new cluster is replicated through raft: a
	// wait on one member sees a write made on another.
	code, body = httpDo(t, "PUT", specs[0].ClientURL+"/v2/keys/discovery/t2/_config/size", url.Values{"value": {"3"}})
	if code != 201 {
		t.Fatalf("size on the new cluster: %d %s", code, body)
	}
	var put v2Answer
	json.Unmarshal([]byte(body), &put)
	waitc := make(chan string, 1)
	go func() {
		_, b := httpDo(t, "GET", fmt.Sprintf("%s/v2/keys/discovery/t2?wait=true&recursive=true&waitIndex=%d", specs[2].ClientURL, put.Node.ModifiedIndex+1), nil)
		waitc <- b
	}()
	code, body = httpDo(t, "PUT", specs[1].ClientURL+"/v2/keys/discovery/t2/m?prevExist=false", url.Values{"value": {"a=http://127.0.0.1:1"}})
	if code != 201 {
		t.Fatalf("put on member 1: %d %s", code, body)
	}
	if w := <-waitc; !strings.Contains(w, `"key":"/discovery/t2/m"`) {
		t.Fatalf("wait on member 2: %q", w)
	}
	code, body = httpDo(t, "PUT", specs[2].ClientURL+"/v2/keys/discovery/t2/m?prevExist=false", url.Values{"value": {"b"}})
	if code != 412 || !strings.Contains(body, `"errorCode":105`) {
		t.Fatalf("prevExist=false on an existing key: %d %s", code, body)
	}

	// Restart with the used token: the guide's warning, and it starts.
	members[0].Stop()
	members[0].Restart()
	members[0].WaitHealthy()
	want := fmt.Sprintf("%s: discovery token ignored since a cluster has already been initialized. Valid log found at %s", prog, specs[0].DataDir)
	if logs := members[0].Logs(); !strings.Contains(logs, want) {
		t.Fatalf("restart warning %q missing:\n%s", want, logs)
	}

	fresh := func(name string) []string { return memberFlags(nodetest.NewMemberSpec(t, name)) }
	run := func(args []string) (int, string) {
		return nodetest.RunExpectExit(t, bin, args, nil, 60*time.Second)
	}
	// A fourth member with the used token: the cluster is full.
	code, out = run(append(fresh("infra3"), "--discovery", durl))
	if code != 1 || !strings.Contains(out, prog+": failed to join discovery cluster (discovery: cluster is full)") ||
		!strings.Contains(out, "do not reuse discovery token; generate a new one to bootstrap a cluster") {
		t.Fatalf("full cluster: exit %d\n%s", code, out)
	}
	// The guide's error: a discovery URL without a size key.
	nosize := dsURL + "/v2/keys/discovery/6c007a14875d53d9bf0ef5a6fc0257c817f0fb83"
	code, out = run(append(fresh("infra0"), "--discovery", nosize))
	if code != 1 || !strings.Contains(out, prog+": error: the cluster doesn't have a size configuration value in "+nosize+"/_config") {
		t.Fatalf("no size key: exit %d\n%s", code, out)
	}
	// A token directory with a garbage entry: refused before registering.
	garbage := dsURL + "/v2/keys/discovery/garbage"
	httpDo(t, "PUT", garbage+"/_config/size", url.Values{"value": {"3"}})
	httpDo(t, "PUT", garbage+"/junk", url.Values{"value": {"this is not a member"}})
	code, out = run(append(fresh("infra0"), "--discovery", garbage))
	if code != 1 || !strings.Contains(out, "failed to join discovery cluster (discovery: invalid URL: registration /discovery/garbage/junk") {
		t.Fatalf("garbage: exit %d\n%s", code, out)
	}
	_, body = httpDo(t, "GET", garbage, nil)
	if strings.Count(body, `"key":`) != 2 { // the directory and junk only
		t.Fatalf("something was registered: %s", body)
	}
	// A malformed answer.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>not etcd</html>"))
	}))
	defer bad.Close()
	code, out = run(append(fresh("infra0"), "--discovery", bad.URL+"/tok"))
	if code != 1 || !strings.Contains(out, "failed to join discovery cluster (discovery: bad discovery endpoint") {
		t.Fatalf("malformed answer: exit %d\n%s", code, out)
	}
}
