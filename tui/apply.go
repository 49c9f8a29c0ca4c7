package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/textinput"
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

// logTailMsg is a member's log, fetched on request.
type logTailMsg struct {
	member string
	lines  []string
	err    error
}

const logTail = 200

// hostRow is one host's line on the apply screen.
type hostRow struct {
	name     string
	step     string
	state    StepState
	progress float64
	started  time.Time
	ended    time.Time
	err      error
	log      []string
	// memberLog is the member's own log tail, when asked for (l).
	memberLog []string
}

// applyScreen follows an apply: one row per host, a cluster panel, the
// selected host's log tail, cancel with confirmation.
type applyScreen struct {
	rows       []*hostRow
	cursor     int
	started    time.Time
	cancel     context.CancelFunc
	events     <-chan Event
	statuses   <-chan ClusterStatus
	status     *ClusterStatus
	finished   bool
	failed     error
	failedHost string
	failedStep string
	confirming bool
	cancelled  bool
	// run numbers the runs of this screen (apply again starts a new one).
	run int
	// overall is the latest event of the run as a whole (connect,
	// preflight, cluster health).
	overall string
	bar     progress.Model
	// questions wait for the operator's answer, first one shown.
	questions []*Question
	secret    textinput.Model
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
	*s = applyScreen{started: m.now(), run: s.run + 1, secret: newSecretInput(),
		bar: progress.New(progress.WithWidth(16), progress.WithoutPercentage(), progress.WithFillCharacters('#', '.'))}
	for _, mem := range m.p.Spec.Members {
		s.rows = append(s.rows, &hostRow{name: mem.Name, step: "waiting"})
	}
	ctx, cancel := context.WithCancel(m.ctx)
	s.cancel = cancel
	s.events = m.opts.Applier.Apply(ctx, m.p, m.planDir(), m.hostkeys.acceptedKeys())
	s.statuses = m.opts.Applier.Status(ctx, m.p, m.planDir())
	return tea.Batch(waitEvent(s.events, s.run), waitStatus(s.statuses, s.run), tick())
}

func newSecretInput() textinput.Model {
	ti := newInput("")
	ti.EchoMode = textinput.EchoPassword
	ti.EchoCharacter = '*'
	return ti
}

// answer sends the first question its answer (nil declines).
func (s *applyScreen) answer(secret []byte) {
	if len(s.questions) == 0 {
		return
	}
	q := s.questions[0]
	s.questions = s.questions[1:]
	q.Reply <- secret
	s.secret.SetValue("")
	if len(s.questions) == 0 {
		s.secret.Blur()
	}
}

func (s *applyScreen) running() bool { return s.events != nil && !s.finished }

func (s *applyScreen) row(name string) *hostRow {
	for _, r := range s.rows {
		if r.name == name {
			return r
		}
	}
	r := &hostRow{name: name}
	s.rows = append(s.rows, r)
	return r
}

func (s *applyScreen) event(m *Model, msg applyEventMsg) tea.Cmd {
	if msg.run != s.run {
		return nil
	}
	if !msg.ok {
		if !s.finished {
			s.finished = true
			if s.failed == nil && !s.cancelled {
				s.failed = fmt.Errorf("the apply stopped without a final report")
			}
		}
		return nil
	}
	ev := msg.ev
	if ev.Time.IsZero() {
		ev.Time = m.now()
	}
	if ev.Ask != nil {
		s.questions = append(s.questions, ev.Ask)
		s.secret.Focus()
		return waitEvent(s.events, s.run)
	}
	if ev.Host != "" {
		r := s.row(ev.Host)
		if r.started.IsZero() {
			r.started = ev.Time
		}
		if ev.Step != "" {
			r.step = ev.Step
		}
		if ev.State != "" {
			r.state = ev.State
		}
		r.progress = ev.Progress
		r.log = append(r.log, ev.Log...)
		if len(r.log) > logTail {
			r.log = r.log[len(r.log)-logTail:]
		}
		if ev.Err != nil {
			r.err = ev.Err
			r.ended = ev.Time
		}
	}
	// The run as a whole: its steps, and its infos and warnings (such as a
	// discovery token's registrations), which come with a log line only.
	if ev.Host == "" && !ev.Final && (ev.Step != "" || len(ev.Log) > 0) {
		s.overall = fmt.Sprintf("%s: %s", ev.Step, ev.State)
		if len(ev.Log) > 0 {
			s.overall = strings.Join(ev.Log, "; ")
		}
		if ev.Err != nil {
			s.overall += ": " + ev.Err.Error()
		}
	}
	if ev.Final {
		s.finished = true
		for _, r := range s.rows {
			if r.ended.IsZero() {
				r.ended = ev.Time
			}
		}
		switch {
		case ev.Err != nil && s.cancelled:
			s.failed = nil
		case ev.Err != nil:
			s.failed = ev.Err
			s.failedHost, s.failedStep = ev.Host, ev.Step
			for i, r := range s.rows {
				if r.err != nil {
					if s.failedHost == "" {
						s.failedHost, s.failedStep = r.name, r.step
					}
					if r.name == s.failedHost {
						s.cursor = i
					}
				}
			}
		case !s.cancelled:
			return m.goTo(scrDone)
		}
		return nil
	}
	return waitEvent(s.events, s.run)
}

func (s *applyScreen) onStatus(m *Model, msg statusMsg) tea.Cmd {
	if !msg.ok || msg.run != s.run {
		return nil
	}
	st := msg.st
	s.status = &st
	return waitStatus(s.statuses, s.run)
}

func (s *applyScreen) editing() bool { return s.confirming || len(s.questions) > 0 }

func (s *applyScreen) help(m *Model) []key.Binding {
	switch {
	case len(s.questions) > 0:
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

// fetchLog asks the applier for the selected member's log tail.
func (s *applyScreen) fetchLog(m *Model) tea.Cmd {
	lt, ok := m.opts.Applier.(LogTailer)
	if !ok || len(s.rows) == 0 {
		return nil
	}
	member, p, dir, ctx := s.rows[s.cursor].name, m.p, m.planDir(), m.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		lines, err := lt.LogTail(ctx, p, dir, member, 40)
		return logTailMsg{member, lines, err}
	}
}

func (s *applyScreen) onLog(m *Model, msg logTailMsg) {
	if msg.err != nil {
		m.setFlash(true, "log of %s: %v", msg.member, msg.err)
		return
	}
	r := s.row(msg.member)
	r.memberLog = msg.lines
	if len(r.memberLog) == 0 {
		r.memberLog = []string{"(empty)"}
	}
}

func (s *applyScreen) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if len(s.questions) > 0 {
		switch msg.Type {
		case tea.KeyEnter:
			s.answer([]byte(s.secret.Value()))
		case tea.KeyEsc, tea.KeyCtrlC:
			s.answer(nil)
		default:
			s.secret, _ = s.secret.Update(msg)
		}
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
		s.cursor = max(s.cursor-1, 0)
	case key.Matches(msg, m.keys.Down):
		s.cursor = min(s.cursor+1, len(s.rows)-1)
	case s.running() && (msg.Type == tea.KeyEsc || msg.Type == tea.KeyCtrlC):
		if !s.cancelled {
			s.confirming = true
		}
	case msg.String() == "l":
		return s.fetchLog(m)
	case !s.running() && msg.String() == "r":
		return s.init(m)
	case !s.running() && key.Matches(msg, m.keys.Back):
		s.cancel()
		return m.goTo(scrReview)
	}
	return nil
}

func (s *applyScreen) elapsed(m *Model, r *hostRow) string {
	if r.started.IsZero() {
		return ""
	}
	end := r.ended
	if end.IsZero() {
		end = m.now()
	}
	return end.Sub(r.started).Truncate(100 * time.Millisecond).String()
}

func (s *applyScreen) view(m *Model) string {
	var b strings.Builder
	switch {
	case len(s.questions) > 0:
		fmt.Fprintf(&b, "%s: [%s]\n", s.questions[0].Prompt, s.secret.View())
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
	if s.overall != "" {
		b.WriteString(m.st.faint.Render(s.overall))
	}
	b.WriteString("\n")
	for i, r := range s.rows {
		mark := "  "
		if i == s.cursor {
			mark = m.st.selected.Render("> ")
		}
		state := string(r.state)
		st := m.st.faint
		switch r.state {
		case StepDone, StepSkipped:
			st = m.st.okText
		case StepFailed:
			st = m.st.errText
		case StepRunning:
			st = m.st.selected
		}
		extra := ""
		if r.state == StepRunning && r.progress >= 0 && r.progress < 1 && r.progress > 0 {
			extra = s.bar.ViewAs(r.progress) + fmt.Sprintf(" %3.0f%%", r.progress*100)
		}
		fmt.Fprintf(&b, "%s%-10s %-24s %s %s %s\n", mark, cell(r.name, 10), cell(r.step, 24), st.Render(cell(state, 8)), cell(s.elapsed(m, r), 7), extra)
	}
	b.WriteString("\n" + s.clusterPanel(m))
	if s.failed != nil {
		// Line by line (lipgloss pads a block to its widest line) and
		// wrapped: the cause must be readable whole.
		b.WriteString("\n")
		for _, line := range strings.Split(s.failed.Error(), "\n") {
			for i, l := range wrapIndent(line, m.width, 4) {
				if i > 0 {
					l = "    " + l
				}
				b.WriteString(m.st.errText.Render(l) + "\n")
			}
		}
	}
	if len(s.rows) > 0 {
		r := s.rows[s.cursor]
		avail := max(m.height-len(s.rows)-16, 3)
		switch {
		case len(r.memberLog) > 0:
			fmt.Fprintf(&b, "\nMember log of %s (l refreshes):\n", r.name)
			for _, l := range r.memberLog[max(len(r.memberLog)-avail, 0):] {
				b.WriteString("  " + l + "\n")
			}
		case len(r.log) > 0:
			fmt.Fprintf(&b, "\nLog of %s:\n", r.name)
			var lines []string
			for _, l := range r.log {
				for i, w := range wrapIndent(l, m.width-2, 2) {
					if i > 0 {
						w = "  " + w
					}
					lines = append(lines, w)
				}
			}
			for _, l := range lines[max(len(lines)-avail, 0):] {
				b.WriteString("  " + l + "\n")
			}
		}
	}
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
