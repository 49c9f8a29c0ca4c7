package tui

import (
	"context"
	"fmt"
	"strings"

	"etcdctl-wizard/plan"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// memberListMsg and memberEventMsg carry the follow or the change they
// belong to: after a refresh or a second change, the previous one's late
// messages are dropped.
type memberListMsg struct {
	l   MemberList
	ok  bool
	gen int
}

type memberEventMsg struct {
	ev  Event
	ok  bool
	gen int
}

func waitMembers(ch <-chan MemberList, gen int) tea.Cmd {
	return func() tea.Msg {
		l, ok := <-ch
		return memberListMsg{l, ok, gen}
	}
}

func waitMemberEvent(ch <-chan Event, gen int) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		return memberEventMsg{ev, ok, gen}
	}
}

// memberChange is a member add or remove, followed like an apply.
type memberChange struct {
	runView
	kind   string // "add" or "remove"
	member string
	events <-chan Event
	cancel context.CancelFunc
	gen    int
}

func (c *memberChange) running() bool { return c != nil && !c.finished }

// clusterScreen manages a running cluster: its members beside the plan's,
// followed live, and runtime member add (a) and remove (d), which rewrite
// the plan file as 'etcdctl-wizard member add|remove' do.
type clusterScreen struct {
	list   *MemberList
	cursor int
	// follow stops the membership follow; gen numbers the follows.
	follow context.CancelFunc
	lists  <-chan MemberList
	gen    int

	// The selected member's own log, when asked for (l).
	logOf    string
	logLines []string

	adding bool
	form   memberForm
	// removing is the member whose removal waits for its name to be typed.
	removing string
	confirm  textinput.Model

	change    *memberChange
	changeGen int
}

func (m *Model) members() MemberManager {
	mm, _ := m.opts.Applier.(MemberManager)
	return mm
}

// openCluster makes p, the plan of a running cluster, the plan being
// managed and shows its members.
func (m *Model) openCluster(p *plan.Plan, path string) tea.Cmd {
	m.p, m.planPath, m.sandbox, m.manage = p, path, false, true
	m.cluster.stop()
	// The numbering goes on: a late message of the previous follow or
	// change must not pass for one of the new screen's.
	m.cluster = clusterScreen{confirm: newInput(""), gen: m.cluster.gen, changeGen: m.cluster.changeGen}
	m.cur = scrCluster
	return m.cluster.refresh(m)
}

// refresh (re)starts the membership follow with the current plan.
func (s *clusterScreen) refresh(m *Model) tea.Cmd {
	if s.follow != nil {
		s.follow()
	}
	ctx, cancel := context.WithCancel(m.ctx)
	s.follow, s.gen = cancel, s.gen+1
	s.lists = m.members().Members(ctx, m.p, m.planDir())
	return waitMembers(s.lists, s.gen)
}

// stop ends the follow (leaving the screen); a running change goes on.
func (s *clusterScreen) stop() {
	if s.follow != nil {
		s.follow()
		s.follow = nil
	}
}

func (s *clusterScreen) onList(msg memberListMsg) tea.Cmd {
	if !msg.ok || msg.gen != s.gen {
		return nil
	}
	l := msg.l
	s.list = &l
	s.cursor = min(s.cursor, max(len(l.Members)-1, 0))
	return waitMembers(s.lists, s.gen)
}

func (s *clusterScreen) running() bool { return s.change.running() }

func (s *clusterScreen) selected() *MemberEntry {
	if s.list == nil || s.cursor >= len(s.list.Members) {
		return nil
	}
	return &s.list.Members[s.cursor]
}

func (s *clusterScreen) editing() bool {
	return s.adding || s.removing != "" || (s.change != nil && s.change.asking())
}

func (s *clusterScreen) help(m *Model) []key.Binding {
	switch {
	case s.change != nil && s.change.asking():
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "answer")), key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "decline"))}
	case s.adding && s.form.editing:
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter/tab", "done")), addKey, m.keys.Cancel}
	case s.adding:
		return []key.Binding{m.keys.Edit, addKey, m.keys.Cancel, m.keys.Up, m.keys.Down}
	case s.removing != "":
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "remove")), m.keys.Cancel}
	}
	keys := []key.Binding{
		key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "add member")),
		key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "remove member")),
		key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "refresh"))}
	if _, ok := m.opts.Applier.(LogTailer); ok {
		keys = append(keys, key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "member log")))
	}
	return append(keys, key.NewBinding(key.WithKeys("q", "esc"), key.WithHelp("q/esc", "back")), m.keys.Up, m.keys.Down)
}

var addKey = key.NewBinding(key.WithKeys("ctrl+s"), key.WithHelp("ctrl+s", "add the member"))

func (s *clusterScreen) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	switch {
	case s.change != nil && s.change.asking():
		s.change.answerKey(msg)
		return nil
	case s.adding:
		return s.updateForm(m, msg)
	case s.removing != "":
		return s.updateConfirm(m, msg)
	}
	busy := s.running()
	switch {
	case key.Matches(msg, m.keys.Up):
		s.cursor = max(s.cursor-1, 0)
	case key.Matches(msg, m.keys.Down):
		if s.list != nil {
			s.cursor = min(s.cursor+1, max(len(s.list.Members)-1, 0))
		}
	case msg.String() == "r":
		return s.refresh(m)
	case msg.String() == "l":
		sel := s.selected()
		if sel == nil || !sel.InPlan {
			m.setFlash(true, "select a member of the plan: the wizard reads the logs on the plan's hosts")
			return nil
		}
		return m.fetchLog(m.p, sel.Name)
	case busy && (msg.String() == "a" || msg.String() == "d" || msg.String() == "q" || msg.Type == tea.KeyEsc || msg.Type == tea.KeyCtrlC):
		m.setFlash(true, "member %s of %s is running: wait for it to finish (its events are below)", s.change.kind, s.change.member)
	case msg.String() == "a":
		s.adding, s.form = true, newMemberForm()
		s.form.editing = true
		s.form.fields[0].input.Focus()
	case msg.String() == "d":
		return s.askRemove(m)
	case msg.String() == "q" || key.Matches(msg, m.keys.Back):
		s.stop()
		m.manage = false
		m.cur = scrStart
	}
	return nil
}

// updateForm edits the new member; ctrl+s checks it and goes on to the
// new host's key.
func (s *clusterScreen) updateForm(m *Model, msg tea.KeyMsg) tea.Cmd {
	switch {
	case msg.Type == tea.KeyCtrlS:
		if s.form.editing {
			s.form.update(m.keys, tea.KeyMsg{Type: tea.KeyEnter})
		}
		return s.submitAdd(m)
	case msg.Type == tea.KeyEsc && !s.form.editing:
		s.adding = false
		return nil
	}
	wasEditing := s.form.editing
	s.form.update(m.keys, msg)
	if wasEditing && (msg.Type == tea.KeyTab || msg.Type == tea.KeyShiftTab) {
		// Tab keeps typing in the next field, as in the hosts table.
		s.form.update(m.keys, tea.KeyMsg{Type: tea.KeyEnter})
	}
	return nil
}

// submitAdd checks the new member against the plan, issues its
// certificates when the plan has self-signed TLS (as member add does), and
// asks for the new host's key before the add runs.
func (s *clusterScreen) submitAdd(m *Model) tea.Cmd {
	grown, ok := s.form.grow(m.p)
	if !ok {
		m.setFlash(true, "the new member is not valid: fix the fields marked ✗; nothing was changed")
		return nil
	}
	mem := grown.Spec.Members[len(grown.Spec.Members)-1]
	if m.p.WithDefaults().Spec.TLS.Mode == plan.TLSSelfSigned {
		if m.opts.IssueMemberCertificates == nil {
			m.setFlash(true, "this wizard cannot issue certificates: add the member with 'etcdctl-wizard member add -f %s'", m.planPath)
			return nil
		}
		if _, err := m.opts.IssueMemberCertificates(m.planPath, grown); err != nil {
			m.setFlash(true, "certificates of %s: %v; nothing was changed", mem.Name, err)
			return nil
		}
	}
	// Only the new host can have an unknown key: the others served the
	// cluster already.
	scan := grown.Clone()
	scan.Spec.Members = scan.Spec.Members[len(scan.Spec.Members)-1:]
	if scan.Spec.ClusterID == "" {
		scan.Spec.ClusterID = "1" // a joining member needs one; the scan does not use it
	}
	return m.askHostKeys(scan, scrCluster, func(m *Model) tea.Cmd {
		m.cur = scrCluster
		m.cluster.adding = false
		accepted := m.hostkeys.acceptedKeys()
		return m.cluster.start(m, "add", mem.Name, func(ctx context.Context, save func(*plan.Plan) error) <-chan Event {
			return m.members().AddMember(ctx, m.p, m.planDir(), mem, accepted, save)
		})
	})
}

// askRemove asks for the selected member's name before removing it.
func (s *clusterScreen) askRemove(m *Model) tea.Cmd {
	sel := s.selected()
	switch {
	case sel == nil:
		m.setFlash(true, "no member selected")
		return nil
	case !sel.InPlan:
		// The wizard reaches hosts through the plan only.
		m.setFlash(true, "%s is not in the plan: run etcdctl member remove %s", displayOr(sel.Name, "this member"), sel.ID)
		return nil
	}
	s.removing = sel.Name
	s.confirm = newInput("")
	return s.confirm.Focus()
}

func (s *clusterScreen) updateConfirm(m *Model, msg tea.KeyMsg) tea.Cmd {
	switch msg.Type {
	case tea.KeyEsc:
		s.removing = ""
	case tea.KeyEnter:
		name := s.removing
		if strings.TrimSpace(s.confirm.Value()) != name {
			m.setFlash(true, "the name does not match %s: nothing was removed", name)
			return nil
		}
		s.removing = ""
		return s.start(m, "remove", name, func(ctx context.Context, save func(*plan.Plan) error) <-chan Event {
			return m.members().RemoveMember(ctx, m.p, m.planDir(), name, save)
		})
	default:
		s.confirm, _ = s.confirm.Update(msg)
	}
	return nil
}

// start runs a change. Its plan is written where the CLI writes it: over
// the plan file, with plan.Save (atomic), as 'member add|remove -f PLAN'.
func (s *clusterScreen) start(m *Model, kind, member string, run func(context.Context, func(*plan.Plan) error) <-chan Event) tea.Cmd {
	path := m.planPath
	ctx, cancel := context.WithCancel(m.ctx)
	s.changeGen++
	s.change = &memberChange{runView: newRunView(m.now(), []string{member}), kind: kind, member: member, cancel: cancel, gen: s.changeGen}
	s.change.events = run(ctx, func(p *plan.Plan) error { return plan.Save(path, p) })
	return waitMemberEvent(s.change.events, s.change.gen)
}

func (s *clusterScreen) onEvent(m *Model, msg memberEventMsg) tea.Cmd {
	c := s.change
	if c == nil || msg.gen != c.gen {
		return nil
	}
	if msg.ok && !c.event(m, msg.ev) {
		return waitMemberEvent(c.events, c.gen)
	}
	if !msg.ok {
		c.closed()
	}
	c.cancel()
	// The change may have rewritten the plan file, even when it failed
	// afterwards (a learner that stays): the file is what the cluster is.
	p, err := plan.Load(m.planPath)
	switch {
	case err != nil:
		m.setFlash(true, "reading the plan again: %v", err)
	case c.failed == nil:
		m.p = p
		m.setFlash(false, "member %s of %s done; plan file rewritten: %s", c.kind, c.member, m.planPath)
	default:
		m.p = p
	}
	return s.refresh(m)
}

func (s *clusterScreen) onLog(m *Model, msg logTailMsg) {
	if lines, ok := logLines(m, msg); ok {
		s.logOf, s.logLines = msg.member, lines
	}
}

func (s *clusterScreen) view(m *Model) string {
	var b strings.Builder
	b.WriteString(s.header(m))
	b.WriteString(s.table(m))
	switch {
	case s.adding:
		b.WriteString("\n" + s.form.view(m))
		return b.String()
	case s.removing != "":
		b.WriteString("\n" + s.removeView(m))
		return b.String()
	}
	if s.change != nil {
		b.WriteString("\n" + s.changeView(m))
	}
	if s.logOf != "" && (s.change == nil || !s.change.running()) {
		b.WriteString(memberLogView(s.logOf, s.logLines, max(m.height-20, 3)))
	}
	return b.String()
}

func (s *clusterScreen) header(m *Model) string {
	l := s.list
	switch {
	case l == nil:
		return fmt.Sprintf("Asking the cluster of %s for its members...\n", m.planPath)
	case l.Err != nil:
		var b strings.Builder
		for _, line := range strings.Split(l.Err.Error(), "\n") {
			b.WriteString(m.st.errText.Render(line) + "\n")
		}
		b.WriteString("Next: check the hosts and the members; the wizard asks again every few seconds (r now).\n")
		return b.String()
	}
	id := "as the plan computes"
	switch {
	case l.PlanClusterID != l.ClusterID:
		id = m.st.errText.Render("the plan has " + l.PlanClusterID + ": not this plan's cluster?")
	case l.Pinned:
		id = "pinned in the plan"
	}
	sync := m.st.okText.Render("the plan matches the cluster")
	if !l.InSync {
		sync = m.st.warnText.Render("the plan and the cluster differ")
	}
	return fmt.Sprintf("Cluster %s, ID %s (%s), via %s\n%s; plan file %s\n", l.Cluster, l.ClusterID, id, l.Via, sync, m.planPath)
}

// table lists the members, then the selected one's URLs and note.
func (s *clusterScreen) table(m *Model) string {
	if s.list == nil || s.list.Err != nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n  " + m.st.faint.Render(fmt.Sprintf("%s %s %s %s %s", cell("member", 10), cell("ID", 16), cell("role", 7), cell("where", 15), "health")) + "\n")
	for i, e := range s.list.Members {
		mark := "  "
		if i == s.cursor {
			mark = m.st.selected.Render("> ")
		}
		role := "voter"
		switch {
		case !e.InCluster:
			role = "-"
		case e.Learner:
			role = "learner"
		case e.Leader:
			role = "leader"
		}
		where, wst := "in both", m.st.okText
		switch {
		case !e.InCluster:
			where, wst = "only in plan", m.st.warnText
		case !e.InPlan:
			where, wst = "only in cluster", m.st.warnText
		}
		health := m.st.faint.Render("-")
		switch {
		case e.Health == "healthy":
			health = m.st.okText.Render(e.Health)
		case e.Health != "":
			health = m.st.errText.Render(e.Health)
		}
		fmt.Fprintf(&b, "%s%s %s %s %s %s\n", mark, cell(displayOr(e.Name, "(unstarted)"), 10), cell(displayOr(e.ID, "-"), 16), cell(role, 7), wst.Render(cell(where, 15)), health)
	}
	if sel := s.selected(); sel != nil {
		fmt.Fprintf(&b, "  %s peer %s, client %s\n", displayOr(sel.Name, "(unstarted)"), displayOr(strings.Join(sel.PeerURLs, ","), "-"), displayOr(strings.Join(sel.ClientURLs, ","), "-"))
		if sel.Note != "" {
			for i, l := range wrapIndent(sel.Note, m.width-2, 2) {
				if i > 0 {
					l = "  " + l
				}
				b.WriteString(m.st.faint.Render("  "+l) + "\n")
			}
		}
	}
	return b.String()
}

// removeView says what removing the member means for the quorum, what
// member remove would refuse, and asks for the name.
func (s *clusterScreen) removeView(m *Model) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", m.st.warnText.Render(fmt.Sprintf("Remove %s from the running cluster? Its data, binary and service on its host are deleted.", s.removing)))
	for _, l := range removalConsequences(s.list, s.removing) {
		b.WriteString("  " + l + "\n")
	}
	fmt.Fprintf(&b, "Type %s and press enter to remove it (esc cancels): [%s]\n", s.removing, s.confirm.View())
	return b.String()
}

// removalConsequences tells what removing name does to the quorum, and
// what RemoveMember refuses (it checks again with the cluster's answer).
func removalConsequences(l *MemberList, name string) []string {
	if l == nil || l.Err != nil {
		return []string{"the cluster's members are not known yet: the removal checks the quorum itself"}
	}
	voters, sick := 0, []string{}
	var target *MemberEntry
	for i, e := range l.Members {
		if e.Name == name {
			target = &l.Members[i]
		}
		if e.InCluster && !e.Learner {
			voters++
			if e.Name != name && e.Health != "healthy" {
				sick = append(sick, displayOr(e.Name, e.ID))
			}
		}
	}
	switch {
	case target == nil || !target.InCluster:
		return []string{"the cluster does not list it: only its host and the plan are cleaned"}
	case target.Learner:
		return []string{"it is a learner: it does not vote, the quorum is unchanged"}
	case voters <= 1:
		return []string{"it is the last voting member: removing it would end the cluster, so it is refused (etcdctl-wizard reset deletes a whole cluster)"}
	}
	rest := voters - 1
	out := []string{fmt.Sprintf("voting members %d → %d: quorum %d → %d, failures tolerated %d → %d",
		voters, rest, voters/2+1, rest/2+1, (voters-1)/2, (rest-1)/2)}
	if target.Leader {
		out = append(out, "it leads: the leadership moves to a healthy member first")
	}
	switch {
	case voters == 2:
		out = append(out, "refused in a two-member cluster (the one left tolerates no failure): add a member first, or run 'etcdctl-wizard member remove --force'")
	case len(sick) > 0:
		out = append(out, fmt.Sprintf("refused while %s not healthy: bring them back first, or run 'etcdctl-wizard member remove --force'", strings.Join(sick, ", ")))
	}
	return out
}

// changeView is the running or last change: its rows, error and what to do
// next.
func (s *clusterScreen) changeView(m *Model) string {
	c := s.change
	var b strings.Builder
	switch {
	case c.asking():
		b.WriteString(c.questionView())
	case c.failed != nil:
		b.WriteString(m.st.errText.Render(fmt.Sprintf("✗ member %s of %s failed at %s step %q", c.kind, c.member, displayOr(c.failedHost, "the run"), c.failedStep)) + "\n")
	case c.finished:
		b.WriteString(m.st.okText.Render(fmt.Sprintf("✓ member %s of %s done", c.kind, c.member)) + "\n")
	default:
		fmt.Fprintf(&b, "Member %s of %s...\n", c.kind, c.member)
	}
	b.WriteString(c.rowsView(m))
	b.WriteString(c.failureView(m))
	if c.failed != nil {
		b.WriteString(c.logView(m, 5))
		b.WriteString("\nNext: the error above says where the cluster and the plan stand; fix its cause, then\n" +
			"press " + map[string]string{"add": "a to add", "remove": "d to remove"}[c.kind] + " again. 'etcdctl-wizard logs -f " + m.planPath + "' shows the members' logs.\n")
	}
	return b.String()
}
