package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"text/template"

	"etcdctl-wizard/assets"
	"etcdctl-wizard/node/config"
)

// Host paths of the files a member gets.
const (
	EnvFilePath  = "/etc/etcd/etcd-node.env"
	UnitName     = "etcd-node.service"
	UnitFilePath = "/etc/systemd/system/" + UnitName
)

// Step kinds, in the order Build emits them.
const (
	StepDirectories  = "directories"
	StepBinary       = "binary"
	StepCertificates = "certificates"
	StepEnvFile      = "env-file"
	StepSystemdUnit  = "systemd-unit"
	StepSupervisor   = "supervisor"
	StepStart        = "start"
)

// FileMode is a permission written as octal text ("0644") in JSON and YAML,
// so that step lists read like ls output.
type FileMode uint32

// MarshalText writes the mode as four octal digits.
func (m FileMode) MarshalText() ([]byte, error) { return []byte(fmt.Sprintf("%04o", uint32(m))), nil }

// UnmarshalText reads an octal mode.
func (m *FileMode) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 8, 32)
	if err != nil || v > 0o7777 {
		return fmt.Errorf("file mode %q is not an octal permission such as 0644", b)
	}
	*m = FileMode(v)
	return nil
}

// File is a file a step puts on a host. Content is inline for generated
// text; Source names content that lives elsewhere ("bundled:linux/{arch}"
// for the node binary of the host's architecture, "file:<path>" for a file on
// this machine), in which case SHA256 is left to the executor.
type File struct {
	Path    string   `json:"path" yaml:"path"`
	Mode    FileMode `json:"mode" yaml:"mode"`
	SHA256  string   `json:"sha256,omitempty" yaml:"sha256,omitempty"`
	Content string   `json:"content,omitempty" yaml:"content,omitempty"`
	Source  string   `json:"source,omitempty" yaml:"source,omitempty"`
}

// Step is one idempotent change on a host: files to put, then a command to
// run. Check is a command that succeeds when the step is already done.
type Step struct {
	Kind        string `json:"kind" yaml:"kind"`
	Description string `json:"description" yaml:"description"`
	Files       []File `json:"files,omitempty" yaml:"files,omitempty"`
	Command     string `json:"command,omitempty" yaml:"command,omitempty"`
	Check       string `json:"check,omitempty" yaml:"check,omitempty"`
}

// Target says how to reach a host.
type Target struct {
	Transport string `json:"transport" yaml:"transport"`
	Host      string `json:"host" yaml:"host"`
	Port      int    `json:"port" yaml:"port"`
	User      string `json:"user" yaml:"user"`
	KeyFile   string `json:"keyFile,omitempty" yaml:"keyFile,omitempty"`
	JumpHost  string `json:"jumpHost,omitempty" yaml:"jumpHost,omitempty"`
}

// HostPlan is everything apply does on one member's host, in order.
type HostPlan struct {
	Member    string   `json:"member" yaml:"member"`
	MemberID  string   `json:"memberID,omitempty" yaml:"memberID,omitempty"`
	ClusterID string   `json:"clusterID,omitempty" yaml:"clusterID,omitempty"`
	Target    Target   `json:"target" yaml:"target"`
	Command   []string `json:"command" yaml:"command"` // the member's etcd command line, for reference
	Steps     []Step   `json:"steps" yaml:"steps"`
	// Layout is where the member's files and process live on the host; set
	// by BuildFor when it is given host options, absent from the dry run.
	Layout *HostLayout `json:"layout,omitempty" yaml:"layout,omitempty"`
}

// Step returns the host's step of a kind.
func (h *HostPlan) Step(kind string) (*Step, bool) {
	for i := range h.Steps {
		if h.Steps[i].Kind == kind {
			return &h.Steps[i], true
		}
	}
	return nil, false
}

// Build turns the plan into the per-host step lists that the dry-run export
// prints and apply executes. It does not validate; callers run Validate
// first. Every host gets a systemd service; BuildFor chooses per host.
func Build(p *Plan) ([]HostPlan, error) {
	return BuildFor(p, nil)
}

// BuildFor is Build with per-host choices that depend on what the host is
// (its facts): the service manager, and for local members the folder their
// files live under. hostOpts may be nil or return the zero HostOptions (a
// systemd service at the usual paths).
func BuildFor(p *Plan, hostOpts func(member string) HostOptions) ([]HostPlan, error) {
	q := p.WithDefaults()
	tmpl, err := template.New("").Funcs(template.FuncMap{"q": shellQuote}).ParseFS(assets.Templates,
		"templates/etcd-node.service.tmpl", "templates/etcd-node-supervisor.sh.tmpl")
	if err != nil {
		return nil, fmt.Errorf("service templates: %w", err)
	}
	ids := map[string]MemberIdentity{}
	for _, id := range Identities(q) {
		ids[id.Name] = id
	}
	mcs := q.MemberConfigs()
	out := make([]HostPlan, len(mcs))
	for i := range mcs {
		var o HostOptions
		if hostOpts != nil {
			o = hostOpts(mcs[i].Name)
		}
		h, err := q.buildHost(&mcs[i], tmpl, o)
		if err != nil {
			return nil, err
		}
		if id, ok := ids[h.Member]; ok {
			h.MemberID, h.ClusterID = config.IDString(id.MemberID), config.IDString(id.ClusterID)
		}
		out[i] = h
	}
	return out, nil
}

// workingDir is where the service runs; etcd's default data dir
// (<name>.etcd) lands under it when the plan passes no --data-dir.
func (q *Plan) workingDir() string {
	if d := *q.Spec.Node.DataDir; path.IsAbs(d) {
		return d
	}
	return DefaultDataDir
}

func (q *Plan) buildHost(mc *MemberConfig, tmpl *template.Template, o HostOptions) (HostPlan, error) {
	m := mc.Member
	lay := q.layout(mc, o)
	h := HostPlan{
		Member: mc.Name,
		Target: Target{Transport: m.Transport, Host: m.SSH.Host, Port: m.SSH.Port, User: m.SSH.User,
			KeyFile: m.SSH.KeyFile, JumpHost: m.SSH.JumpHost},
		Command: append([]string{lay.InstallPath}, mc.Args()...),
	}
	if hostOptionsSet(o) {
		h.Layout = lay
	}
	wd := lay.WorkingDirectory
	certs := q.certificateFiles(mc, wd)
	dirs := []string{path.Dir(lay.EnvFile), wd}
	modes := []string{"0755", "0700"}
	for _, f := range certs {
		if d := path.Dir(f.Path); !contains(dirs, d) {
			// Key files live here: keep the folder private.
			dirs, modes = append(dirs, d), append(modes, "0700")
		}
	}
	if o.Root != "" {
		// A local member keeps every file under its own private folder, which
		// is also its env file's folder (dirs[0]).
		modes[0] = "0700"
		if d := path.Dir(lay.InstallPath); !contains(dirs, d) {
			dirs, modes = append(dirs, d), append(modes, "0755")
		}
	}
	var mk, test []string
	for i, d := range dirs {
		mk = append(mk, "install -d -m "+modes[i]+" "+shellQuote(d))
		test = append(test, "test -d "+shellQuote(d))
	}
	h.Steps = append(h.Steps, Step{Kind: StepDirectories, Description: "create the configuration and data directories",
		Command: strings.Join(mk, " && "), Check: strings.Join(test, " && ")})

	bin := File{Path: lay.InstallPath, Mode: 0o755, Source: "bundled:linux/{arch}"}
	desc := "install the bundled etcd-node binary for the host's architecture"
	if q.Spec.Node.Binary != BinaryBundled {
		bin.Source, desc = "file:"+q.Spec.Node.Binary, "install the etcd binary "+q.Spec.Node.Binary
	}
	h.Steps = append(h.Steps, Step{Kind: StepBinary, Description: desc, Files: []File{bin},
		Check: shellQuote(bin.Path) + " --version"})

	if len(certs) > 0 {
		h.Steps = append(h.Steps, Step{Kind: StepCertificates, Description: "install the CA and the member's certificates from " + q.Spec.TLS.Dir,
			Files: certs})
	}

	env := inlineFile(lay.EnvFile, 0o600, q.envFile(mc))
	h.Steps = append(h.Steps, Step{Kind: StepEnvFile, Description: "write the member's ETCD_* configuration", Files: []File{env}})

	if lay.Service == ServiceSupervisor {
		var script bytes.Buffer
		err := tmpl.ExecuteTemplate(&script, "etcd-node-supervisor.sh.tmpl", map[string]string{
			"Member": mc.Name, "Cluster": q.Metadata.Name, "EnvFile": lay.EnvFile, "Script": lay.ServiceFile,
			"WorkingDirectory": wd, "ExecStart": lay.InstallPath, "PIDFile": lay.PIDFile, "LogFile": lay.LogFile,
		})
		if err != nil {
			return HostPlan{}, fmt.Errorf("rendering the supervisor script of %s: %w", mc.Name, err)
		}
		h.Steps = append(h.Steps, Step{Kind: StepSupervisor, Description: "install the supervisor script (no systemd on the host)",
			Files: []File{inlineFile(lay.ServiceFile, 0o755, script.String())}})
		h.Steps = append(h.Steps, Step{Kind: StepStart, Description: "start the member under the supervisor",
			Command: lay.StartCommand(), Check: lay.RunningCheck()})
		return h, nil
	}
	var unit bytes.Buffer
	err := tmpl.ExecuteTemplate(&unit, "etcd-node.service.tmpl", map[string]string{
		"Member": mc.Name, "Cluster": q.Metadata.Name, "EnvFile": lay.EnvFile,
		"WorkingDirectory": wd, "ExecStart": lay.InstallPath,
	})
	if err != nil {
		return HostPlan{}, fmt.Errorf("rendering the systemd unit of %s: %w", mc.Name, err)
	}
	h.Steps = append(h.Steps, Step{Kind: StepSystemdUnit, Description: "install the systemd unit",
		Files: []File{inlineFile(UnitFilePath, 0o644, unit.String())}, Command: "systemctl daemon-reload"})
	h.Steps = append(h.Steps, Step{Kind: StepStart, Description: "enable and start the member",
		Command: lay.StartCommand(), Check: lay.RunningCheck()})
	return h, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func inlineFile(p string, mode FileMode, content string) File {
	sum := sha256.Sum256([]byte(content))
	return File{Path: p, Mode: mode, SHA256: hex.EncodeToString(sum[:]), Content: content}
}

// certificateFiles lists the certificate files the member's flags name, in
// flag order, each once. On this machine they are read from the TLS dir under
// their base names; relative host paths are relative to the working
// directory, as etcd opens them.
func (q *Plan) certificateFiles(mc *MemberConfig, wd string) []File {
	if q.Spec.TLS.Mode != TLSSelfSigned {
		return nil
	}
	var files []File
	seen := map[string]bool{}
	for _, flag := range []string{"trusted-ca-file", "cert-file", "key-file", "peer-trusted-ca-file", "peer-cert-file", "peer-key-file"} {
		v, ok := mc.Lookup(flag)
		if !ok || v == "" {
			continue
		}
		hostPath := v
		if !path.IsAbs(hostPath) {
			hostPath = path.Join(wd, hostPath)
		}
		if seen[hostPath] {
			continue
		}
		seen[hostPath] = true
		mode := FileMode(0o644)
		if strings.HasSuffix(flag, "key-file") {
			mode = 0o600
		}
		files = append(files, File{Path: hostPath, Mode: mode, Source: "file:" + path.Join(q.Spec.TLS.Dir, path.Base(v))})
	}
	return files
}

// envFile renders the member's ETCD_* file: the same flags as its command
// line, double-quoted so that both systemd and sh read it.
func (q *Plan) envFile(mc *MemberConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# etcd member %s of cluster %s, written by etcdctl-wizard.\n", mc.Name, q.Metadata.Name)
	for _, f := range mc.Flags {
		fmt.Fprintf(&b, "%s=%s\n", config.EnvName(f.Name), envQuote(f.Value))
	}
	return b.String()
}

// envQuote double-quotes a value with the escapes systemd's EnvironmentFile
// and POSIX sh agree on.
func envQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`", "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}
