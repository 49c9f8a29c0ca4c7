package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"etcdctl-wizard/node/nodetest"
)

// authClient is a clientv3 client that authenticates as user.
func authClient(t *testing.T, urls []string, user, password string) *clientv3.Client {
	t.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: urls, DialTimeout: 5 * time.Second, Username: user, Password: password, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("client as %s: %v", user, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func wantRPCErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(rpctypes.Error(err), rpctypes.Error(want)) {
		t.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// tokenClient is a clientv3 client that sends token.
func tokenClient(t *testing.T, url, token string) *clientv3.Client {
	t.Helper()
	cl, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Token: token, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// setupRBAC creates root and alice (reader of /foo/ and its keys) and
// enables auth, through clientv3 before any credentials are needed.
func setupRBAC(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	ctx := context.Background()
	for _, f := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "reader"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "reader", "/foo/", clientv3.GetPrefixRangeEnd("/foo/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "reader"); return err },
		func() error { _, err := cli.Put(ctx, "/foo/x", "hello"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		mustOK(t, "setup", f())
	}
}

// TestAuthClient: clientv3 with a user name and password against a
// 3-member etcd-node cluster: simple tokens issued by one member work on
// every member, idle tokens expire and the client authenticates again by
// itself, and the permission checks of Watch, Lease, Cluster and
// Maintenance; then the auth state survives kill -9 of every member.
func TestAuthClient(t *testing.T) {
	const ttl = time.Second
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t),
		ExtraFlags: []string{"--auth-token-ttl=1", "--bcrypt-cost=4"}})
	ctx := context.Background()
	setupRBAC(t, c.Client(t))
	urls := c.Endpoints()

	t.Run("no credentials, wrong password", func(t *testing.T) {
		_, err := c.Client(t).Get(ctx, "/foo/x")
		wantRPCErr(t, "get without a user", err, rpctypes.ErrGRPCUserEmpty)
		_, err = clientv3.New(clientv3.Config{Endpoints: urls, DialTimeout: 5 * time.Second, Username: "alice", Password: "wrong", Logger: zap.NewNop()})
		if err == nil || !strings.Contains(err.Error(), "etcdserver: authentication failed, invalid user ID or password") {
			t.Fatalf("wrong password: %v", err)
		}
	})

	// A token from member 0 is valid on members 1 and 2. A client given a
	// token (clientv3's Token) sends it as it is and never replaces it.
	m0 := memberClient(t, urls[0])
	resp, err := m0.Authenticate(ctx, "alice", "alicepw")
	mustOK(t, "authenticate on member 0", err)
	for _, u := range urls[1:] {
		tc := tokenClient(t, u, resp.Token)
		r, err := tc.Get(ctx, "/foo/x")
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "hello" {
			t.Fatalf("member 0's token on %s: %v %v", u, r, err)
		}
		_, err = tc.Put(ctx, "/foo/x", "v")
		wantRPCErr(t, "put as a reader", err, rpctypes.ErrGRPCPermissionDenied)
	}
	tc1 := tokenClient(t, urls[1], resp.Token)
	_, err = tokenClient(t, urls[1], "abcdefghijklmnop.1").Get(ctx, "/foo/x")
	wantRPCErr(t, "a token never issued", err, rpctypes.ErrGRPCInvalidAuthToken)

	alice := authClient(t, urls[1:2], "alice", "alicepw")
	root := authClient(t, urls, "root", "rootpw")
	// idle is used once now and once after its token expired.
	var authenticates atomic.Int32
	idle, err := clientv3.New(clientv3.Config{Endpoints: urls[1:2], DialTimeout: 5 * time.Second, Username: "alice", Password: "alicepw", Logger: zap.NewNop(),
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			if method == "/etcdserverpb.Auth/Authenticate" {
				authenticates.Add(1)
			}
			return invoker(ctx, method, req, reply, cc, opts...)
		})}})
	mustOK(t, "client as alice", err)
	defer idle.Close()
	_, err = idle.Get(ctx, "/foo/x")
	mustOK(t, "get as alice", err)
	lastUse := time.Now()
	if n := authenticates.Load(); n != 1 {
		t.Fatalf("%d authentications before the first get, want 1", n)
	}

	t.Run("watch", func(t *testing.T) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		denied := <-alice.Watch(wctx, "/bar")
		if !denied.Canceled || denied.Err() == nil || !strings.Contains(denied.Err().Error(), "etcdserver: permission denied") {
			t.Fatalf("watch of /bar as a reader of /foo/: %+v %v", denied, denied.Err())
		}
		wch := alice.Watch(wctx, "/foo/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		if r := <-wch; !r.Created || r.Err() != nil {
			t.Fatalf("watch of /foo/: %+v %v", r, r.Err())
		}
		_, err := root.Put(ctx, "/foo/w", "v")
		mustOK(t, "put as root", err)
		recvEvents(t, wch, 1)
	})

	t.Run("lease", func(t *testing.T) {
		l, err := root.Grant(ctx, 60)
		mustOK(t, "grant as root", err)
		_, err = root.Put(ctx, "/bar", "v", clientv3.WithLease(l.ID))
		mustOK(t, "put /bar with a lease", err)
		_, err = alice.Revoke(ctx, l.ID)
		wantRPCErr(t, "revoke of a lease on /bar as a reader", err, rpctypes.ErrGRPCPermissionDenied)
		_, err = alice.TimeToLive(ctx, l.ID, clientv3.WithAttachedKeys())
		wantRPCErr(t, "time-to-live with keys", err, rpctypes.ErrGRPCPermissionDenied)
		if r, err := alice.TimeToLive(ctx, l.ID); err != nil || r.TTL <= 0 {
			t.Fatalf("time-to-live without keys: %v %v", r, err)
		}
		_, err = alice.KeepAliveOnce(ctx, l.ID)
		wantRPCErr(t, "keep-alive", err, rpctypes.ErrGRPCPermissionDenied)
		_, err = alice.Leases(ctx)
		wantRPCErr(t, "lease list", err, rpctypes.ErrGRPCPermissionDenied)
		mine, err := alice.Grant(ctx, 60)
		mustOK(t, "grant as alice", err)
		_, err = root.Revoke(ctx, l.ID)
		mustOK(t, "revoke as root", err)
		_, err = alice.Revoke(ctx, mine.ID)
		mustOK(t, "revoke of a lease without keys", err)
	})

	t.Run("cluster and maintenance", func(t *testing.T) {
		ms, err := alice.MemberList(ctx)
		if err != nil || len(ms.Members) != 3 {
			t.Fatalf("member list as alice: %v %v", ms, err)
		}
		_, err = alice.MemberRemove(ctx, ms.Members[0].ID)
		wantRPCErr(t, "member remove as alice", err, rpctypes.ErrGRPCPermissionDenied)
		_, err = alice.Status(ctx, urls[1])
		mustOK(t, "status as alice", err)
		_, err = alice.MoveLeader(ctx, ms.Members[0].ID)
		wantRPCErr(t, "move-leader as alice", err, rpctypes.ErrGRPCPermissionDenied)
		rc, err := alice.Snapshot(ctx)
		if err == nil {
			buf := make([]byte, 1)
			_, err = rc.Read(buf)
			rc.Close()
		}
		wantRPCErr(t, "snapshot as alice", err, rpctypes.ErrGRPCPermissionDenied)
		_, err = c.Client(t).Status(ctx, urls[0])
		wantRPCErr(t, "status without a user", err, rpctypes.ErrGRPCUserEmpty)
	})

	t.Run("v2 discovery subset", func(t *testing.T) {
		// Not under v3 auth (etcd's v2 keys never were): a discovery
		// service keeps working for members that know no user.
		req, err := http.NewRequest(http.MethodPut, urls[0]+"/v2/keys/discovery/tok/_config/size", strings.NewReader("value=3"))
		mustOK(t, "request", err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		mustOK(t, "v2 put", err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("v2 put with auth enabled: %s", resp.Status)
		}
		// Read on another member: a v2 GET is served locally (as etcd's
		// without ?quorum=true), so it may lag the write by a moment.
		for deadline := time.Now().Add(10 * time.Second); ; {
			code, body := httpGet(t, urls[1]+"/v2/keys/discovery/tok/_config/size")
			if code == http.StatusOK && strings.Contains(body, `"value":"3"`) {
				break
			}
			if code != http.StatusNotFound || time.Now().After(deadline) {
				t.Fatalf("v2 get: %d %s", code, body)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("token expiry", func(t *testing.T) {
		// Nothing to await but time: a token lives its TTL after its last
		// use. Member 1 drops the idle client's token; the client gets
		// "invalid auth token", authenticates again and retries, by itself.
		time.Sleep(time.Until(lastUse.Add(ttl + 500*time.Millisecond)))
		_, err := tc1.Get(ctx, "/foo/x")
		wantRPCErr(t, "an idle token after its TTL", err, rpctypes.ErrGRPCInvalidAuthToken)
		r, err := idle.Get(ctx, "/foo/x")
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("clientv3 after its token expired: %v %v", r, err)
		}
		if n := authenticates.Load(); n != 2 {
			t.Fatalf("%d authentications, want 2: the client did not authenticate again", n)
		}
	})

	t.Run("kill -9 of every member", func(t *testing.T) {
		for i := range 3 {
			c.Member(i).Kill()
		}
		for i := range 3 {
			c.Member(i).Restart()
		}
		c.WaitHealthy()
		fresh := authClient(t, urls, "alice", "alicepw")
		r, err := fresh.Get(ctx, "/foo/x")
		if err != nil || len(r.Kvs) != 1 {
			t.Fatalf("alice's read after the restart: %v %v", r, err)
		}
		_, err = fresh.Put(ctx, "/foo/x", "v")
		wantRPCErr(t, "alice's write after the restart", err, rpctypes.ErrGRPCPermissionDenied)
		st, err := authClient(t, urls, "root", "rootpw").AuthStatus(ctx)
		if err != nil || !st.Enabled {
			t.Fatalf("auth status after the restart: %v %v", st, err)
		}
		_, err = c.Client(t).Get(ctx, "/foo/x")
		wantRPCErr(t, "get without a user after the restart", err, rpctypes.ErrGRPCUserEmpty)
	})
}

// TestAuthSnapshotInstall: a follower that was away while users, roles and
// permissions changed gets them with a database snapshot from the leader,
// and enforces them at once.
func TestAuthSnapshotInstall(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t),
		ExtraFlags: []string{"--snapshot-count", "100", "--snapshot-catchup-entries", "50", "--bcrypt-cost=4"}})
	ctx := context.Background()
	setupRBAC(t, c.Client(t))
	leader := leaderAsRoot(t, c)
	fi := (leader + 1) % 3
	root := authClient(t, []string{c.Member(leader).ClientURL()}, "root", "rootpw")

	c.Member(fi).Pause()
	_, err := root.UserAdd(ctx, "bob", "bobpw")
	mustOK(t, "add bob", err)
	_, err = root.RoleAdd(ctx, "writer")
	mustOK(t, "add writer", err)
	_, err = root.RoleGrantPermission(ctx, "writer", "/w/", clientv3.GetPrefixRangeEnd("/w/"), clientv3.PermissionType(clientv3.PermReadWrite))
	mustOK(t, "grant", err)
	_, err = root.UserGrantRole(ctx, "bob", "writer")
	mustOK(t, "grant bob", err)
	_, err = root.UserRevokeRole(ctx, "alice", "reader")
	mustOK(t, "revoke alice", err)
	// More entries than the leader keeps in flight to the paused member
	// (raft's MaxInflightMsgs), so that it must send a snapshot.
	putN(t, root, "/w/k", 2000, 16)
	c.Member(fi).Resume()
	waitLog(t, c.Member(fi), "applied snapshot from leader")

	// Only the follower answers: its users and permissions are the snapshot's.
	furl := []string{c.Member(fi).ClientURL()}
	bob := authClient(t, furl, "bob", "bobpw")
	_, err = bob.Put(ctx, "/w/bob", "v")
	mustOK(t, "bob's put through the follower", err)
	r, err := bob.Get(ctx, "/w/", clientv3.WithPrefix(), clientv3.WithCountOnly(), clientv3.WithSerializable())
	if err != nil || r.Count != 2001 {
		t.Fatalf("bob's serializable read on the follower: %v %v", r, err)
	}
	_, err = authClient(t, furl, "alice", "alicepw").Get(ctx, "/foo/x", clientv3.WithSerializable())
	wantRPCErr(t, "alice after her role was revoked", err, rpctypes.ErrGRPCPermissionDenied)
}

// leaderAsRoot returns the leader's index; Status needs a user with auth.
func leaderAsRoot(t *testing.T, c *nodetest.Cluster) int {
	t.Helper()
	ctx := context.Background()
	root := authClient(t, c.Endpoints(), "root", "rootpw")
	ms, err := root.MemberList(ctx)
	mustOK(t, "member list", err)
	st, err := root.Status(ctx, c.Member(0).ClientURL())
	mustOK(t, "status", err)
	for _, m := range ms.Members {
		for i := range 3 {
			if m.ID == st.Leader && m.Name == c.Member(i).Name() {
				return i
			}
		}
	}
	t.Fatalf("no leader in %v", ms.Members)
	return -1
}
