package tui

import (
	"fmt"
	"strconv"
	"strings"

	"etcdctl-wizard/plan"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// hostColumn is one editable column of the hosts table, bound to a member
// field (path is the field under spec.members[i], as findings name it).
type hostColumn struct {
	title    string
	path     string
	width    int // preferred
	min      int
	get      func(*plan.Member) string
	set      func(*plan.Member, string) error
	fallback string // shown faint when empty: the default the plan fills in
}

var hostColumns = []hostColumn{
	{"name", "name", 10, 6, func(m *plan.Member) string { return m.Name }, func(m *plan.Member, v string) error { m.Name = v; return nil }, ""},
	{"IP", "ip", 15, 9, func(m *plan.Member) string { return m.IP }, func(m *plan.Member, v string) error { m.IP = v; return nil }, ""},
	{"hostname", "hostname", 18, 8, func(m *plan.Member) string { return m.Hostname }, func(m *plan.Member, v string) error { m.Hostname = v; return nil }, ""},
	{"SSH user", "ssh.user", 8, 4, func(m *plan.Member) string { return m.SSH.User }, func(m *plan.Member, v string) error { m.SSH.User = v; return nil }, plan.DefaultSSHUser},
	{"port", "ssh.port", 5, 4, func(m *plan.Member) string {
		if m.SSH.Port == 0 {
			return ""
		}
		return strconv.Itoa(m.SSH.Port)
	}, func(m *plan.Member, v string) error {
		if v == "" {
			m.SSH.Port = 0
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("SSH port %q is not a number", v)
		}
		m.SSH.Port = n
		return nil
	}, strconv.Itoa(plan.DefaultSSHPort)},
	{"key file", "ssh.keyFile", 14, 6, func(m *plan.Member) string { return m.SSH.KeyFile }, func(m *plan.Member, v string) error { m.SSH.KeyFile = v; return nil }, "agent"},
	{"jump host", "ssh.jumpHost", 14, 6, func(m *plan.Member) string { return m.SSH.JumpHost }, func(m *plan.Member, v string) error { m.SSH.JumpHost = v; return nil }, ""},
}

// hostsScreen is the editable table of members.
type hostsScreen struct {
	row, col int
	inEdit   bool
	input    textinput.Model
	// errs[i][col] is the finding of a cell, set when the cell loses focus
	// and kept until a later check of that cell passes.
	errs     []map[int]string
	parseErr map[[2]int]bool
	pasting  bool
	paste    textarea.Model
}

func newHostsScreen(m *Model) hostsScreen {
	s := hostsScreen{input: newInput(""), parseErr: map[[2]int]bool{}}
	s.errs = make([]map[int]string, len(m.p.Spec.Members))
	s.paste = textarea.New()
	s.paste.Placeholder = "infra0 10.0.1.10 [hostname] [user] [port] [key file] [jump host]"
	s.paste.ShowLineNumbers = false
	s.paste.SetHeight(6)
	s.paste.SetWidth(76)
	return s
}

func (s *hostsScreen) editing() bool { return s.inEdit || s.pasting }

func (s *hostsScreen) help(m *Model) []key.Binding {
	switch {
	case s.pasting:
		return []key.Binding{m.keys.Submit, m.keys.Cancel, m.keys.ForceQuit}
	case s.inEdit:
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter/tab", "done")), m.keys.Cancel, m.keys.ForceQuit}
	}
	return []key.Binding{m.keys.Edit, m.keys.Add, m.keys.Remove, m.keys.Paste, m.keys.Next, m.keys.Back, m.keys.Quit, m.keys.Tab}
}

func (s *hostsScreen) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	mem := m.p.Spec.Members
	if s.pasting {
		switch {
		case key.Matches(msg, m.keys.Submit):
			s.pasting = false
			s.paste.Blur()
			s.addLines(m, s.paste.Value())
			s.paste.Reset()
		case msg.Type == tea.KeyEsc:
			s.pasting = false
			s.paste.Blur()
		default:
			s.paste, _ = s.paste.Update(msg)
		}
		return nil
	}
	if s.inEdit {
		switch msg.Type {
		case tea.KeyEnter, tea.KeyTab, tea.KeyShiftTab, tea.KeyUp, tea.KeyDown:
			s.inEdit = false
			s.input.Blur()
			s.commit(m, s.row, s.col, strings.TrimSpace(s.input.Value()))
			switch msg.Type {
			case tea.KeyTab:
				// Tab keeps typing in the next cell, like a spreadsheet.
				s.step(len(mem), 1)
				s.startEdit(m)
			case tea.KeyShiftTab:
				s.step(len(mem), -1)
				s.startEdit(m)
			case tea.KeyUp:
				s.row = max(s.row-1, 0)
			case tea.KeyDown:
				s.row = min(s.row+1, len(mem)-1)
			}
		case tea.KeyEsc:
			s.inEdit = false
			s.input.Blur()
		default:
			s.input, _ = s.input.Update(msg)
		}
		return nil
	}
	if msg.Paste {
		s.addLines(m, string(msg.Runes))
		return nil
	}
	switch {
	case key.Matches(msg, m.keys.Up):
		s.row = max(s.row-1, 0)
	case key.Matches(msg, m.keys.Down):
		s.row = min(s.row+1, max(len(mem)-1, 0))
	case key.Matches(msg, m.keys.Left):
		s.col = max(s.col-1, 0)
	case key.Matches(msg, m.keys.Right):
		s.col = min(s.col+1, len(hostColumns)-1)
	case key.Matches(msg, m.keys.Tab):
		s.step(len(mem), 1)
	case key.Matches(msg, m.keys.ShiftTab):
		s.step(len(mem), -1)
	case key.Matches(msg, m.keys.Add):
		m.p.Spec.Members = append(m.p.Spec.Members, plan.Member{})
		s.errs = append(s.errs, nil)
		s.row, s.col = len(m.p.Spec.Members)-1, 0
		s.startEdit(m)
	case key.Matches(msg, m.keys.Remove):
		if len(mem) == 0 {
			return nil
		}
		name := mem[s.row].Name
		m.p.Spec.Members = append(mem[:s.row:s.row], mem[s.row+1:]...)
		s.errs = append(s.errs[:s.row:s.row], s.errs[s.row+1:]...)
		shifted := map[[2]int]bool{}
		for rc := range s.parseErr {
			switch {
			case rc[0] < s.row:
				shifted[rc] = true
			case rc[0] > s.row:
				shifted[[2]int{rc[0] - 1, rc[1]}] = true
			}
		}
		s.parseErr = shifted
		s.row = min(s.row, max(len(m.p.Spec.Members)-1, 0))
		s.recheck(m)
		m.setFlash(false, "removed %s", displayOr(name, "the host"))
	case key.Matches(msg, m.keys.Paste):
		s.pasting = true
		return s.paste.Focus()
	case key.Matches(msg, m.keys.Edit):
		if len(mem) == 0 {
			m.setFlash(true, "no host yet: press a to add one or p to paste several")
			return nil
		}
		s.startEdit(m)
	case key.Matches(msg, m.keys.Next):
		if len(mem) == 0 {
			m.setFlash(true, "add at least one host first")
			return nil
		}
		return m.goTo(scrBootstrap)
	case key.Matches(msg, m.keys.Back):
		return m.goTo(scrStart)
	}
	return nil
}

// step moves to the next or previous cell, row after row.
func (s *hostsScreen) step(rows, d int) {
	i := s.row*len(hostColumns) + s.col + d
	if i < 0 || i >= rows*len(hostColumns) {
		return
	}
	s.row, s.col = i/len(hostColumns), i%len(hostColumns)
}

func (s *hostsScreen) startEdit(m *Model) {
	s.inEdit = true
	s.input.SetValue(hostColumns[s.col].get(&m.p.Spec.Members[s.row]))
	s.input.CursorEnd()
	s.input.Focus()
}

// commit writes a cell and checks it: the cell's own findings from
// plan.Validate, and again every cell that showed an error (a fixed
// duplicate name clears its twin).
func (s *hostsScreen) commit(m *Model, row, col int, v string) {
	c := hostColumns[col]
	if err := c.set(&m.p.Spec.Members[row], v); err != nil {
		s.parseErr[[2]int{row, col}] = true
		s.setErr(row, col, err.Error())
		return
	}
	delete(s.parseErr, [2]int{row, col})
	s.setErr(row, col, "")
	s.recheck(m, [2]int{row, col})
}

func (s *hostsScreen) setErr(row, col int, msg string) {
	for len(s.errs) <= row {
		s.errs = append(s.errs, nil)
	}
	if msg == "" {
		delete(s.errs[row], col)
		return
	}
	if s.errs[row] == nil {
		s.errs[row] = map[int]string{}
	}
	s.errs[row][col] = msg
}

// recheck validates the plan and refreshes the errors of the given cells
// and of every cell that has one.
func (s *hostsScreen) recheck(m *Model, cells ...[2]int) {
	for r, errs := range s.errs {
		for c := range errs {
			cells = append(cells, [2]int{r, c})
		}
	}
	if len(cells) == 0 {
		return
	}
	byField := map[string]string{}
	for _, f := range plan.Validate(m.p) {
		if f.Severity == plan.SeverityError && f.Field != "" {
			if _, ok := byField[f.Field]; !ok {
				byField[f.Field] = f.Message
			}
		}
	}
	for _, rc := range cells {
		r, c := rc[0], rc[1]
		if r >= len(m.p.Spec.Members) {
			continue
		}
		if s.parseErr[rc] {
			continue // the typed value did not even parse; it stays flagged
		}
		s.setErr(r, c, byField[fmt.Sprintf("spec.members[%d].%s", r, hostColumns[c].path)])
	}
}

// addLines adds one host per pasted line: name ip [hostname] [user] [port]
// [key file] [jump host], separated by spaces, tabs or commas; "-" leaves a
// field empty and lines starting with # are skipped. Every pasted cell is
// checked as if it had been typed.
func (s *hostsScreen) addLines(m *Model, text string) {
	added := 0
	var problems []string
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var fields []string
		if strings.Contains(line, ",") {
			for _, f := range strings.Split(line, ",") {
				fields = append(fields, strings.TrimSpace(f))
			}
		} else {
			fields = strings.Fields(line)
		}
		if len(fields) > len(hostColumns) {
			problems = append(problems, fmt.Sprintf("%q has %d fields, at most %d", line, len(fields), len(hostColumns)))
			continue
		}
		m.p.Spec.Members = append(m.p.Spec.Members, plan.Member{})
		s.errs = append(s.errs, nil)
		row := len(m.p.Spec.Members) - 1
		var cells [][2]int
		for c := range hostColumns {
			v := ""
			if c < len(fields) && fields[c] != "-" {
				v = fields[c]
			}
			if err := hostColumns[c].set(&m.p.Spec.Members[row], v); err != nil {
				s.parseErr[[2]int{row, c}] = true
				s.setErr(row, c, err.Error())
				continue
			}
			cells = append(cells, [2]int{row, c})
		}
		s.recheck(m, cells...)
		added++
	}
	if added > 0 {
		s.row, s.col = len(m.p.Spec.Members)-1, 0
	}
	if len(problems) > 0 {
		m.setFlash(true, "added %s; skipped %s", plural(added, "host"), strings.Join(problems, "; "))
		return
	}
	m.setFlash(false, "added %s", plural(added, "host"))
}

func displayOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// widths fits the columns into w: the widest columns give way first.
func columnWidths(w int) []int {
	ws := make([]int, len(hostColumns))
	sum := 0
	for i, c := range hostColumns {
		ws[i] = c.width
		sum += c.width
	}
	avail := w - 2 - len(hostColumns) // cursor mark and separators
	for sum > avail {
		best := -1
		for i, c := range hostColumns {
			if ws[i] > c.min && (best < 0 || ws[i]-c.min > ws[best]-hostColumns[best].min) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		ws[best]--
		sum--
	}
	return ws
}

func (s *hostsScreen) view(m *Model) string {
	var b strings.Builder
	mem := m.p.Spec.Members
	fmt.Fprintf(&b, "Hosts of %s, one member each; fields are checked as you leave them.\n\n", displayOr(m.p.Metadata.Name, "the cluster"))
	ws := columnWidths(m.width)
	b.WriteString("  ")
	for i, c := range hostColumns {
		b.WriteString(m.st.faint.Render(cell(c.title, ws[i])) + " ")
	}
	b.WriteString("\n")
	// Keep the cursor's row in view when the table is taller than the
	// window.
	rows := max(m.height-14, 3)
	first := 0
	if s.row >= rows {
		first = s.row - rows + 1
	}
	for r := first; r < len(mem) && r < first+rows; r++ {
		mark := "  "
		if r == s.row {
			mark = m.st.selected.Render("> ")
		}
		b.WriteString(mark)
		for c, col := range hostColumns {
			v := col.get(&mem[r])
			var text string
			switch {
			case s.inEdit && r == s.row && c == s.col:
				s.input.Width = max(ws[c]-3, 1)
				text = "[" + cell(s.input.View(), ws[c]-2) + "]"
			case v == "" && col.fallback != "":
				text = m.st.faint.Render(cell(col.fallback, ws[c]))
			case v == "":
				text = cell("-", ws[c])
			default:
				text = cell(v, ws[c])
			}
			if s.errs[r][c] != "" && !(s.inEdit && r == s.row && c == s.col) {
				text = m.st.errText.Render(cell("!"+v, ws[c]))
			}
			if r == s.row && c == s.col && !s.inEdit {
				text = m.st.selected.Render(cell(displayOr(v, "_"), ws[c]))
			}
			b.WriteString(text + " ")
		}
		b.WriteString("\n")
	}
	if len(mem) == 0 {
		b.WriteString(m.st.faint.Render("  no hosts yet: press a to add one, or p to paste several lines") + "\n")
	} else if v := hostColumns[s.col].get(&mem[s.row]); !s.inEdit && ansi.StringWidth(v) > ws[s.col] {
		// A narrow window cuts long cells: the selected one is shown whole.
		b.WriteString(m.st.faint.Render(fmt.Sprintf("  %s: %s", hostColumns[s.col].title, v)) + "\n")
	}
	if s.pasting {
		b.WriteString("\nPaste one host per line: name ip [hostname] [user] [port] [key file] [jump host]\n")
		b.WriteString(s.paste.View() + "\n")
		return b.String()
	}
	var errs []string
	for r := range mem {
		for c := range hostColumns {
			if e := s.errs[r][c]; e != "" {
				errs = append(errs, m.st.errText.Render(fmt.Sprintf("✗ %s %s: %s", displayOr(mem[r].Name, fmt.Sprintf("host #%d", r+1)), hostColumns[c].title, e)))
			}
		}
	}
	if len(errs) > 0 {
		b.WriteString("\n" + strings.Join(errs, "\n") + "\n")
	}
	return b.String()
}
