package plan

import "strings"

// commandLayout decides how a command is broken into lines. It exists only so
// that the export reads like the clustering guide, which writes its static,
// TLS and discovery examples with a two-space indent and a few flag pairs on
// one line, and its DNS examples with one flag per unindented line.
type commandLayout struct {
	indent string
	// joins maps a flag to the flag it shares a line with when it directly
	// follows it.
	joins map[string]string
}

// equalsForm lists the flags the guide writes as --flag=value.
var equalsForm = map[string]bool{
	"trusted-ca-file": true, "cert-file": true, "key-file": true,
	"peer-trusted-ca-file": true, "peer-cert-file": true, "peer-key-file": true,
}

var tlsJoins = map[string]string{
	"trusted-ca-file":      "client-cert-auth",
	"key-file":             "cert-file",
	"peer-trusted-ca-file": "peer-client-cert-auth",
	"peer-key-file":        "peer-cert-file",
}

func layoutFor(mode string) commandLayout {
	joins := map[string]string{}
	for k, v := range tlsJoins {
		joins[k] = v
	}
	if mode == ModeDNSSRV {
		return commandLayout{indent: "", joins: joins}
	}
	joins["initial-advertise-peer-urls"] = "name"
	return commandLayout{indent: "  ", joins: joins}
}

// Command renders the member's command line for a shell, one flag group per
// line joined by backslash continuations, with bin as the program.
func (mc *MemberConfig) Command(bin string) string {
	layout := layoutFor(mc.Mode)
	var lines []string
	cur := shellQuote(bin)
	for i, f := range mc.Flags {
		word := "--" + f.Name
		switch {
		case isBoolFlag(f.Name) && f.Value == "true":
		case isBoolFlag(f.Name) || equalsForm[f.Name]:
			word += "=" + shellQuote(f.Value)
		default:
			word += " " + shellQuote(f.Value)
		}
		if i == 0 || (i > 0 && layout.joins[f.Name] == mc.Flags[i-1].Name) {
			cur += " " + word
			continue
		}
		lines = append(lines, cur)
		cur = layout.indent + word
	}
	lines = append(lines, cur)
	return strings.Join(lines, " \\\n")
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe
// characters.
func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_@%+=:,./-", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
