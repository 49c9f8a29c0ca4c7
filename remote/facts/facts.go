// Package facts gathers what apply must know about a host before it changes
// anything (OS, architecture, init system, existing install, data dir state,
// ports in use, clock skew, free disk) and judges it in a preflight.
package facts

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
)

// Data dir states.
const (
	DataAbsent = "absent" // no data dir
	DataEmpty  = "empty"  // a folder without member data
	DataSame   = "same"   // member data of this cluster and member (per the wizard's marker)
	DataOther  = "other"  // member data of another cluster, or of unknown origin
)

// Marker is what the wizard writes into a member's data dir before its first
// start (plan.MarkerName).
type Marker struct {
	Cluster   string `json:"cluster"`
	ClusterID string `json:"clusterID"`
	Member    string `json:"member"`
	MemberID  string `json:"memberID"`
}

// Listener is a listening TCP socket on the host.
type Listener struct {
	IP   net.IP
	Port int
}

func (l Listener) String() string { return net.JoinHostPort(l.IP.String(), strconv.Itoa(l.Port)) }

// Facts describe one host.
type Facts struct {
	Host    string // the member name
	OS      string // uname -s
	Distro  string // PRETTY_NAME of /etc/os-release
	Machine string // uname -m
	Arch    string // GOARCH for Machine ("" when unsupported)
	Systemd bool   // systemd is the running init

	Installed        bool   // a binary is at the install path
	InstalledVersion string // first line of its --version
	InstalledSHA256  string

	DataDir    string
	dataFolder string // absent, empty, member, files
	Marker     *Marker
	// Running is true when the member's service is running (supervisor pid
	// alive, or the systemd unit active).
	Running bool

	Listening []Listener
	ClockSkew time.Duration // host clock minus this machine's
	FreeDisk  int64         // bytes free where the data dir lives
	DiskPath  string
}

// DataState says whose data the data dir holds.
func (f *Facts) DataState(clusterID, member string) string {
	switch f.dataFolder {
	case "absent":
		return DataAbsent
	case "empty", "files":
		return DataEmpty
	}
	if f.Marker != nil && f.Marker.ClusterID == clusterID && f.Marker.Member == member {
		return DataSame
	}
	return DataOther
}

// Busy returns the listeners that occupy addresses the member binds.
func (f *Facts) Busy(listen []string) []Listener {
	var out []Listener
	for _, a := range listen {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		p, _ := strconv.Atoi(port)
		ip := net.ParseIP(host)
		if host == "localhost" {
			ip = net.IPv4(127, 0, 0, 1)
		}
		for _, l := range f.Listening {
			if l.Port != p {
				continue
			}
			if ip == nil || ip.IsUnspecified() || l.IP.IsUnspecified() || l.IP.Equal(ip) {
				out = append(out, l)
			}
		}
	}
	return out
}

// script prints key=value lines. $1 install path, $2 data dir, $3 working
// directory, $4 supervisor pid file, $5 supervisor script.
const script = `echo "os=$(uname -s)"
echo "machine=$(uname -m)"
if [ -r /etc/os-release ]; then (. /etc/os-release && echo "distro=$PRETTY_NAME"); fi
if [ -d /run/systemd/system ]; then echo systemd=yes; else echo systemd=no; fi
if [ -f "$1" ]; then
  echo installed=yes
  echo "binsha=$(sha256sum <"$1" | cut -d' ' -f1)"
  [ -x "$1" ] && echo "version=$(timeout 5 "$1" --version 2>/dev/null | head -n1)"
fi
if [ -d "$2/member" ]; then echo datadir=member
elif [ -d "$2" ] && [ -n "$(ls -A "$2" | grep -vxF ` + plan.MarkerName + `)" ]; then echo datadir=files
elif [ -d "$2" ]; then echo datadir=empty
else echo datadir=absent; fi
if [ -f "$2/` + plan.MarkerName + `" ]; then echo "marker=$(tr -d '\n' <"$2/` + plan.MarkerName + `")"; fi
running=no
pid=$(cat "$4" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qF "$5" /proc/"$pid"/cmdline 2>/dev/null && running=yes
if [ -d /run/systemd/system ] && systemctl is-active --quiet etcd-node.service 2>/dev/null; then running=yes; fi
echo "running=$running"
for f in /proc/net/tcp /proc/net/tcp6; do [ -r $f ] && awk '$4=="0A"{print "listen="$2}' $f; done
d=$3; while [ ! -d "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done
echo "diskpath=$d"
echo "diskfree=$(df -Pk "$d" | awk 'NR==2{print $4}')"
`

// Gather collects the facts of the host t reaches for the member laid out
// by lay.
func Gather(ctx context.Context, t remote.Transport, member string, lay *plan.HostLayout) (*Facts, error) {
	pidFile, svc := lay.PIDFile, lay.ServiceFile
	if pidFile == "" {
		pidFile, svc = "/nonexistent", "/nonexistent"
	}
	var cmd strings.Builder
	cmd.WriteString("set --")
	for _, a := range []string{lay.InstallPath, lay.DataDir, lay.WorkingDirectory, pidFile, svc} {
		cmd.WriteString(" " + remote.Quote(a))
	}
	cmd.WriteString("\n" + script)
	// The clock on its own, alongside: the round trip of a tiny command
	// bounds the error.
	var clock []byte
	var before, after time.Time
	clockErr := make(chan error, 1)
	go func() {
		var err error
		before = time.Now()
		clock, err = remote.Output(ctx, t, remote.Cmd{Command: "date +%s.%N"})
		after = time.Now()
		clockErr <- err
	}()
	out, err := remote.Output(ctx, t, remote.Cmd{Root: true, Command: cmd.String()})
	if cerr := <-clockErr; err == nil && cerr != nil {
		return nil, fmt.Errorf("reading the clock: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("gathering facts: %w", err)
	}
	out = append(out, "\ntime="...)
	out = append(out, clock...)
	f := &Facts{Host: member, DataDir: lay.DataDir}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "os":
			f.OS = v
		case "machine":
			f.Machine = v
			f.Arch = GoArch(v)
		case "distro":
			f.Distro = v
		case "systemd":
			f.Systemd = v == "yes"
		case "installed":
			f.Installed = v == "yes"
		case "binsha":
			f.InstalledSHA256 = v
		case "version":
			f.InstalledVersion = v
		case "datadir":
			f.dataFolder = v
		case "marker":
			var m Marker
			if json.Unmarshal([]byte(v), &m) == nil {
				f.Marker = &m
			}
		case "running":
			f.Running = v == "yes"
		case "listen":
			if l, ok := parseProcAddr(v); ok {
				f.Listening = append(f.Listening, l)
			}
		case "diskpath":
			f.DiskPath = v
		case "diskfree":
			kb, _ := strconv.ParseInt(v, 10, 64)
			f.FreeDisk = kb * 1024
		case "time":
			if secs, err := strconv.ParseFloat(v, 64); err == nil {
				mid := before.Add(after.Sub(before) / 2)
				remoteT := time.Unix(0, int64(secs*1e9))
				f.ClockSkew = remoteT.Sub(mid).Round(time.Millisecond)
			}
		}
	}
	if f.OS == "" || f.dataFolder == "" {
		return nil, fmt.Errorf("gathering facts: unexpected answer %q", shorten(string(out), 300))
	}
	return f, nil
}

// GoArch maps uname -m to the GOARCH of the bundled node binary.
func GoArch(machine string) string {
	switch machine {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64", "armv8l":
		return "arm64"
	}
	return ""
}

// parseProcAddr decodes /proc/net/tcp's "0100007F:0950".
func parseProcAddr(s string) (Listener, bool) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return Listener{}, false
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return Listener{}, false
	}
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return Listener{}, false
	}
	// The kernel prints each 32-bit word in host (little-endian) order.
	ip := make(net.IP, len(b))
	for i := 0; i < len(b); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return Listener{IP: ip, Port: int(port)}, true
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Problem is a preflight finding about a host.
type Problem struct {
	Host    string
	Fatal   bool
	Message string // says what is wrong and what to do
}

func (p Problem) Error() string { return p.Host + ": " + p.Message }

// Expect is what the plan needs from a host.
type Expect struct {
	Cluster, ClusterID string
	MemberID           string
	Layout             *plan.HostLayout
	// Bundled is true when the node binary is the bundled one, which exists
	// for linux/amd64 and linux/arm64 only.
	Bundled bool
	// MinFreeDisk is fatal below; WarnFreeDisk warns below.
	MinFreeDisk, WarnFreeDisk int64
	// MaxClockSkew warns above.
	MaxClockSkew time.Duration
	// Joins: the member joined the running cluster at runtime (plan
	// join: true), so it cannot bootstrap from an empty data dir; Adding:
	// member add is joining it now, so an empty data dir is expected.
	Joins, Adding bool
}

// Preflight judges f against what the plan needs.
func Preflight(f *Facts, e Expect) []Problem {
	var ps []Problem
	fatal := func(format string, args ...any) {
		ps = append(ps, Problem{Host: f.Host, Fatal: true, Message: fmt.Sprintf(format, args...)})
	}
	warn := func(format string, args ...any) {
		ps = append(ps, Problem{Host: f.Host, Message: fmt.Sprintf(format, args...)})
	}
	if f.OS != "Linux" {
		fatal("the host runs %s; etcd members are provisioned on Linux only", f.OS)
	}
	if e.Bundled && f.Arch == "" {
		fatal("architecture %s has no bundled etcd-node (linux/amd64 and linux/arm64 exist): set spec.node.binary to a binary built for it", f.Machine)
	}
	switch state := f.DataState(e.ClusterID, f.Host); {
	case e.Joins && !e.Adding && (state == DataAbsent || state == DataEmpty):
		fatal("%s joined the running cluster at runtime (join: true in the plan), but data dir %s holds no member data (a reinstalled host?): it cannot bootstrap, and the cluster still counts it. "+
			"Remove it and add it again: etcdctl-wizard member remove -f PLAN %s, then etcdctl-wizard member add -f PLAN --name %s ...",
			f.Host, f.DataDir, f.Host, f.Host)
	case state == DataSame && e.Joins && e.MemberID != "" && f.Marker.MemberID != "" && f.Marker.MemberID != e.MemberID:
		fatal("data dir %s holds the data of an earlier member %s (ID %s) of this cluster, but the cluster now knows %s as ID %s: that member was removed, and its data cannot rejoin. "+
			"Remove the data dir on the host, or run etcdctl-wizard member remove and member add again",
			f.DataDir, f.Host, f.Marker.MemberID, f.Host, e.MemberID)
	case state == DataOther:
		who := "no etcdctl-wizard marker"
		if m := f.Marker; m != nil {
			who = fmt.Sprintf("it belongs to member %s of cluster %s (ID %s)", m.Member, m.Cluster, m.ClusterID)
		}
		fatal("data dir %s holds member data of another cluster (%s); this plan's cluster %s has ID %s. Move the data away or remove it (etcdctl-wizard reset with that cluster's plan), or set another data dir",
			f.DataDir, who, e.Cluster, e.ClusterID)
	}
	if !f.Running {
		busy := f.Busy(e.Layout.Listen)
		if len(busy) > 0 {
			var names []string
			for _, l := range busy {
				names = append(names, l.String())
			}
			fatal("port %d is already in use (listening: %s) and the member is not running: stop the program that holds it or give the member other ports (clientPort, peerPort)",
				busy[0].Port, strings.Join(names, ", "))
		}
	}
	min, warnBelow := e.MinFreeDisk, e.WarnFreeDisk
	if min == 0 {
		min = 64 << 20
	}
	if warnBelow == 0 {
		warnBelow = 1 << 30
	}
	switch {
	case f.FreeDisk < min:
		fatal("only %s free on %s: free at least %s for the member's data", bytesText(f.FreeDisk), f.DiskPath, bytesText(min))
	case f.FreeDisk < warnBelow:
		warn("only %s free on %s", bytesText(f.FreeDisk), f.DiskPath)
	}
	skew := e.MaxClockSkew
	if skew == 0 {
		skew = time.Second
	}
	if f.ClockSkew > skew || f.ClockSkew < -skew {
		warn("clock is %s off this machine's: etcd warns about clock differences between members; synchronise the clocks (NTP)", f.ClockSkew)
	}
	return ps
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}

// MarkerFile renders the marker for a member.
func MarkerFile(cluster, clusterID, member, memberID string) []byte {
	b, _ := json.Marshal(Marker{Cluster: cluster, ClusterID: clusterID, Member: member, MemberID: memberID})
	return append(b, '\n')
}

// MarkerPath is where the marker lives for lay.
func MarkerPath(lay *plan.HostLayout) string { return path.Join(lay.DataDir, plan.MarkerName) }
