package discoverytoken

import (
	"context"
	"strings"
	"testing"

	"etcdctl-wizard/node/discovery"
	"etcdctl-wizard/node/nodetest"
)

// TestNewOnEtcdNode creates a token on a real 1-member etcd-node discovery
// service and reads it back with the members' own client code.
func TestNewOnEtcdNode(t *testing.T) {
	svc := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t), Size: 1})
	ctx := context.Background()
	u, err := New(ctx, nil, svc.Member(0).ClientURL(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(u, svc.Member(0).ClientURL()+"/") {
		t.Fatalf("token URL %q is not on the service", u)
	}
	st, err := discovery.InspectV2(ctx, u, "", nil)
	if err != nil || st.Size != 3 || len(st.Registrations) != 0 {
		t.Fatalf("new token: %+v %v", st, err)
	}
	// The guide's custom discovery service: a v2 keys folder.
	folder := svc.Member(0).ClientURL() + "/v2/keys/discovery"
	u2, err := New(ctx, nil, folder, 5)
	if err != nil {
		t.Fatal(err)
	}
	if token := strings.TrimPrefix(u2, folder+"/"); len(token) != 40 || token == u2 {
		t.Fatalf("token URL %q is not a 40-hex token under %s", u2, folder)
	}
	if st, err := discovery.InspectV2(ctx, u2, "", nil); err != nil || st.Size != 5 || len(st.Registrations) != 0 {
		t.Fatalf("token made in the keyspace: %+v %v", st, err)
	}
	// A folder that is a file key: the service's refusal is passed on.
	if _, err := New(ctx, nil, u2+"/_config/size", 3); err == nil || !strings.Contains(err.Error(), "creating /v2/keys/discovery/") {
		t.Errorf("a token under a file key: %v", err)
	} else {
		t.Log(err)
	}
	for _, bad := range []string{"", "ftp://x", "not a url"} {
		if _, err := New(ctx, nil, bad, 3); err == nil || !strings.Contains(err.Error(), "give its URL") {
			t.Errorf("service %q: %v", bad, err)
		}
	}
}
