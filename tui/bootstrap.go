package tui

import (
	"strconv"
	"strings"

	"etcdctl-wizard/plan"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// fieldPaths maps form fields to the plan fields their findings name.
var fieldPaths = map[string]string{
	"name":       "metadata.name",
	"mode":       "spec.bootstrap.mode",
	"discURL":    "spec.bootstrap.discovery.url",
	"discSize":   "spec.bootstrap.discovery.size",
	"srvDomain":  "spec.bootstrap.dnsSRV.domain",
	"srvService": "spec.bootstrap.dnsSRV.serviceName",
	"tlsMode":    "spec.tls.mode",
	"tlsDir":     "spec.tls.dir",
}

// checkFields sets each listed field's error from plan.Validate (the first
// error naming its plan field) and refreshes fields that show one.
func checkFields(p *plan.Plan, f *form, ids ...string) {
	byField := map[string]string{}
	for _, fd := range plan.Validate(p) {
		if fd.Severity == plan.SeverityError && fd.Field != "" {
			if _, ok := byField[fd.Field]; !ok {
				byField[fd.Field] = fd.Message
			}
		}
	}
	for _, x := range f.fields {
		if x.err != "" && !strings.HasPrefix(x.err, "not a number") {
			ids = append(ids, x.id)
		}
	}
	for _, id := range ids {
		f.field(id).err = byField[fieldPaths[id]]
	}
}

// bootScreen asks the cluster name and how members find each other.
type bootScreen struct{ form form }

func newBootScreen(m *Model) bootScreen {
	b := m.p.Spec.Bootstrap
	mode := b.Mode
	if mode == "" {
		mode = plan.ModeStatic
	}
	size := ""
	if b.Discovery.Size != 0 {
		size = strconv.Itoa(b.Discovery.Size)
	}
	s := bootScreen{form: form{fields: []*formField{
		{id: "name", label: "Cluster name", value: m.p.Metadata.Name, input: newInput(""),
			note: "also the --initial-cluster-token, unless the plan sets one"},
		{id: "mode", label: "Bootstrap", value: mode, options: []option{
			{plan.ModeStatic, "static", "every member gets --initial-cluster listing all members"},
			{plan.ModeDiscovery, "discovery", "members meet through an etcd discovery URL (a running cluster)"},
			{plan.ModeDNSSRV, "DNS SRV", "members find each other through DNS SRV records you publish"},
		}},
		{id: "discURL", label: "Discovery URL", value: b.Discovery.URL, input: newInput(""),
			note: "e.g. https://discovery.example.com/v2/keys/discovery/<token>"},
		{id: "discSize", label: "Expected size", value: size, input: newInput(""),
			note: "empty: the number of hosts"},
		{id: "srvDomain", label: "DNS domain", value: b.DNSSRV.Domain, input: newInput(""),
			note: "--discovery-srv, e.g. example.com"},
		{id: "srvService", label: "Service name", value: b.DNSSRV.ServiceName, input: newInput(""),
			note: "--discovery-srv-name (optional)"},
	}}}
	s.sync(m)
	return s
}

func (s *bootScreen) editing() bool { return s.form.editing }

func (s *bootScreen) help(m *Model) []key.Binding {
	if s.form.editing {
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter/tab", "done")), m.keys.Cancel, m.keys.ForceQuit}
	}
	return []key.Binding{key.NewBinding(key.WithKeys("left"), key.WithHelp("←/→", "change")), m.keys.Edit, m.keys.Next, m.keys.Back, m.keys.Quit, m.keys.Up, m.keys.Down}
}

// sync shows the fields of the chosen mode.
func (s *bootScreen) sync(m *Model) {
	mode := s.form.field("mode").value
	for _, id := range []string{"discURL", "discSize"} {
		s.form.field(id).hidden = mode != plan.ModeDiscovery
	}
	for _, id := range []string{"srvDomain", "srvService"} {
		s.form.field(id).hidden = mode != plan.ModeDNSSRV
	}
	s.form.fixFocus()
}

// apply writes the form into the plan. Answers of a mode not chosen are
// cleared, in the form and in the plan: they no longer apply.
func (s *bootScreen) apply(m *Model, changed *formField) {
	f := &s.form
	b := &m.p.Spec.Bootstrap
	m.p.Metadata.Name = f.field("name").value
	mode := f.field("mode").value
	if changed != nil && changed.id == "mode" && mode != b.Mode {
		for _, id := range []string{"discURL", "discSize", "srvDomain", "srvService"} {
			f.field(id).value, f.field(id).err = "", ""
		}
	}
	b.Mode = mode
	b.Discovery.URL, b.Discovery.Size = "", 0
	b.DNSSRV.Domain, b.DNSSRV.ServiceName = "", ""
	switch mode {
	case plan.ModeDiscovery:
		b.Discovery.URL = f.field("discURL").value
		if v := f.field("discSize").value; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				f.field("discSize").err = "not a number: " + v
			} else {
				b.Discovery.Size = n
			}
		}
	default:
		b.Discovery = plan.Discovery{}
	}
	if mode == plan.ModeDNSSRV {
		b.DNSSRV.Domain = f.field("srvDomain").value
		b.DNSSRV.ServiceName = f.field("srvService").value
	} else {
		b.DNSSRV = plan.DNSSRV{}
	}
	s.sync(m)
}

func (s *bootScreen) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	r := s.form.update(m.keys, msg)
	if r.changed != nil {
		if f := s.form.field("discSize"); r.changed == f {
			f.err = ""
		}
		s.apply(m, r.changed)
		checkFields(m.p, &s.form, r.changed.id)
	}
	if r.handled {
		return nil
	}
	switch {
	case key.Matches(msg, m.keys.Next):
		return m.goTo(scrTLS)
	case key.Matches(msg, m.keys.Back):
		return m.goTo(scrHosts)
	}
	return nil
}

func (s *bootScreen) view(m *Model) string {
	var b strings.Builder
	b.WriteString("How do the members find each other the first time?\n\n")
	b.WriteString(s.form.view(m))
	if m.p.Spec.Bootstrap.Mode == plan.ModeDNSSRV && m.p.Spec.Bootstrap.DNSSRV.Domain != "" {
		b.WriteString("\nRecords to publish (zone-file syntax):\n")
		recs := m.p.DNSRecords()
		if recs == "" {
			recs = "(none yet: give the hosts a hostname on the hosts screen)"
		}
		for _, l := range strings.Split(recs, "\n") {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}
