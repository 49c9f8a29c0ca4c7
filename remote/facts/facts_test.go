package facts

import (
	"net"
	"strings"
	"testing"
	"time"

	"etcdctl-wizard/plan"
)

func TestParseProcAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"0100007F:0950", "127.0.0.1:2384", true},
		{"0B01000A:094F", "10.0.1.11:2383", true},
		{"00000000:0016", "0.0.0.0:22", true},
		{"00000000000000000000000000000000:0016", "[::]:22", true},
		{"0000000000000000FFFF00000100007F:0950", "127.0.0.1:2384", true},
		{"zz:0950", "", false},
		{"0100007F", "", false},
		{"0100007F:zz", "", false},
	} {
		l, ok := parseProcAddr(tc.in)
		if ok != tc.ok || (ok && l.String() != tc.want) {
			t.Errorf("%s: %v %v, want %s %v", tc.in, l, ok, tc.want, tc.ok)
		}
	}
}

func TestBusy(t *testing.T) {
	f := &Facts{Listening: []Listener{
		{IP: net.ParseIP("10.0.1.11"), Port: 2380},
		{IP: net.IPv4zero, Port: 22},
		{IP: net.ParseIP("127.0.0.1"), Port: 2379},
	}}
	if b := f.Busy([]string{"10.0.1.10:2380", "10.0.1.10:2379"}); len(b) != 0 {
		t.Errorf("other addresses busy: %v", b)
	}
	if b := f.Busy([]string{"10.0.1.11:2380"}); len(b) != 1 {
		t.Errorf("same address: %v", b)
	}
	if b := f.Busy([]string{"0.0.0.0:2379"}); len(b) != 1 {
		t.Errorf("wildcard bind over a loopback listener: %v", b)
	}
	if b := f.Busy([]string{"10.0.1.10:22"}); len(b) != 1 {
		t.Errorf("a wildcard listener: %v", b)
	}
	if b := f.Busy([]string{"localhost:2379"}); len(b) != 1 {
		t.Errorf("localhost: %v", b)
	}
}

func TestDataStateAndPreflight(t *testing.T) {
	lay := &plan.HostLayout{Listen: []string{"10.0.1.10:2380"}, DataDir: "/var/lib/etcd/infra0.etcd"}
	e := Expect{Cluster: "c1", ClusterID: "abc", Layout: lay, Bundled: true}
	base := Facts{Host: "infra0", OS: "Linux", Machine: "x86_64", Arch: "amd64", DataDir: lay.DataDir, FreeDisk: 10 << 30}
	for _, tc := range []struct {
		name  string
		edit  func(*Facts)
		state string
		want  string // substring of a fatal problem; "" for none
	}{
		{"fresh", func(f *Facts) { f.dataFolder = "absent" }, DataAbsent, ""},
		{"empty", func(f *Facts) { f.dataFolder = "empty" }, DataEmpty, ""},
		{"ours", func(f *Facts) {
			f.dataFolder = "member"
			f.Marker = &Marker{ClusterID: "abc", Member: "infra0"}
		}, DataSame, ""},
		{"another cluster", func(f *Facts) {
			f.dataFolder = "member"
			f.Marker = &Marker{Cluster: "old", ClusterID: "def", Member: "infra0"}
		}, DataOther, "member infra0 of cluster old (ID def)"},
		{"unknown data", func(f *Facts) { f.dataFolder = "member" }, DataOther, "no etcdctl-wizard marker"},
		{"busy port", func(f *Facts) {
			f.dataFolder = "absent"
			f.Listening = []Listener{{IP: net.IPv4zero, Port: 2380}}
		}, DataAbsent, "port 2380 is already in use"},
		{"busy port of our running member", func(f *Facts) {
			f.dataFolder = "member"
			f.Marker = &Marker{ClusterID: "abc", Member: "infra0"}
			f.Running = true
			f.Listening = []Listener{{IP: net.ParseIP("10.0.1.10"), Port: 2380}}
		}, DataSame, ""},
		{"arch", func(f *Facts) { f.dataFolder = "absent"; f.Machine, f.Arch = "riscv64", "" }, DataAbsent, "riscv64 has no bundled etcd-node"},
		{"disk", func(f *Facts) { f.dataFolder = "absent"; f.FreeDisk = 1 << 20 }, DataAbsent, "only 1.0 MiB free"},
		{"not linux", func(f *Facts) { f.dataFolder = "absent"; f.OS = "FreeBSD" }, DataAbsent, "runs FreeBSD"},
	} {
		f := base
		tc.edit(&f)
		if got := f.DataState("abc", "infra0"); got != tc.state {
			t.Errorf("%s: data state %s, want %s", tc.name, got, tc.state)
		}
		var fatal []string
		for _, p := range Preflight(&f, e) {
			if p.Fatal {
				fatal = append(fatal, p.Error())
			}
		}
		switch {
		case tc.want == "" && len(fatal) > 0:
			t.Errorf("%s: unexpected problems %v", tc.name, fatal)
		case tc.want != "" && (len(fatal) != 1 || !strings.Contains(fatal[0], tc.want) || !strings.HasPrefix(fatal[0], "infra0: ")):
			t.Errorf("%s: problems %v, want one with %q", tc.name, fatal, tc.want)
		}
	}
	f := base
	f.dataFolder, f.ClockSkew = "absent", 3*time.Second
	ps := Preflight(&f, e)
	if len(ps) != 1 || ps[0].Fatal || !strings.Contains(ps[0].Message, "clock is 3s off") {
		t.Errorf("clock skew: %v", ps)
	}
}

func TestGoArch(t *testing.T) {
	for in, want := range map[string]string{"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "", "": ""} {
		if got := GoArch(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// A member that joined at runtime cannot bootstrap from an empty data
// dir, and the data of an earlier member of its name cannot rejoin.
func TestPreflightJoinedMember(t *testing.T) {
	lay := &plan.HostLayout{Listen: []string{"10.0.1.13:2380"}, DataDir: "/var/lib/etcd/infra3.etcd"}
	e := Expect{Cluster: "c1", ClusterID: "abc", MemberID: "77", Layout: lay, Bundled: true, Joins: true}
	base := Facts{Host: "infra3", OS: "Linux", Machine: "x86_64", Arch: "amd64", DataDir: lay.DataDir, FreeDisk: 10 << 30}
	fatal := func(f Facts, e Expect) string {
		for _, p := range Preflight(&f, e) {
			if p.Fatal {
				return p.Message
			}
		}
		return ""
	}
	empty := base
	empty.dataFolder = "empty"
	if msg := fatal(empty, e); !strings.Contains(msg, "member remove -f PLAN infra3") {
		t.Errorf("joined member without data: %q", msg)
	}
	adding := e
	adding.Adding = true
	if msg := fatal(empty, adding); msg != "" {
		t.Errorf("member add of an empty host: %q", msg)
	}
	same := base
	same.dataFolder = "member"
	same.Marker = &Marker{Cluster: "c1", ClusterID: "abc", Member: "infra3", MemberID: "77"}
	if msg := fatal(same, e); msg != "" {
		t.Errorf("joined member with its data: %q", msg)
	}
	same.Marker.MemberID = "55"
	if msg := fatal(same, e); !strings.Contains(msg, "earlier member infra3 (ID 55)") {
		t.Errorf("data of an earlier member: %q", msg)
	}
	// Members that bootstrapped compare cluster and name only.
	boot := e
	boot.Joins = false
	if msg := fatal(same, boot); msg != "" {
		t.Errorf("bootstrapped member: %q", msg)
	}
}
