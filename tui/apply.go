package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// applyEventMsg and statusMsg carry the run they belong to: after "apply
// again" the previous run's last messages must not touch the new one.
type applyEventMsg struct {
	ev  Event
	ok  bool // false: the channel closed
	run int
}

type statusMsg struct {
	st  ClusterStatus
	ok  bool
	run int
}

type tickMsg time.Time

// applyScreen follows an apply: one row per host, a cluster panel, the
// selected host's log tail, cancel with confirmation.
type applyScreen struct {
	runView
	cancel     context.CancelFunc
	events     <-chan Event
	statuses   <-chan ClusterStatus
	status     *ClusterStatus
	confirming bool
	// run numbers the runs of this screen (apply again starts a new one).
	run int
}

func (m *Model) now() time.Time {
	if m.opts.Now != nil {
		return m.opts.Now()
	}
	return time.Now()
}

func waitEvent(ch <-chan Event, run int) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		return applyEventMsg{ev, ok, run}
	}
}

func waitStatus(ch <-chan ClusterStatus, run int) tea.Cmd {
	return func() tea.Msg {
		st, ok := <-ch
		return statusMsg{st, ok, run}
	}
}

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func (s *applyScreen) init(m *Model) tea.Cmd {
	if s.cancel != nil {
		s.cancel()
	}
	var hosts []string
	for _, mem := range m.p.Spec.Members {
		hosts = append(hosts, mem.Name)
	}
	*s = applyScreen{runView: newRunView(m.now(), hosts), run: s.run + 1}
	ctx, cancel := context.WithCancel(m.ctx)
	s.cancel = cancel
	s.events = m.opts.Applier.Apply(ctx, m.p, m.planDir(), m.hostkeys.acceptedKeys())
	s.statuses = m.opts.Applier.Status(ctx, m.p, m.planDir())
	return tea.Batch(waitEvent(s.events, s.run), waitStatus(s.statuses, s.run), tick())
}

func (s *applyScreen) running() bool { return s.events != nil && !s.finished }

func (s *applyScreen) event(m *Model, msg applyEventMsg) tea.Cmd {
	if msg.run != s.run {
		return nil
	}
	if !msg.ok {
		s.closed()
		return nil
	}
	if !s.runView.event(m, msg.ev) {
		return waitEvent(s.events, s.run)
	}
	if s.failed == nil && !s.cancelled {
		return m.goTo(scrDone)
	}
	return nil
}

func (s *applyScreen) onStatus(m *Model, msg statusMsg) tea.Cmd {
	if !msg.ok || msg.run != s.run {
		return nil
	}
	st := msg.st
	s.status = &st
	return waitStatus(s.statuses, s.run)
}

func (s *applyScreen) editing() bool { return s.confirming || s.asking() }

func (s *applyScreen) help(m *Model) []key.Binding {
	switch {
	case s.asking():
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "answer")), key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "decline"))}
	case s.confirming:
		return []key.Binding{m.keys.Yes, m.keys.No}
	case s.running():
		return []key.Binding{key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc/ctrl+c", "cancel apply")), m.keys.Up, m.keys.Down}
	}
	keys := []key.Binding{key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "apply again"))}
	if _, ok := m.opts.Applier.(LogTailer); ok {
		keys = append(keys, key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "member log")))
	}
	return append(keys, m.keys.Back, m.keys.Quit, m.keys.Up, m.keys.Down)
}

func (s *applyScreen) onLog(m *Model, msg logTailMsg) {
	if lines, ok := logLines(m, msg); ok {
		s.row(msg.member).memberLog = lines
	}
}

func (s *applyScreen) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if s.asking() {
		s.answerKey(msg)
		return nil
	}
	if s.confirming {
		switch {
		case key.Matches(msg, m.keys.Yes):
			s.confirming = false
			s.cancelled = true
			s.cancel()
			m.setFlash(false, "cancelling: the hosts finish their current step")
		case key.Matches(msg, m.keys.No):
			s.confirming = false
		}
		return nil
	}
	switch {
	case key.Matches(msg, m.keys.Up):
		s.up()
	case key.Matches(msg, m.keys.Down):
		s.down()
	case s.running() && (msg.Type == tea.KeyEsc || msg.Type == tea.KeyCtrlC):
		if !s.cancelled {
			s.confirming = true
		}
	case msg.String() == "l":
		if len(s.rows) > 0 {
			return m.fetchLog(m.p, s.rows[s.cursor].name)
		}
	case !s.running() && msg.String() == "r":
		return s.init(m)
	case !s.running() && key.Matches(msg, m.keys.Back):
		s.cancel()
		return m.goTo(scrReview)
	}
	return nil
}

func (s *applyScreen) view(m *Model) string {
	var b strings.Builder
	switch {
	case s.asking():
		b.WriteString(s.questionView())
	case s.confirming:
		b.WriteString(m.st.warnText.Render("Cancel the apply? Hosts stop after their current step; apply again to resume. (y/n)") + "\n")
	case s.cancelled && s.finished:
		b.WriteString(m.st.warnText.Render("Cancelled. Apply again (r) to resume where it stopped.") + "\n")
	case s.failed != nil:
		fmt.Fprintf(&b, "%s\n", m.st.errText.Render(fmt.Sprintf("✗ apply failed on %s at step %q", displayOr(s.failedHost, "the run"), s.failedStep)))
	case s.finished:
		b.WriteString(m.st.okText.Render("✓ applied") + "\n")
	default:
		fmt.Fprintf(&b, "Applying %s (%s)\n", m.p.Metadata.Name, m.now().Sub(s.started).Truncate(time.Second))
	}
	b.WriteString(s.rowsView(m))
	b.WriteString("\n" + s.clusterPanel(m))
	b.WriteString(s.failureView(m))
	b.WriteString(s.logView(m, max(m.height-len(s.rows)-16, 3)))
	if s.failed != nil {
		b.WriteString("\nNext: fix the cause above, then press r to apply again (finished steps are skipped),\n" +
			"or quit and run 'etcdctl-wizard logs -f " + m.planPath + " " + s.failedHost + "' for the full log.\n")
	}
	return b.String()
}

// clusterPanel shows the latest cluster status.
func (s *applyScreen) clusterPanel(m *Model) string {
	if s.status == nil {
		return m.st.faint.Render("Cluster: no status yet") + "\n"
	}
	st := s.status
	var b strings.Builder
	fmt.Fprintf(&b, "Cluster: leader %s, raft term %d, index %d\n", displayOr(st.Leader, "none"), st.Term, st.Index)
	for _, ms := range st.Members {
		health := m.st.okText.Render("healthy")
		if !ms.Healthy {
			health = m.st.errText.Render("unhealthy")
			if ms.Err != "" {
				health += " " + ms.Err
			}
		}
		lead := " "
		if ms.Name == st.Leader {
			lead = "*"
		}
		fmt.Fprintf(&b, "  %s %-10s %-26s %s\n", lead, cell(ms.Name, 10), cell(ms.Endpoint, 26), health)
	}
	if st.Err != nil {
		for _, l := range strings.Split(st.Err.Error(), "\n") {
			b.WriteString(m.st.faint.Render("  "+l) + "\n")
		}
	}
	return b.String()
}
