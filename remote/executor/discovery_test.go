package executor

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"etcdctl-wizard/node/nodetest"
	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
)

// TestCheckDiscovery runs the discovery preflight against a real etcd-node
// serving the v2 keys subset (the guide's "custom discovery service"),
// reached through a transport as the members would reach it.
func TestCheckDiscovery(t *testing.T) {
	svc := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t), Size: 1})
	base := svc.Member(0).ClientURL() + "/v2/keys/discovery/"
	put := func(key, value string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPut, base+key, strings.NewReader(url.Values{"value": {value}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("PUT %s: %s", key, resp.Status)
		}
	}
	put("good/_config/size", "3")
	put("wrongsize/_config/size", "5")
	put("used/_config/size", "3")
	put("used/8e9e05c52164694d", "infra9=http://127.0.0.1:1")

	p := &plan.Plan{APIVersion: plan.APIVersion, Kind: plan.KindCluster, Metadata: plan.Metadata{Name: "disc"},
		Spec: plan.Spec{Bootstrap: plan.Bootstrap{Mode: plan.ModeDiscovery}}}
	for i := 0; i < 3; i++ {
		p.Spec.Members = append(p.Spec.Members, plan.Member{Name: fmt.Sprintf("infra%d", i), IP: fmt.Sprintf("10.0.1.1%d", i)})
	}
	tr := remote.NewLocal(remote.LocalOptions{})
	for _, tc := range []struct{ token, want string }{
		{"good", ""},
		{"missing", "error: the cluster doesn't have a size configuration value in " + base + "missing/_config"},
		{"wrongsize", "expects 5 members but the plan has 3"},
		{"used", "already has 1 registration(s)"},
	} {
		t.Run(tc.token, func(t *testing.T) {
			p.Spec.Bootstrap.Discovery.URL = base + tc.token
			problems := checkDiscovery(context.Background(), p.WithDefaults(), tr, true)
			if tc.want == "" {
				if len(problems) != 0 {
					t.Fatalf("a good token was refused: %v", problems)
				}
				return
			}
			if len(problems) != 1 || !problems[0].Fatal || !strings.Contains(problems[0].Message, tc.want) {
				t.Fatalf("problems %v, want one fatal containing %q", problems, tc.want)
			}
		})
	}
	// Members that hold their data ignore the token: a used token is no
	// reason to refuse a re-apply.
	p.Spec.Bootstrap.Discovery.URL = base + "used"
	if problems := checkDiscovery(context.Background(), p.WithDefaults(), tr, false); len(problems) != 0 {
		t.Fatalf("re-apply of a bootstrapped cluster refused: %v", problems)
	}
}
