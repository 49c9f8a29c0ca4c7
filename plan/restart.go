package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"

	"etcdctl-wizard/node/config"
)

// BootstrapOnlyPattern matches the env file lines that a member reads only
// to bootstrap: etcd ignores --initial-cluster*, the discovery flags and
// the token once the member has data (SPEC-etcd.md, DESIGN.md §5), so a
// change of these lines alone needs no restart. Comment lines are matched
// too: they configure nothing. It is an extended regular expression that
// grep -E and Go's regexp read alike.
const BootstrapOnlyPattern = `^(#|ETCD_INITIAL_CLUSTER(_STATE|_TOKEN)?=|ETCD_DISCOVERY[A-Z0-9_]*=)`

var bootstrapOnlyRE = regexp.MustCompile(BootstrapOnlyPattern)

// BootstrapOnlyFlag reports whether a member ignores flag once it has data.
func BootstrapOnlyFlag(flag string) bool {
	return bootstrapOnlyRE.MatchString(config.EnvName(flag) + "=")
}

// RuntimeConfigHash is the sha256 (hex) of the env file's lines that
// configure a running member: every line but BootstrapOnlyPattern's, each
// with its newline. Two env files with the same hash configure a member
// that holds its data identically. The executor computes it on the host
// with RuntimeConfigHashCommand, which must give the same result.
func RuntimeConfigHash(env string) string {
	h := sha256.New()
	if env != "" {
		for _, line := range strings.Split(strings.TrimSuffix(env, "\n"), "\n") {
			if !bootstrapOnlyRE.MatchString(line) {
				h.Write([]byte(line + "\n"))
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// RuntimeConfigHashCommand prints RuntimeConfigHash of the file at the
// (shell-quoted) path quotedPath.
func RuntimeConfigHashCommand(quotedPath string) string {
	return "{ grep -Ev " + shellQuote(BootstrapOnlyPattern) + " " + quotedPath + " || true; } | sha256sum | cut -d' ' -f1"
}
