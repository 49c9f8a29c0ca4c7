package e2e

import (
	"fmt"
	"strings"
	"testing"

	"etcdctl-wizard/node/nodetest"
)

// authCtl runs etcdctl and returns what an operator sees: stdout, or the
// "Error:" line when it fails (clientv3 may log retries before it).
func authCtl(t *testing.T, c *nodetest.Cluster, args ...string) string {
	t.Helper()
	out, errOut, err := c.Etcdctl(args...)
	if err == nil {
		return out
	}
	for _, l := range strings.Split(errOut, "\n") {
		if strings.HasPrefix(l, "Error: ") {
			return l + "\n"
		}
	}
	t.Fatalf("etcdctl %s failed without an error line: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	return ""
}

// rbacStep is one etcdctl command of the walk-through and, when set, what
// it must print (on etcd-node and on upstream etcd alike).
type rbacStep struct {
	args []string
	want string
}

func step(want string, args ...string) rbacStep { return rbacStep{args: args, want: want} }

const (
	asRoot  = "--user=root:rootpw"
	asAlice = "--user=alice:alicepw"
)

// rbacScript is etcd's role-based access control walk-through, with the
// errors an operator meets on the way. Outputs left empty ("") are not
// fixed here: they are compared with upstream's only.
var rbacScript = []rbacStep{
	step("User root created\n", "user", "add", "root", "--new-user-password=rootpw"),
	step("Authentication Enabled\n", "auth", "enable"), // etcdctl adds the root role and grants it
	step("", "auth", "status"),
	step(`200 {"health":"true","reason":""}`, "GET", "/health"), // healthy: a refusal for lack of a user is a served read
	step("Error: etcdserver: user name is empty\n", "put", "/foo/x", "hello"),
	step("Error: etcdserver: user name is empty\n", "get", "/foo/x"),
	step("Error: etcdserver: authentication failed, invalid user ID or password\n", "--user=root:wrong", "get", "/foo/x"),
	step("Error: etcdserver: authentication failed, invalid user ID or password\n", "--user=nobody:pw", "get", "/foo/x"),
	step("OK\n", asRoot, "put", "/foo/x", "hello"),
	step("OK\n", asRoot, "put", "/bar", "secret"),
	step("Role reader created\n", asRoot, "role", "add", "reader"),
	step("Role reader updated\n", asRoot, "role", "grant-permission", "reader", "read", "/foo/", "--prefix"),
	step("User alice created\n", asRoot, "user", "add", "alice:alicepw"),
	step("Role reader is granted to user alice\n", asRoot, "user", "grant-role", "alice", "reader"),
	step("/foo/x\nhello\n", asAlice, "get", "/foo/x"),
	step("/foo/x\nhello\n", asAlice, "get", "/foo/", "--prefix"),
	step("Error: etcdserver: permission denied\n", asAlice, "put", "/foo/x", "nope"),
	step("Error: etcdserver: permission denied\n", asAlice, "get", "/bar"),
	step("Error: etcdserver: permission denied\n", asAlice, "get", "/foo", "--prefix"), // wider than granted
	step("Error: etcdserver: permission denied\n", asAlice, "del", "/foo/x"),
	step("Error: etcdserver: permission denied\n", asAlice, "user", "list"),
	step("Error: etcdserver: permission denied\n", asAlice, "role", "add", "mine"),
	step("Error: etcdserver: permission denied\n", asAlice, "compaction", "1"),
	step("User: alice\nRoles: reader\n", asAlice, "user", "get", "alice"), // a user may read itself
	step("Error: etcdserver: permission denied\n", asAlice, "user", "get", "root"),
	step("", asAlice, "role", "get", "reader"), // and a role it has
	step("Role reader updated\n", asRoot, "role", "grant-permission", "reader", "readwrite", "/foo/x"),
	step("OK\n", asAlice, "put", "/foo/x", "v2"),
	step("Error: etcdserver: permission denied\n", asAlice, "put", "/foo/y", "v"),
	step("Role reader updated\n", asRoot, "role", "grant-permission", "reader", "write", "/w/a", "/w/c"),
	step("OK\n", asAlice, "put", "/w/b", "v"),
	step("Error: etcdserver: permission denied\n", asAlice, "put", "/w/c", "v"),
	step("", asRoot, "role", "get", "reader"),
	step("", asRoot, "role", "get", "root"),
	step("alice\nroot\n", asRoot, "user", "list"),
	step("reader\nroot\n", asRoot, "role", "list"),
	step("User: root\nRoles: root\n", asRoot, "user", "get", "root"),
	step("", asRoot, "user", "get", "alice", "--detail"),
	step("User svc created\n", asRoot, "user", "add", "svc", "--no-password"),
	step("", "--user=svc:pw", "get", "/foo/x"),
	step("", asRoot, "role", "revoke-permission", "reader", "/foo/", "--prefix"),
	step("Error: etcdserver: permission denied\n", asAlice, "get", "/foo/y"),
	step("/foo/x\nv2\n", asAlice, "get", "/foo/x"), // the key alone is still granted
	step("", asRoot, "role", "revoke-permission", "reader", "/nope"),
	step("Role reader is revoked from user alice\n", asRoot, "user", "revoke-role", "alice", "reader"),
	step("Error: etcdserver: permission denied\n", asAlice, "get", "/foo/x"),
	step("", asRoot, "user", "revoke-role", "alice", "reader"),
	step("", asRoot, "user", "delete", "root"),
	step("", asRoot, "role", "delete", "root"),
	step("", asRoot, "user", "revoke-role", "root", "root"),
	step("", asRoot, "role", "add", "reader"),
	step("", asRoot, "user", "add", "alice:x"),
	step("", asRoot, "user", "get", "nobody"),
	step("", asRoot, "user", "grant-role", "alice", "nope"),
	step("", asRoot, "role", "grant-permission", "reader", "read", "b", "a"),
	step("Role reader deleted\n", asRoot, "role", "delete", "reader"),
	step("User alice deleted\n", asRoot, "user", "delete", "alice"),
	step("Error: etcdserver: authentication failed, invalid user ID or password\n", asAlice, "get", "/foo/x"),
	step("", asRoot, "auth", "status"),
	step("Authentication Disabled\n", asRoot, "auth", "disable"),
	step("", "auth", "status"),
	step("/foo/x\nv2\n", "get", "/foo/x"),
	step("root\nsvc\n", "user", "list"), // anyone may, auth disabled
}

// runRBAC runs the walk-through and returns the transcript.
func runRBAC(t *testing.T, c *nodetest.Cluster) []string {
	var out []string
	for _, s := range rbacScript {
		var got string
		if s.args[0] == "GET" {
			code, body := httpGet(t, c.Member(0).ClientURL()+s.args[1])
			got = fmt.Sprintf("%d %s", code, body)
		} else {
			got = authCtl(t, c, s.args...)
		}
		if s.want != "" && got != s.want {
			t.Errorf("etcdctl %s printed %q, want %q", strings.Join(s.args, " "), got, s.want)
		}
		out = append(out, fmt.Sprintf("$ etcdctl %s\n%s", strings.Join(s.args, " "), got))
	}
	return out
}

// TestAuthEtcdctl runs etcd's RBAC walk-through with upstream etcdctl
// against etcd-node and upstream etcd, and requires the same output.
func TestAuthEtcdctl(t *testing.T) {
	etcd, _ := nodetest.Upstream(t)
	node := nodetest.BuildNode(t)
	var got [2][]string
	t.Run("both", func(t *testing.T) {
		for i, bin := range []string{node, etcd} {
			t.Run([]string{"etcd-node", "upstream etcd"}[i], func(t *testing.T) {
				t.Parallel()
				got[i] = runRBAC(t, nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: bin, Size: 1, ExtraFlags: []string{"--bcrypt-cost=4"}}))
			})
		}
	})
	if testing.Verbose() {
		t.Logf("upstream's transcript:\n%s", strings.Join(got[1], ""))
	}
	for i := range got[1] {
		if i >= len(got[0]) || got[0][i] != got[1][i] {
			t.Errorf("etcd-node and upstream etcd differ:\netcd-node:\n%s\nupstream:\n%s", at(got[0], i), got[1][i])
		}
	}
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "(nothing)"
}
