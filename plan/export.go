package plan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"etcdctl-wizard/node/config"
	"go.yaml.in/yaml/v3"
)

// Export formats.
const (
	FormatShell   = "sh"
	FormatEnv     = "env"
	FormatSystemd = "systemd"
	FormatJSON    = "json"
	FormatYAML    = "yaml"
	FormatDNS     = "dns"
)

// Formats lists the export formats.
var Formats = []string{FormatShell, FormatEnv, FormatSystemd, FormatJSON, FormatYAML, FormatDNS}

// ExportFile is one member's file of an export.
type ExportFile struct {
	Member string
	Name   string // file name, e.g. infra0.sh
	Data   []byte
}

// Exported is a rendering of the plan: Combined for stdout, Files for one
// file per member.
type Exported struct {
	Combined []byte
	Files    []ExportFile
}

// Export renders the plan in a format. Every format is read off the step
// list of Build (or, for sh, the same member configurations Build uses), so
// the dry run shows what apply does.
func Export(p *Plan, format string) (*Exported, error) {
	q := p.WithDefaults()
	hosts, err := Build(q)
	if err != nil {
		return nil, err
	}
	mcs := q.MemberConfigs()
	out := &Exported{}
	var comb bytes.Buffer
	switch format {
	case FormatShell:
		bin := q.BinaryName()
		fmt.Fprintf(&comb, "# %s\n# Run each command on its member's host.\n", q.summary(hosts))
		for i := range mcs {
			cmd := mcs[i].Command(bin)
			head := hostComment(&mcs[i], &hosts[i])
			fmt.Fprintf(&comb, "\n%s\n%s\n", head, cmd)
			out.Files = append(out.Files, ExportFile{Member: mcs[i].Name, Name: mcs[i].Name + ".sh",
				Data: []byte(fmt.Sprintf("#!/bin/sh\n%s\nexec %s\n", head, cmd))})
		}
	case FormatEnv, FormatSystemd:
		kind, ext, path := StepEnvFile, ".env", EnvFilePath
		if format == FormatSystemd {
			kind, ext, path = StepSystemdUnit, ".service", UnitFilePath
		}
		for i := range hosts {
			st, ok := hosts[i].Step(kind)
			if !ok || len(st.Files) != 1 {
				return nil, fmt.Errorf("the step list of %s has no %s step", hosts[i].Member, kind)
			}
			data := st.Files[0].Content
			if i > 0 {
				comb.WriteString("\n")
			}
			fmt.Fprintf(&comb, "# ==> %s: %s <==\n%s", hosts[i].Member, path, data)
			out.Files = append(out.Files, ExportFile{Member: hosts[i].Member, Name: hosts[i].Member + ext, Data: []byte(data)})
		}
	case FormatJSON:
		data, err := json.MarshalIndent(hosts, "", "  ")
		if err != nil {
			return nil, err
		}
		comb.Write(append(data, '\n'))
		for i := range hosts {
			data, err := json.MarshalIndent(hosts[i], "", "  ")
			if err != nil {
				return nil, err
			}
			out.Files = append(out.Files, ExportFile{Member: hosts[i].Member, Name: hosts[i].Member + ".json", Data: append(data, '\n')})
		}
	case FormatYAML:
		data, err := yamlBytes(hosts)
		if err != nil {
			return nil, err
		}
		comb.Write(data)
		for i := range hosts {
			data, err := yamlBytes(hosts[i])
			if err != nil {
				return nil, err
			}
			out.Files = append(out.Files, ExportFile{Member: hosts[i].Member, Name: hosts[i].Member + ".yaml", Data: data})
		}
	case FormatDNS:
		if q.Spec.Bootstrap.Mode != ModeDNSSRV {
			return nil, fmt.Errorf("format dns needs spec.bootstrap.mode dns-srv, the plan uses %s", q.Spec.Bootstrap.Mode)
		}
		fmt.Fprintf(&comb, "; DNS records for %s (zone-file syntax)\n%s\n", q.summary(hosts), q.DNSRecords())
		out.Files = append(out.Files, ExportFile{Name: q.Metadata.Name + ".zone", Data: comb.Bytes()})
	default:
		return nil, fmt.Errorf("unknown format %q: use one of %s", format, strings.Join(Formats, ", "))
	}
	out.Combined = comb.Bytes()
	return out, nil
}

func yamlBytes(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// summary is the one-line description at the top of an export.
func (q *Plan) summary(hosts []HostPlan) string {
	s := fmt.Sprintf("%s: %s bootstrap, TLS %s, %d members", q.Metadata.Name, q.Spec.Bootstrap.Mode, q.Spec.TLS.Mode, len(q.Spec.Members))
	cluster := ""
	for _, h := range hosts {
		if h.ClusterID == "" || (cluster != "" && h.ClusterID != cluster) {
			return s
		}
		cluster = h.ClusterID
	}
	if cluster != "" {
		s += ", cluster ID " + cluster
	}
	return s
}

func hostComment(mc *MemberConfig, h *HostPlan) string {
	s := fmt.Sprintf("# %s on %s", mc.Name, mc.Member.IP)
	if h.MemberID != "" {
		s += ", member ID " + h.MemberID
	}
	return s
}

// IDString is re-exported for callers that print IDs next to findings.
func IDString(id uint64) string { return config.IDString(id) }
