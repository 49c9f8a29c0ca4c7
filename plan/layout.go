package plan

import (
	"net/url"
	"path"
	"strconv"
	"strings"
)

// Service managers a host plan can use.
const (
	ServiceSystemd    = "systemd"
	ServiceSupervisor = "supervisor"
)

// Host paths of the supervisor (hosts without systemd).
const (
	SupervisorPath = "/etc/etcd/etcd-node-supervisor.sh"
	PIDFilePath    = "/run/etcd-node.pid"
	LogFilePath    = "/var/log/etcd-node.log"
)

// MarkerName is the file the wizard writes into a member's data dir to
// recognise the data as its cluster's on the next apply.
const MarkerName = ".etcdctl-wizard.json"

// HostOptions are per-host choices BuildFor makes from the host's facts.
type HostOptions struct {
	// Service is ServiceSystemd (the default) or ServiceSupervisor.
	Service string
	// Root, for local members, is the folder holding all of the member's
	// files (binary, env file, supervisor, pid and log files, and the data
	// unless the plan names an absolute data dir), so that several members
	// share one machine.
	Root string
}

func hostOptionsSet(o HostOptions) bool { return o.Service != "" || o.Root != "" }

// HostLayout is where a member's files and process live on its host.
type HostLayout struct {
	Service          string `json:"service" yaml:"service"`
	Root             string `json:"root,omitempty" yaml:"root,omitempty"`
	InstallPath      string `json:"installPath" yaml:"installPath"`
	EnvFile          string `json:"envFile" yaml:"envFile"`
	WorkingDirectory string `json:"workingDirectory" yaml:"workingDirectory"`
	DataDir          string `json:"dataDir" yaml:"dataDir"`
	// ServiceFile is the systemd unit or the supervisor script.
	ServiceFile string `json:"serviceFile" yaml:"serviceFile"`
	PIDFile     string `json:"pidFile,omitempty" yaml:"pidFile,omitempty"`
	LogFile     string `json:"logFile,omitempty" yaml:"logFile,omitempty"`
	// ClientURLs are the member's advertised client URLs (where health is
	// asked, from the host's side); ClientPort and PeerPort must be free
	// before the first start.
	ClientURLs []string `json:"clientURLs" yaml:"clientURLs"`
	ClientPort int      `json:"clientPort" yaml:"clientPort"`
	PeerPort   int      `json:"peerPort" yaml:"peerPort"`
	// Listen are the host:port addresses the member binds (client and peer).
	Listen []string `json:"listen" yaml:"listen"`
}

// Marker is the path of the data dir marker.
func (l *HostLayout) Marker() string { return path.Join(l.DataDir, MarkerName) }

// layout computes a member's host paths.
func (q *Plan) layout(mc *MemberConfig, o HostOptions) *HostLayout {
	l := &HostLayout{Service: o.Service, Root: o.Root, InstallPath: q.Spec.Node.InstallPath, EnvFile: EnvFilePath,
		WorkingDirectory: q.workingDir(), ServiceFile: UnitFilePath,
		ClientPort: mc.Member.ClientPort, PeerPort: mc.Member.PeerPort}
	if l.Service == "" {
		l.Service = ServiceSystemd
	}
	if o.Root != "" {
		l.InstallPath = path.Join(o.Root, "bin", path.Base(q.Spec.Node.InstallPath))
		l.EnvFile = path.Join(o.Root, "etcd-node.env")
		if !path.IsAbs(*q.Spec.Node.DataDir) {
			l.WorkingDirectory = path.Join(o.Root, "data")
		}
	}
	if l.Service == ServiceSupervisor {
		l.ServiceFile, l.PIDFile, l.LogFile = SupervisorPath, PIDFilePath, LogFilePath
		if o.Root != "" {
			l.ServiceFile = path.Join(o.Root, "etcd-node-supervisor.sh")
			l.PIDFile = path.Join(o.Root, "etcd-node.pid")
			l.LogFile = path.Join(o.Root, "etcd-node.log")
		}
	}
	l.DataDir = path.Join(l.WorkingDirectory, mc.Name+".etcd")
	if d, ok := mc.Lookup("data-dir"); ok && d != "" {
		l.DataDir = d
		if !path.IsAbs(d) {
			l.DataDir = path.Join(l.WorkingDirectory, d)
		}
	}
	for _, flag := range []string{"listen-client-urls", "listen-peer-urls"} {
		v, _ := mc.Lookup(flag)
		for _, u := range strings.Split(v, ",") {
			if pu, err := url.Parse(strings.TrimSpace(u)); err == nil && pu.Host != "" {
				l.Listen = append(l.Listen, pu.Host)
			}
		}
	}
	if v, ok := mc.Lookup("advertise-client-urls"); ok && v != "" {
		l.ClientURLs = strings.Split(v, ",")
	} else {
		l.ClientURLs = []string{"http://localhost:2379"}
	}
	return l
}

// StartCommand starts the member (enables it, with systemd).
func (l *HostLayout) StartCommand() string {
	if l.Service == ServiceSupervisor {
		// setsid: the member outlives the SSH session; a clean environment:
		// only the env file configures it.
		return "echo 'etcdctl-wizard-supervisor: start requested' >>" + shellQuote(l.LogFile) + " && " +
			"setsid -f env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/sh " +
			shellQuote(l.ServiceFile) + " </dev/null >/dev/null 2>&1"
	}
	return "systemctl enable --now " + UnitName
}

// RunningCheck succeeds when the member's service is running.
func (l *HostLayout) RunningCheck() string {
	if l.Service == ServiceSupervisor {
		return `pid=$(cat ` + shellQuote(l.PIDFile) + ` 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -qF ` +
			shellQuote(l.ServiceFile) + ` /proc/"$pid"/cmdline`
	}
	return "systemctl is-active --quiet " + UnitName
}

// StopCommand stops the member and waits until it has exited (up to 20 s,
// then kills it).
func (l *HostLayout) StopCommand() string {
	if l.Service == ServiceSupervisor {
		pf := shellQuote(l.PIDFile)
		return `pid=$(cat ` + pf + ` 2>/dev/null) || exit 0
child=$(cat ` + pf + `.child 2>/dev/null)
[ -n "$pid" ] && grep -qF ` + shellQuote(l.ServiceFile) + ` /proc/"$pid"/cmdline 2>/dev/null || { rm -f ` + pf + ` ` + pf + `.child; exit 0; }
kill -TERM "$pid" 2>/dev/null
i=0
while kill -0 "$pid" 2>/dev/null || { [ -n "$child" ] && kill -0 "$child" 2>/dev/null; }; do
  i=$((i+1))
  if [ $i -ge 200 ]; then kill -KILL "$pid" $child 2>/dev/null; fi
  if [ $i -ge 220 ]; then echo "the member did not stop" >&2; exit 1; fi
  sleep 0.1
done
rm -f ` + pf + ` ` + pf + `.child`
	}
	return "systemctl disable --now " + UnitName + " 2>/dev/null || true"
}

// RestartCommand restarts a running member so that it reads changed files.
func (l *HostLayout) RestartCommand() string {
	if l.Service == ServiceSupervisor {
		return "{ " + l.StopCommand() + "\n} && " + l.StartCommand()
	}
	return "systemctl restart " + UnitName
}

// MemberPIDCommand prints the pid of the member process itself.
func (l *HostLayout) MemberPIDCommand() string {
	if l.Service == ServiceSupervisor {
		return "cat " + shellQuote(l.PIDFile+".child")
	}
	return "systemctl show -p MainPID --value " + UnitName
}

// LogTailCommand prints the last n lines of the member's log; with follow
// it keeps printing new lines.
func (l *HostLayout) LogTailCommand(n int, follow bool) string {
	if l.Service == ServiceSupervisor {
		f := ""
		if follow {
			f = "-F "
		}
		return "tail -n " + strconv.Itoa(max(n, 0)) + " " + f + shellQuote(l.LogFile)
	}
	f := ""
	if follow {
		f = " -f"
	}
	return "journalctl -u " + UnitName + " --no-pager -o cat -n " + strconv.Itoa(max(n, 0)) + f
}
