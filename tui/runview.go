package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"etcdctl-wizard/plan"

	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// logTailMsg is a member's log, fetched on request.
type logTailMsg struct {
	member string
	lines  []string
	err    error
}

const logTail = 200

// hostRow is one host's line of a run.
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

// runView follows one run of the executor from its events: a row per host
// with its step, state, elapsed time and upload bar, the run's overall
// line, the questions it asks (sudo passwords, key passphrases) and where
// it failed. The apply screen and the cluster screen (member add and
// remove) draw their runs with it, so that both read the same.
type runView struct {
	rows       []*hostRow
	cursor     int
	started    time.Time
	finished   bool
	failed     error
	failedHost string
	failedStep string
	// cancelled: the operator stopped the run; its final error is not a
	// failure.
	cancelled bool
	// overall is the latest event of the run as a whole (connect,
	// preflight, cluster health, plan written).
	overall string
	bar     progress.Model
	// questions wait for the operator's answer, first one shown.
	questions []*Question
	secret    textinput.Model
}

func newRunView(started time.Time, hosts []string) runView {
	r := runView{started: started, secret: newSecretInput(),
		bar: progress.New(progress.WithWidth(16), progress.WithoutPercentage(), progress.WithFillCharacters('#', '.'))}
	for _, h := range hosts {
		r.rows = append(r.rows, &hostRow{name: h, step: "waiting"})
	}
	return r
}

func newSecretInput() textinput.Model {
	ti := newInput("")
	ti.EchoMode = textinput.EchoPassword
	ti.EchoCharacter = '*'
	return ti
}

func (r *runView) asking() bool { return len(r.questions) > 0 }

// answer sends the first question its answer (nil declines).
func (r *runView) answer(secret []byte) {
	if len(r.questions) == 0 {
		return
	}
	q := r.questions[0]
	r.questions = r.questions[1:]
	q.Reply <- secret
	r.secret.SetValue("")
	if len(r.questions) == 0 {
		r.secret.Blur()
	}
}

// answerKey handles a key while a question is open: enter answers, esc or
// ctrl+c declines, anything else is typed (hidden).
func (r *runView) answerKey(msg tea.KeyMsg) {
	switch msg.Type {
	case tea.KeyEnter:
		r.answer([]byte(r.secret.Value()))
	case tea.KeyEsc, tea.KeyCtrlC:
		r.answer(nil)
	default:
		r.secret, _ = r.secret.Update(msg)
	}
}

func (r *runView) row(name string) *hostRow {
	for _, x := range r.rows {
		if x.name == name {
			return x
		}
	}
	x := &hostRow{name: name}
	r.rows = append(r.rows, x)
	return x
}

// closed notes that the run's channel closed; a run that ends without its
// final event has failed, unless it was cancelled.
func (r *runView) closed() {
	if r.finished {
		return
	}
	r.finished = true
	if r.failed == nil && !r.cancelled {
		r.failed = fmt.Errorf("the run stopped without a final report")
	}
}

// event takes one event of the run; it reports whether it was the final
// one.
func (r *runView) event(m *Model, ev Event) (final bool) {
	if ev.Time.IsZero() {
		ev.Time = m.now()
	}
	if ev.Ask != nil {
		r.questions = append(r.questions, ev.Ask)
		r.secret.Focus()
		return false
	}
	if ev.Host != "" {
		x := r.row(ev.Host)
		if x.started.IsZero() {
			x.started = ev.Time
		}
		if ev.Step != "" {
			x.step = ev.Step
		}
		if ev.State != "" {
			x.state = ev.State
		}
		x.progress = ev.Progress
		x.log = append(x.log, ev.Log...)
		if len(x.log) > logTail {
			x.log = x.log[len(x.log)-logTail:]
		}
		if ev.Err != nil {
			x.err = ev.Err
			x.ended = ev.Time
		}
	}
	// The run as a whole: its steps, and its infos and warnings (such as a
	// discovery token's registrations), which come with a log line only.
	if ev.Host == "" && !ev.Final && (ev.Step != "" || len(ev.Log) > 0) {
		r.overall = fmt.Sprintf("%s: %s", ev.Step, ev.State)
		if len(ev.Log) > 0 {
			r.overall = strings.Join(ev.Log, "; ")
		}
		if ev.Err != nil {
			r.overall += ": " + ev.Err.Error()
		}
	}
	if !ev.Final {
		return false
	}
	r.finished = true
	for _, x := range r.rows {
		if x.ended.IsZero() {
			x.ended = ev.Time
		}
	}
	switch {
	case ev.Err != nil && r.cancelled:
		r.failed = nil
	case ev.Err != nil:
		r.failed = ev.Err
		r.failedHost, r.failedStep = ev.Host, ev.Step
		for i, x := range r.rows {
			if x.err != nil {
				if r.failedHost == "" {
					r.failedHost, r.failedStep = x.name, x.step
				}
				if x.name == r.failedHost {
					r.cursor = i
				}
			}
		}
	}
	return true
}

func (r *runView) up()   { r.cursor = max(r.cursor-1, 0) }
func (r *runView) down() { r.cursor = min(r.cursor+1, len(r.rows)-1) }

func (r *runView) elapsed(m *Model, x *hostRow) string {
	if x.started.IsZero() {
		return ""
	}
	end := x.ended
	if end.IsZero() {
		end = m.now()
	}
	return end.Sub(x.started).Truncate(100 * time.Millisecond).String()
}

// questionView is the open question with its hidden answer.
func (r *runView) questionView() string {
	return fmt.Sprintf("%s: [%s]\n", r.questions[0].Prompt, r.secret.View())
}

// rowsView is the overall line and one line per host.
func (r *runView) rowsView(m *Model) string {
	var b strings.Builder
	if r.overall != "" {
		b.WriteString(m.st.faint.Render(r.overall))
	}
	b.WriteString("\n")
	for i, x := range r.rows {
		mark := "  "
		if i == r.cursor {
			mark = m.st.selected.Render("> ")
		}
		state := string(x.state)
		st := m.st.faint
		switch x.state {
		case StepDone, StepSkipped:
			st = m.st.okText
		case StepFailed:
			st = m.st.errText
		case StepRunning:
			st = m.st.selected
		}
		extra := ""
		if x.state == StepRunning && x.progress > 0 && x.progress < 1 {
			extra = r.bar.ViewAs(x.progress) + fmt.Sprintf(" %3.0f%%", x.progress*100)
		}
		fmt.Fprintf(&b, "%s%-10s %-24s %s %s %s\n", mark, cell(x.name, 10), cell(x.step, 24), st.Render(cell(state, 8)), cell(r.elapsed(m, x), 7), extra)
	}
	return b.String()
}

// failureView is the run's error, line by line (lipgloss pads a block to
// its widest line) and wrapped: the cause must be readable whole.
func (r *runView) failureView(m *Model) string {
	if r.failed == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n")
	for _, line := range strings.Split(r.failed.Error(), "\n") {
		for i, l := range wrapIndent(line, m.width, 4) {
			if i > 0 {
				l = "    " + l
			}
			b.WriteString(m.st.errText.Render(l) + "\n")
		}
	}
	return b.String()
}

// logView is the selected host's member log when fetched, its run log
// otherwise: the last avail lines.
func (r *runView) logView(m *Model, avail int) string {
	if len(r.rows) == 0 {
		return ""
	}
	x := r.rows[r.cursor]
	if len(x.memberLog) > 0 {
		return memberLogView(x.name, x.memberLog, avail)
	}
	if len(x.log) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nLog of %s:\n", x.name)
	var lines []string
	for _, l := range x.log {
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
	return b.String()
}

// memberLogView is a member's own log tail, the last avail lines.
func memberLogView(member string, lines []string, avail int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nMember log of %s (l refreshes):\n", member)
	for _, l := range lines[max(len(lines)-avail, 0):] {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// fetchLog asks the applier for a member's log tail (LogTailer); nil when
// the applier cannot.
func (m *Model) fetchLog(p *plan.Plan, member string) tea.Cmd {
	lt, ok := m.opts.Applier.(LogTailer)
	if !ok || member == "" {
		return nil
	}
	dir, ctx := m.planDir(), m.ctx
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		lines, err := lt.LogTail(ctx, p, dir, member, 40)
		return logTailMsg{member, lines, err}
	}
}

// logLines is a fetched log as shown: an empty log says so.
func logLines(m *Model, msg logTailMsg) ([]string, bool) {
	if msg.err != nil {
		m.setFlash(true, "log of %s: %v", msg.member, msg.err)
		return nil, false
	}
	if len(msg.lines) == 0 {
		return []string{"(empty)"}, true
	}
	return msg.lines, true
}
