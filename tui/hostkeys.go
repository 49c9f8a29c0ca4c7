package tui

import (
	"fmt"
	"strings"

	"etcdctl-wizard/plan"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// hostKeysMsg carries the result of Applier.HostKeys.
type hostKeysMsg struct {
	keys []HostKey
	err  error
	req  int // the request it answers: a late answer to an older one is dropped
}

// hostKeysScreen lists unknown SSH host keys for explicit acceptance; a
// changed key is shown as refused. Without keys to decide, it goes straight
// on (to the apply, or to a member add).
type hostKeysScreen struct {
	// p holds the hosts to scan; back is the screen esc returns to, and
	// next goes on once every key is trusted.
	p    *plan.Plan
	back screenID
	next func(m *Model) tea.Cmd

	loading  bool
	err      error
	keys     []HostKey
	accepted []bool
	decided  []bool
	cursor   int
}

// askHostKeys shows the host keys of p's SSH hosts that are not trusted
// yet; next runs once the operator trusted each (at once when there are
// none), esc goes back.
func (m *Model) askHostKeys(p *plan.Plan, back screenID, next func(m *Model) tea.Cmd) tea.Cmd {
	m.hostkeys = hostKeysScreen{p: p, back: back, next: next, loading: true}
	m.cur = scrHostKeys
	return m.hostkeys.init(m)
}

func (s *hostKeysScreen) init(m *Model) tea.Cmd {
	m.hostKeysReq++
	a, p, ctx, req := m.opts.Applier, s.p, m.ctx, m.hostKeysReq
	return func() tea.Msg {
		keys, err := a.HostKeys(ctx, p)
		return hostKeysMsg{keys, err, req}
	}
}

func (s *hostKeysScreen) loaded(m *Model, msg hostKeysMsg) tea.Cmd {
	if m.cur != scrHostKeys || msg.req != m.hostKeysReq {
		return nil
	}
	s.loading, s.err, s.keys = false, msg.err, msg.keys
	s.accepted = make([]bool, len(s.keys))
	s.decided = make([]bool, len(s.keys))
	if s.err == nil && len(s.keys) == 0 {
		return s.next(m)
	}
	return nil
}

func (s *hostKeysScreen) editing() bool { return false }

func (s *hostKeysScreen) help(m *Model) []key.Binding {
	if s.loading || s.err != nil {
		return []key.Binding{key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "retry")), m.keys.Back, m.keys.Quit}
	}
	return []key.Binding{m.keys.Up, m.keys.Down, m.keys.Accept, m.keys.Refuse,
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "continue")), m.keys.Back, m.keys.Quit}
}

func (s *hostKeysScreen) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, m.keys.Back):
		return m.goTo(s.back)
	case s.loading:
		return nil
	case msg.String() == "r" && s.err != nil:
		return m.askHostKeys(s.p, s.back, s.next)
	case s.err != nil:
		return nil
	case key.Matches(msg, m.keys.Up):
		s.cursor = max(s.cursor-1, 0)
	case key.Matches(msg, m.keys.Down):
		s.cursor = min(s.cursor+1, len(s.keys)-1)
	case key.Matches(msg, m.keys.Accept):
		if s.keys[s.cursor].Changed {
			m.setFlash(true, "a changed host key cannot be accepted here: check the host, then fix known_hosts")
			return nil
		}
		s.accepted[s.cursor], s.decided[s.cursor] = true, true
		s.cursor = min(s.cursor+1, len(s.keys)-1)
	case key.Matches(msg, m.keys.Refuse):
		s.accepted[s.cursor], s.decided[s.cursor] = false, true
		s.cursor = min(s.cursor+1, len(s.keys)-1)
	case msg.Type == tea.KeyEnter:
		for i, k := range s.keys {
			switch {
			case k.Changed:
				m.setFlash(true, "%s presents a changed host key: it is refused", k.Member)
				return nil
			case !s.decided[i]:
				m.setFlash(true, "decide on %s's key first (y trusts it, n does not)", k.Member)
				return nil
			case !s.accepted[i]:
				m.setFlash(true, "%s's key is not trusted: the wizard cannot reach it", k.Member)
				return nil
			}
		}
		return s.next(m)
	}
	return nil
}

// acceptedKeys are the keys the operator trusted.
func (s *hostKeysScreen) acceptedKeys() []HostKey {
	var out []HostKey
	for i, k := range s.keys {
		if s.accepted[i] {
			out = append(out, k)
		}
	}
	return out
}

func (s *hostKeysScreen) view(m *Model) string {
	var b strings.Builder
	switch {
	case s.loading:
		fmt.Fprintf(&b, "Connecting to the %s to read their SSH host keys...\n", plural(len(s.p.Spec.Members), "host"))
		return b.String()
	case s.err != nil:
		b.WriteString(m.st.errText.Render("✗ "+s.err.Error()) + "\n\nCheck the hosts' addresses and SSH settings, then press r to retry.\n")
		return b.String()
	}
	b.WriteString("These hosts are not in known_hosts yet. Compare each fingerprint with the host's own\n")
	b.WriteString("(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host) before trusting it.\n\n")
	for i, k := range s.keys {
		mark := "  "
		if i == s.cursor {
			mark = m.st.selected.Render("> ")
		}
		state := "[ ] undecided"
		switch {
		case k.Changed:
			state = m.st.errText.Render("[refused] CHANGED")
		case s.decided[i] && s.accepted[i]:
			state = m.st.okText.Render("[x] trusted")
		case s.decided[i]:
			state = m.st.warnText.Render("[-] not trusted")
		}
		fmt.Fprintf(&b, "%s%-10s %-22s %s\n", mark, k.Member, k.Host, state)
		fmt.Fprintf(&b, "    %s %s\n", k.KeyType, k.Fingerprint)
		if k.Changed {
			fmt.Fprintf(&b, "    %s\n", m.st.errText.Render("known_hosts has "+k.OldFingerprint+": the host was reinstalled, or someone is in the middle"))
		}
	}
	return b.String()
}
