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

// tlsScreen chooses the transport security.
type tlsScreen struct{ form form }

func newTLSScreen(m *Model) tlsScreen {
	t := m.p.Spec.TLS
	mode := t.Mode
	if mode == "" {
		mode = plan.TLSNone
	}
	s := tlsScreen{form: form{fields: []*formField{
		{id: "tlsMode", label: "TLS", value: mode, options: []option{
			{plan.TLSNone, "none", "plain HTTP: anyone on the network can read and write"},
			{plan.TLSSelfSigned, "self-signed", "your CA signs each member: encrypts and authenticates"},
			{plan.TLSAuto, "auto-TLS", "own certificates: encrypts but does not authenticate"},
		}},
		{id: "tlsDir", label: "CA folder", value: t.Dir, input: newInput(""), status: true},
	}}}
	s.sync(m)
	return s
}

func (s *tlsScreen) editing() bool { return s.form.editing }

func (s *tlsScreen) help(m *Model) []key.Binding {
	if s.form.editing {
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter/tab", "done")), m.keys.Cancel, m.keys.ForceQuit}
	}
	return []key.Binding{key.NewBinding(key.WithKeys("left"), key.WithHelp("←/→", "change")), m.keys.Edit, m.keys.Next, m.keys.Back, m.keys.Quit, m.keys.Up, m.keys.Down}
}

// sync shows the CA folder for self-signed TLS and says whether the folder
// already holds a CA (reused) or not (created by 'certs issue').
func (s *tlsScreen) sync(m *Model) {
	dir := s.form.field("tlsDir")
	dir.hidden = s.form.field("tlsMode").value != plan.TLSSelfSigned
	dir.note = ""
	if !dir.hidden {
		switch {
		case dir.value == "":
			dir.note = "where the CA and member certificates live on this machine, e.g. pki"
		default:
			path := dir.value
			if !filepath.IsAbs(path) {
				path = filepath.Join(m.planDir(), path)
			}
			if ca, err := certs.LoadCA(path); err == nil {
				dir.note = fmt.Sprintf("reuse the CA found there (%s)", ca.String())
			} else {
				dir.note = "no CA there yet: 'etcdctl-wizard certs issue -f PLAN' creates it and the member certificates"
			}
		}
	}
	s.form.fixFocus()
}

func (s *tlsScreen) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	r := s.form.update(m.keys, msg)
	if r.changed != nil {
		t := &m.p.Spec.TLS
		t.Mode = s.form.field("tlsMode").value
		if r.changed.id == "tlsMode" && t.Mode != plan.TLSSelfSigned {
			// A CA folder means nothing without self-signed TLS.
			s.form.field("tlsDir").value, s.form.field("tlsDir").err = "", ""
		}
		t.Dir = s.form.field("tlsDir").value
		s.sync(m)
		checkFields(m.p, &s.form, r.changed.id)
	}
	if r.handled {
		return nil
	}
	switch {
	case key.Matches(msg, m.keys.Next):
		return m.goTo(scrReview)
	case key.Matches(msg, m.keys.Back):
		return m.goTo(scrBootstrap)
	}
	return nil
}

func (s *tlsScreen) view(m *Model) string {
	var b strings.Builder
	b.WriteString("How do members and clients talk to each other?\n\n")
	b.WriteString(s.form.view(m))
	return b.String()
}
