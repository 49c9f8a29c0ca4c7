package tui

import (
	"fmt"
	"path/filepath"
	"strings"

	"etcdctl-wizard/plan"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// Start choices.
const (
	choiceSandbox = "sandbox"
	choiceNew     = "new"
	choiceOpen    = "open"
	choiceManage  = "manage"
)

// startScreen picks how to begin. Managing a running cluster is offered
// when the applier can (MemberManager).
type startScreen struct {
	choices []option
	cursor  int
	// typing is true while the plan path is being entered, for the choice
	// typingFor (open or manage: both take a plan file).
	typing    bool
	typingFor string
	path      textinput.Model
}

func newStartScreen(m *Model) startScreen {
	s := startScreen{path: newInput("")}
	s.path.Placeholder = "path/to/plan.yaml"
	if m.opts.Sandbox != nil {
		s.choices = append(s.choices, option{choiceSandbox, "Local sandbox", "3 members on this machine, ready to apply: see a real cluster come up"})
	}
	s.choices = append(s.choices,
		option{choiceNew, "New cluster", "enter the hosts, then choose the bootstrap mode and the TLS style"},
		option{choiceOpen, "Open a plan file", "load a plan YAML (from 'plan import' or a previous session)"})
	if m.members() != nil {
		s.choices = append(s.choices, option{choiceManage, "Manage a running cluster",
			"open the plan of an applied cluster: its members live beside the plan, add or remove members"})
	}
	return s
}

// choosePath preselects "open a plan file" with a path filled in.
func (s *startScreen) choosePath(path string) {
	for i, c := range s.choices {
		if c.value == choiceOpen {
			s.cursor = i
		}
	}
	s.path.SetValue(path)
}

func (s *startScreen) editing() bool { return s.typing }

func (s *startScreen) help(m *Model) []key.Binding {
	if s.typing {
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")), m.keys.Cancel, m.keys.ForceQuit}
	}
	return []key.Binding{m.keys.Up, m.keys.Down, m.keys.Enter, m.keys.Quit}
}

func (s *startScreen) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if s.typing {
		switch msg.Type {
		case tea.KeyEnter:
			path := strings.TrimSpace(s.path.Value())
			if path == "" {
				m.setFlash(true, "type the path of a plan file")
				return nil
			}
			p, err := plan.Load(path)
			if err != nil {
				m.setFlash(true, "%v", err)
				return nil
			}
			s.typing = false
			s.path.Blur()
			if s.typingFor == choiceManage {
				return m.openCluster(p, path)
			}
			m.openPlan(p, path, false)
			m.setFlash(false, "opened %s", path)
		case tea.KeyEsc:
			s.typing = false
			s.path.Blur()
		default:
			s.path, _ = s.path.Update(msg)
		}
		return nil
	}
	switch {
	case key.Matches(msg, m.keys.Up):
		s.cursor = (s.cursor + len(s.choices) - 1) % len(s.choices)
	case key.Matches(msg, m.keys.Down, m.keys.Tab):
		s.cursor = (s.cursor + 1) % len(s.choices)
	case key.Matches(msg, m.keys.Enter):
		switch s.choices[s.cursor].value {
		case choiceSandbox:
			p, path, err := m.opts.Sandbox()
			if err != nil {
				m.setFlash(true, "sandbox: %v", err)
				return nil
			}
			m.openPlan(p, path, true)
		case choiceNew:
			name := "etcd-cluster-1"
			m.openPlan(newPlan(name), filepath.Join(m.dir(), name+".yaml"), false)
		case choiceOpen, choiceManage:
			// One path input serves both: the path typed for one is kept
			// for the other.
			s.typing, s.typingFor = true, s.choices[s.cursor].value
			s.path.CursorEnd()
			s.path.Focus()
		}
	}
	return nil
}

// newPlan is an empty plan as the operator starts it: only what the plan
// file needs to load, every default left to plan.WithDefaults.
func newPlan(name string) *plan.Plan {
	return &plan.Plan{
		APIVersion: plan.APIVersion,
		Kind:       plan.KindCluster,
		Metadata:   plan.Metadata{Name: name},
		Spec: plan.Spec{
			Bootstrap: plan.Bootstrap{Mode: plan.ModeStatic},
			TLS:       plan.TLS{Mode: plan.TLSNone},
		},
	}
}

func (s *startScreen) view(m *Model) string {
	var b strings.Builder
	b.WriteString("What do you want to do?\n\n")
	for i, c := range s.choices {
		mark, label := "  ", c.label
		if i == s.cursor {
			mark, label = m.st.selected.Render("> "), m.st.selected.Render(c.label)
		}
		fmt.Fprintf(&b, "%s%s\n    %s\n", mark, label, m.st.faint.Render(c.desc))
		if (s.typing && c.value == s.typingFor) || (!s.typing && c.value == choiceOpen && s.path.Value() != "") {
			fmt.Fprintf(&b, "    plan file: [%s]\n", s.path.View())
		}
	}
	return b.String()
}
