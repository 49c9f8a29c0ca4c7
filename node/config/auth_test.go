package config

import (
	"strings"
	"testing"
)

func TestAuthFlags(t *testing.T) {
	c, _, err := parse(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthToken != "simple" || c.BcryptCost != 10 || c.AuthTokenTTL != 300 {
		t.Fatalf("etcd's auth defaults: token %q, cost %d, ttl %d", c.AuthToken, c.BcryptCost, c.AuthTokenTTL)
	}
	c, _, err = parse(t, "--auth-token=simple --bcrypt-cost=4", "ETCD_AUTH_TOKEN_TTL=2")
	if err != nil || c.BcryptCost != 4 || c.AuthTokenTTL != 2 {
		t.Fatalf("auth flags: %+v %v", c, err)
	}
	_, _, err = parse(t, "--auth-token=jwt,pub-key=a.pub,priv-key=a,sign-method=RS256")
	if err == nil || !strings.Contains(err.Error(), "jwt tokens are not served by etcd-node") {
		t.Fatalf("jwt: %v", err)
	}
}
