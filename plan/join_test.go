package plan

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// joined is the guide's plan of fixture after `member add infra3` pinned
// the running cluster's ID.
func joined(t *testing.T, fixture string) *Plan {
	t.Helper()
	p := mustLoad(t, filepath.Join(plansDir, fixture))
	p.Spec.ClusterID = "acccc8912db0cd57"
	p.Spec.Members = append(p.Spec.Members, Member{Name: "infra3", IP: "10.0.1.13", Hostname: "infra3.example.com", Join: true, MemberID: "2f3c5a9d1b7e4c60"})
	return p
}

func TestJoinMemberRendersExistingCluster(t *testing.T) {
	for _, fixture := range []string{"static.yaml", "discovery-custom.yaml", "dns-srv-hostnames.yaml", "tls-self-signed.yaml"} {
		t.Run(fixture, func(t *testing.T) {
			p := joined(t, fixture)
			mcs := p.MemberConfigs()
			j := mcs[3]
			state, _ := j.Lookup("initial-cluster-state")
			ic, _ := j.Lookup("initial-cluster")
			if state != "existing" || strings.Count(ic, "=") != 4 || !strings.Contains(ic, "infra3=") || !strings.Contains(ic, "infra0=") {
				t.Errorf("join member: state %q, initial cluster %q", state, ic)
			}
			for _, f := range []string{"discovery", "discovery-srv", "initial-cluster-token", "discovery-proxy"} {
				if v, ok := j.Lookup(f); ok {
					t.Errorf("join member gets --%s=%s", f, v)
				}
			}
			if f := j.Field("initial-cluster-state"); f != "spec.members[3].join" {
				t.Errorf("field of initial-cluster-state: %s", f)
			}
			// The members that bootstrapped keep their mode's flags.
			if v, _ := mcs[0].Lookup("initial-cluster-state"); v == "existing" {
				t.Error("infra0 renders as joining")
			}
			for _, f := range Validate(p) {
				if f.Severity == SeverityError {
					t.Errorf("finding: %+v", f)
				}
			}
		})
	}
}

func TestJoinIdentity(t *testing.T) {
	p := joined(t, "static.yaml")
	ids := Identities(p)
	if len(ids) != 4 {
		t.Fatalf("identities: %+v", ids)
	}
	want := map[string]string{"infra0": "140fedbeeb74765d", "infra1": "d5dc5f8d75d04e29", "infra2": "8a0a11c6194fc77", "infra3": "2f3c5a9d1b7e4c60"}
	for _, id := range ids {
		// The pinned cluster ID wins over the one the four members would
		// compute; the bootstrapped members keep their IDs.
		if IDString(id.ClusterID) != "acccc8912db0cd57" || IDString(id.MemberID) != want[id.Name] {
			t.Errorf("%s: member %s cluster %s", id.Name, IDString(id.MemberID), IDString(id.ClusterID))
		}
	}
	hosts, err := Build(p)
	if err != nil {
		t.Fatal(err)
	}
	if hosts[3].MemberID != "2f3c5a9d1b7e4c60" || hosts[0].ClusterID != "acccc8912db0cd57" {
		t.Errorf("host plans carry %s/%s", hosts[3].MemberID, hosts[0].ClusterID)
	}

	// Without the pin, four members compute another ID.
	p.Spec.ClusterID = ""
	p.Spec.Members[3].Join, p.Spec.Members[3].MemberID = false, ""
	if ids := Identities(p); IDString(ids[0].ClusterID) == "acccc8912db0cd57" {
		t.Error("the computed ID of four members equals the three members' one")
	}
}

func TestJoinValidation(t *testing.T) {
	cases := []struct {
		name string
		edit func(p *Plan)
		code string
	}{
		{"join without cluster ID", func(p *Plan) { p.Spec.ClusterID = "" }, CodeJoinWithoutClusterID},
		{"cluster ID not hex", func(p *Plan) { p.Spec.ClusterID = "xyz" }, CodeClusterIDInvalid},
		{"member ID not hex", func(p *Plan) { p.Spec.Members[3].MemberID = "12g" }, CodeMemberIDInvalid},
		{"member ID without join", func(p *Plan) { p.Spec.Members[0].MemberID = "12" }, CodeMemberIDInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := joined(t, "static.yaml")
			c.edit(p)
			var codes []string
			for _, f := range Validate(p) {
				if f.Severity == SeverityError {
					codes = append(codes, f.Code)
					if f.Hint == "" || f.Field == "" {
						t.Errorf("finding without hint or field: %+v", f)
					}
				}
			}
			if len(codes) != 1 || codes[0] != c.code {
				t.Errorf("errors %v, want [%s]", codes, c.code)
			}
		})
	}
	// A discovery plan pinned to its running cluster may differ from the
	// bootstrap size; a fresh one may not.
	p := mustLoad(t, filepath.Join(plansDir, "discovery-custom.yaml"))
	p.Spec.Members = p.Spec.Members[:2]
	if !hasCode(Validate(p), CodeDiscoverySizeMismatch) {
		t.Error("a fresh discovery plan of 2 members with size 3 passes")
	}
	p.Spec.ClusterID = "1234abcd"
	if hasCode(Validate(p), CodeDiscoverySizeMismatch) {
		t.Error("a pinned discovery plan reports the bootstrap size")
	}
}

func hasCode(fs []Finding, code string) bool {
	for _, f := range fs {
		if f.Code == code {
			return true
		}
	}
	return false
}

// The restart rule: only lines a member reads after its bootstrap count.
func TestRuntimeConfigHash(t *testing.T) {
	p := mustLoad(t, filepath.Join(plansDir, "static.yaml"))
	env := func(p *Plan) string {
		hosts, err := Build(p)
		if err != nil {
			t.Fatal(err)
		}
		st, _ := hosts[0].Step(StepEnvFile)
		return st.Files[0].Content
	}
	base := env(p)
	grown := env(joined(t, "static.yaml"))
	if grown == base {
		t.Fatal("adding a member does not change infra0's env file")
	}
	if RuntimeConfigHash(grown) != RuntimeConfigHash(base) {
		t.Errorf("adding a member changes infra0's runtime configuration:\n%s\n%s", base, grown)
	}
	q := mustLoad(t, filepath.Join(plansDir, "static.yaml"))
	q.Spec.Node.Flags = map[string]string{"snapshot-count": "5000"}
	if RuntimeConfigHash(env(q)) == RuntimeConfigHash(base) {
		t.Error("a changed flag does not change the runtime configuration")
	}
	for flag, want := range map[string]bool{"initial-cluster": true, "initial-cluster-state": true, "initial-cluster-token": true,
		"discovery": true, "discovery-srv": true, "discovery-proxy": true, "initial-advertise-peer-urls": false, "name": false, "data-dir": false} {
		if BootstrapOnlyFlag(flag) != want {
			t.Errorf("BootstrapOnlyFlag(%s) = %v", flag, !want)
		}
	}
	// The host computes the same hash with grep and sha256sum.
	for _, content := range []string{base, grown, "", "# only a comment\n", "ETCD_NAME=\"a\"\n\nETCD_X=\"y\""} {
		cmd := exec.Command("sh", "-c", RuntimeConfigHashCommand("/dev/stdin"))
		cmd.Stdin = strings.NewReader(content)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != RuntimeConfigHash(content) {
			t.Errorf("shell hash %s, Go hash %s of %q", got, RuntimeConfigHash(content), content)
		}
	}
}
