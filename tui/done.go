package tui

import (
	"fmt"
	"path/filepath"
	"strings"

	"etcdctl-wizard/certs"
	"etcdctl-wizard/plan"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// doneScreen summarises the running cluster: endpoints, an etcdctl
// environment to paste, where the plan is.
type doneScreen struct {
	endpoints []string
	env       []string
}

func newDoneScreen(m *Model) doneScreen {
	var s doneScreen
	q := m.p.WithDefaults()
	mcs := q.MemberConfigs()
	for _, mc := range mcs {
		if v, ok := mc.Lookup("advertise-client-urls"); ok && v != "" {
			s.endpoints = append(s.endpoints, strings.Split(v, ",")...)
		}
	}
	s.env = append(s.env, "export ETCDCTL_ENDPOINTS="+strings.Join(s.endpoints, ","))
	switch q.Spec.TLS.Mode {
	case plan.TLSSelfSigned:
		dir := q.Spec.TLS.Dir
		if !filepath.IsAbs(dir) {
			if abs, err := filepath.Abs(filepath.Join(m.planDir(), dir)); err == nil {
				dir = abs
			}
		}
		s.env = append(s.env, "export ETCDCTL_CACERT="+filepath.Join(dir, certs.CACertFile))
		if len(mcs) > 0 {
			s.env = append(s.env,
				"export ETCDCTL_CERT="+filepath.Join(dir, mcs[0].Name+"-client.crt"),
				"export ETCDCTL_KEY="+filepath.Join(dir, mcs[0].Name+"-client.key"))
		}
	case plan.TLSAuto:
		// Auto-TLS certificates are signed by nobody: etcdctl can only skip
		// the check.
		s.env = append(s.env, "export ETCDCTL_INSECURE_SKIP_TLS_VERIFY=true")
	}
	return s
}

func (s *doneScreen) editing() bool { return false }

func (s *doneScreen) help(m *Model) []key.Binding {
	return []key.Binding{m.keys.Back, m.keys.Quit}
}

func (s *doneScreen) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if key.Matches(msg, m.keys.Back) {
		m.cur = scrApply
	}
	return nil
}

func (s *doneScreen) view(m *Model) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", m.st.okText.Render(fmt.Sprintf("✓ %s is running with %d members", m.p.Metadata.Name, len(m.p.Spec.Members))))
	b.WriteString(m.apply.clusterPanel(m))
	b.WriteString("\nClient endpoints:\n")
	for _, e := range s.endpoints {
		b.WriteString("  " + e + "\n")
	}
	b.WriteString("\netcdctl environment (paste into your shell):\n")
	for _, e := range s.env {
		b.WriteString("  " + e + "\n")
	}
	b.WriteString("  etcdctl endpoint health\n")
	fmt.Fprintf(&b, "\nThe plan is saved in %s\n'etcdctl-wizard status -f PLAN' follows the cluster", m.planPath)
	if m.sandbox {
		b.WriteString("; 'etcdctl-wizard sandbox down' removes it")
	}
	b.WriteString(".\n")
	return b.String()
}
