package tui

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/plan/dnscheck"

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
type bootScreen struct {
	form form
	// dns is the last live check of the DNS SRV records.
	dns *dnsCheckMsg
}

// Resolver is the part of net.Resolver the DNS SRV check uses.
type Resolver = dnscheck.Resolver

// tokenMsg is a discovery token created on request.
type tokenMsg struct {
	url string
	err error
}

// canCreateToken: discovery mode, a service to ask, and an applier that can.
func (s *bootScreen) canCreateToken(m *Model) bool {
	_, ok := m.opts.Applier.(DiscoveryCreator)
	return ok && m.p.Spec.Bootstrap.Mode == plan.ModeDiscovery && s.form.field("discService").value != ""
}

// createToken asks the discovery service for a token sized for the plan
// (the expected size, or the number of hosts).
func (s *bootScreen) createToken(m *Model) tea.Cmd {
	dc := m.opts.Applier.(DiscoveryCreator)
	size := m.p.Spec.Bootstrap.Discovery.Size
	if size == 0 {
		size = len(m.p.Spec.Members)
	}
	service, ctx := s.form.field("discService").value, m.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		u, err := dc.NewDiscoveryURL(ctx, service, size)
		return tokenMsg{u, err}
	}
}

func (s *bootScreen) tokenCreated(m *Model, msg tokenMsg) {
	if msg.err != nil {
		m.setFlash(true, "discovery token: %v", msg.err)
		return
	}
	f := s.form.field("discURL")
	f.value = msg.url
	s.apply(m, f)
	checkFields(m.p, &s.form, "discURL")
	m.setFlash(false, "created the discovery token %s", msg.url)
}

// dnsCheckMsg is the result of looking up the plan's records.
type dnsCheckMsg struct {
	lines []string
	ok    bool
}

// checkDNS looks up every record the plan needs (plan/dnscheck) and says
// which are published as the plan needs them.
func checkDNS(m *Model) tea.Cmd {
	r := m.opts.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	p, ctx := m.p, m.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		out := dnsCheckMsg{ok: true}
		for _, rec := range dnscheck.Check(ctx, p, r).Records {
			if rec.OK() {
				out.lines = append(out.lines, "✓ "+rec.String())
				continue
			}
			out.ok = false
			out.lines = append(out.lines, "✗ "+rec.Problem)
		}
		return out
	}
}

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
			{plan.ModeStatic, "static", "each member gets --initial-cluster listing all members"},
			{plan.ModeDiscovery, "discovery", "members meet through an etcd discovery URL"},
			{plan.ModeDNSSRV, "DNS SRV", "members find each other through DNS SRV records"},
		}},
		{id: "discURL", label: "Discovery URL", value: b.Discovery.URL, input: newInput(""),
			note: "e.g. https://discovery.example.com/v2/keys/discovery/<token>"},
		{id: "discService", label: "Or new token at", input: newInput(""),
			note: "an etcd-node cluster's URL, its /v2/keys/discovery folder or https://discovery.etcd.io; then press t"},
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
	keys := []key.Binding{key.NewBinding(key.WithKeys("left"), key.WithHelp("←/→", "change")), m.keys.Edit}
	if s.canCheck(m) {
		keys = append(keys, m.keys.Check)
	}
	if s.canCreateToken(m) {
		keys = append(keys, key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "create token")))
	}
	return append(keys, m.keys.Next, m.keys.Back, m.keys.Quit, m.keys.Up, m.keys.Down)
}

func (s *bootScreen) canCheck(m *Model) bool {
	b := m.p.Spec.Bootstrap
	return b.Mode == plan.ModeDNSSRV && b.DNSSRV.Domain != "" && m.p.DNSRecords() != ""
}

// sync shows the fields of the chosen mode.
func (s *bootScreen) sync(m *Model) {
	mode := s.form.field("mode").value
	for _, id := range []string{"discURL", "discService", "discSize"} {
		s.form.field(id).hidden = mode != plan.ModeDiscovery
	}
	if _, ok := m.opts.Applier.(DiscoveryCreator); !ok {
		s.form.field("discService").hidden = true
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
		for _, id := range []string{"discURL", "discService", "discSize", "srvDomain", "srvService"} {
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
		s.dns = nil
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
	case msg.String() == "t" && s.canCreateToken(m):
		m.setFlash(false, "asking %s for a token...", s.form.field("discService").value)
		return s.createToken(m)
	case key.Matches(msg, m.keys.Check) && s.canCheck(m):
		s.dns = &dnsCheckMsg{lines: []string{"looking up the records..."}}
		return checkDNS(m)
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
		if s.dns != nil {
			b.WriteString("\nRecords to publish, looked up with this machine's resolver:\n")
			for _, l := range s.dns.lines {
				st := m.st.okText
				if strings.HasPrefix(l, "✗") {
					st = m.st.errText
				}
				b.WriteString("  " + st.Render(l) + "\n")
			}
		} else {
			b.WriteString("\nRecords to publish (zone-file syntax):\n")
			recs := m.p.DNSRecords()
			if recs == "" {
				recs = "(none yet: give the hosts a hostname on the hosts screen)"
			}
			for _, l := range strings.Split(recs, "\n") {
				b.WriteString("  " + l + "\n")
			}
			if s.canCheck(m) {
				b.WriteString(m.st.faint.Render("  press c to look them up now") + "\n")
			}
		}
	}
	return b.String()
}
