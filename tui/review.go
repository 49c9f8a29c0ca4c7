package tui

import (
	"etcdctl-wizard/node/fileutil"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"etcdctl-wizard/plan"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// reviewScreen shows the findings and the command lines, saves the plan,
// exports the dry run and starts the apply.
type reviewScreen struct {
	findings []plan.Finding
	errors   int
	warnings int
	acked    bool
	commands string
	scroll   int
	// issued is the report of the last certificate issuance.
	issued string
	// prompt is "save" or "export" while a path is typed.
	prompt string
	input  textinput.Model
}

func newReviewScreen(m *Model) reviewScreen {
	s := reviewScreen{input: newInput("")}
	s.findings = plan.Validate(m.p)
	if !plan.HasErrors(s.findings) {
		s.findings = append(s.findings, plan.ValidateCertificates(m.p, m.planDir())...)
	}
	for _, f := range s.findings {
		if f.Severity == plan.SeverityError {
			s.errors++
		} else {
			s.warnings++
		}
	}
	if s.errors == 0 {
		if ex, err := plan.Export(m.p, plan.FormatShell); err != nil {
			s.commands = "cannot render the command lines: " + err.Error()
		} else {
			s.commands = strings.TrimRight(string(ex.Combined), "\n")
		}
	}
	return s
}

func (s *reviewScreen) editing() bool { return s.prompt != "" }

func (s *reviewScreen) help(m *Model) []key.Binding {
	if s.prompt != "" {
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", s.prompt)), m.keys.Cancel, m.keys.ForceQuit}
	}
	keys := []key.Binding{m.keys.Save, m.keys.Export}
	if s.canIssue(m) {
		keys = append(keys, m.keys.Certs)
	}
	if s.warnings > 0 && !s.acked {
		keys = append(keys, m.keys.Ack)
	}
	if m.opts.Applier != nil {
		keys = append(keys, m.keys.Apply)
	}
	return append(keys, m.keys.Back, m.keys.Quit, m.keys.Down, m.keys.Up)
}

func (s *reviewScreen) update(m *Model, msg tea.KeyMsg) tea.Cmd {
	if s.prompt != "" {
		switch msg.Type {
		case tea.KeyEnter:
			path := strings.TrimSpace(s.input.Value())
			prompt := s.prompt
			s.prompt = ""
			s.input.Blur()
			if path == "" {
				m.setFlash(true, "no path given")
				return nil
			}
			if prompt == "save" {
				s.save(m, path)
			} else {
				s.export(m, path)
			}
		case tea.KeyEsc:
			s.prompt = ""
			s.input.Blur()
		default:
			s.input, _ = s.input.Update(msg)
		}
		return nil
	}
	switch {
	case key.Matches(msg, m.keys.Up):
		s.scroll = max(s.scroll-1, 0)
	case key.Matches(msg, m.keys.Down):
		s.scroll++
	case key.Matches(msg, m.keys.PgUp):
		s.scroll = max(s.scroll-(m.height-6), 0)
	case key.Matches(msg, m.keys.PgDn):
		s.scroll += m.height - 6
	case key.Matches(msg, m.keys.Save):
		s.prompt = "save"
		s.input.SetValue(m.planPath)
		s.input.CursorEnd()
		return s.input.Focus()
	case key.Matches(msg, m.keys.Export):
		if s.errors > 0 {
			m.setFlash(true, "%s: fix them before exporting", plural(s.errors, "error"))
			return nil
		}
		s.prompt = "export"
		s.input.SetValue(filepath.Join(m.dir(), m.p.Metadata.Name+"-dry-run"))
		s.input.CursorEnd()
		return s.input.Focus()
	case key.Matches(msg, m.keys.Certs) && s.canIssue(m):
		s.issue(m)
	case key.Matches(msg, m.keys.Ack):
		if s.warnings > 0 {
			s.acked = true
			m.setFlash(false, "%s acknowledged", plural(s.warnings, "warning"))
		}
	case key.Matches(msg, m.keys.Apply):
		switch {
		case m.opts.Applier == nil:
			m.setFlash(true, "this wizard was started without an applier: export the dry run instead")
		case s.errors > 0:
			m.setFlash(true, "%s block the apply: go back (esc) and fix them", plural(s.errors, "error"))
		case s.warnings > 0 && !s.acked:
			m.setFlash(true, "read the %s, then press w to acknowledge them", plural(s.warnings, "warning"))
		default:
			if err := plan.Save(m.planPath, m.p); err != nil {
				m.setFlash(true, "saving the plan before apply: %v", err)
				return nil
			}
			return m.askHostKeys(m.p, scrReview, func(m *Model) tea.Cmd { return m.goTo(scrApply) })
		}
	case key.Matches(msg, m.keys.Back):
		if m.sandbox {
			return m.goTo(scrStart)
		}
		return m.goTo(scrTLS)
	}
	return nil
}

// canIssue: a self-signed plan with a CA folder, and a way to issue.
func (s *reviewScreen) canIssue(m *Model) bool {
	t := m.p.Spec.TLS
	return m.opts.IssueCertificates != nil && t.Mode == plan.TLSSelfSigned && t.Dir != ""
}

// issue saves the plan, creates or reuses the CA and issues the member
// certificates, then judges the plan again.
func (s *reviewScreen) issue(m *Model) {
	if err := plan.Save(m.planPath, m.p); err != nil {
		m.setFlash(true, "saving the plan first: %v", err)
		return
	}
	dir := m.p.Spec.TLS.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(m.planDir(), dir)
	}
	report, err := m.opts.IssueCertificates(m.planPath, dir)
	acked := s.acked
	*s = newReviewScreen(m)
	s.acked = acked
	s.issued = strings.TrimSpace(report)
	if err != nil {
		m.setFlash(true, "certificates: %v", err)
		return
	}
	m.setFlash(false, "certificates ready in %s (plan saved to %s)", dir, m.planPath)
}

func (s *reviewScreen) save(m *Model, path string) {
	if err := plan.Save(path, m.p); err != nil {
		m.setFlash(true, "%v", err)
		return
	}
	m.planPath = path
	m.setFlash(false, "saved the plan to %s", path)
}

// export writes the dry run: per member its shell command, ETCD_* env file
// and systemd unit (and the DNS zone of a dns-srv plan), as 'plan export -o'
// does.
func (s *reviewScreen) export(m *Model, dir string) {
	formats := []string{plan.FormatShell, plan.FormatEnv, plan.FormatSystemd}
	if m.p.WithDefaults().Spec.Bootstrap.Mode == plan.ModeDNSSRV {
		formats = append(formats, plan.FormatDNS)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		m.setFlash(true, "%v", err)
		return
	}
	n := 0
	for _, format := range formats {
		ex, err := plan.Export(m.p, format)
		if err != nil {
			m.setFlash(true, "export %s: %v", format, err)
			return
		}
		for _, f := range ex.Files {
			if f.Name != filepath.Base(f.Name) || strings.HasPrefix(f.Name, ".") {
				m.setFlash(true, "refusing to write %q: names must not hold path elements", f.Name)
				return
			}
			mode := os.FileMode(0o644)
			switch filepath.Ext(f.Name) {
			case ".sh":
				mode = 0o755
			case ".env":
				mode = 0o600
			}
			if err := fileutil.WriteFileAtomic(filepath.Join(dir, f.Name), f.Data, mode); err != nil {
				m.setFlash(true, "%v", err)
				return
			}
			n++
		}
	}
	m.setFlash(false, "wrote %d files to %s (sh, env, systemd)", n, dir)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func (s *reviewScreen) view(m *Model) string {
	var b strings.Builder
	q := m.p.WithDefaults()
	fmt.Fprintf(&b, "%s: %d members, %s bootstrap, TLS %s", q.Metadata.Name, len(q.Spec.Members), q.Spec.Bootstrap.Mode, q.Spec.TLS.Mode)
	if m.planPath != "" {
		fmt.Fprintf(&b, ", plan file %s", m.planPath)
	}
	b.WriteString("\n")
	switch {
	case s.prompt == "save":
		fmt.Fprintf(&b, "Save the plan to: [%s]\n", s.input.View())
	case s.prompt == "export":
		fmt.Fprintf(&b, "Write the dry run into folder: [%s]\n", s.input.View())
	default:
		b.WriteString("\n")
	}
	var lines []string
	if s.issued != "" {
		lines = append(lines, "Certificates:")
		for _, l := range strings.Split(s.issued, "\n") {
			lines = append(lines, "  "+l)
		}
		lines = append(lines, "")
	}
	switch {
	case len(s.findings) == 0:
		lines = append(lines, m.st.okText.Render("✓ no findings: the members' start-up checks pass"))
	default:
		head := fmt.Sprintf("Findings: %s, %s", plural(s.errors, "error"), plural(s.warnings, "warning"))
		switch {
		case s.errors > 0 && s.canIssue(m):
			head += " (errors block export and apply; c creates the CA and certificates)"
		case s.errors > 0:
			head += " (errors block export and apply)"
		case s.acked:
			head += " (acknowledged)"
		default:
			head += " (press w to acknowledge)"
		}
		lines = append(lines, head)
		for _, f := range s.findings {
			st, mark := m.st.warnText, "! warning"
			if f.Severity == plan.SeverityError {
				st, mark = m.st.errText, "✗ error  "
			}
			// Findings are wrapped, not cut: every word of them matters.
			for i, l := range wrapIndent(fmt.Sprintf("%s %s", mark, f.Message), m.width, 10) {
				if i > 0 {
					l = "          " + l
				}
				lines = append(lines, st.Render(l))
			}
			if f.Hint != "" {
				for _, h := range strings.Split(f.Hint, "\n") {
					for i, l := range wrapIndent("hint: "+h, m.width-4, 6) {
						if i > 0 {
							l = "      " + l
						}
						lines = append(lines, m.st.faint.Render("    "+l))
					}
				}
			}
		}
	}
	if s.commands != "" {
		lines = append(lines, "", "Per-member command lines:")
		// Wrapped, not cut: the command lines are meant to be copied.
		for _, l := range strings.Split(s.commands, "\n") {
			lines = append(lines, strings.Split(ansi.Hardwrap(l, max(m.width, 20), false), "\n")...)
		}
	}
	avail := max(m.height-7, 1)
	s.scroll = min(s.scroll, max(len(lines)-avail, 0))
	end := min(s.scroll+avail, len(lines))
	b.WriteString(strings.Join(lines[s.scroll:end], "\n"))
	if end < len(lines) {
		b.WriteString("\n" + m.st.faint.Render(fmt.Sprintf("... %d more lines (↓/pgdn)", len(lines)-end)))
	}
	return b.String()
}

// wrapIndent wraps s to width; lines after the first are indent columns
// narrower, for a hanging indent the caller adds.
func wrapIndent(s string, width, indent int) []string {
	width = max(width, 20)
	first := strings.Split(ansi.Wrap(s, width, ""), "\n")
	if len(first) == 1 {
		return first
	}
	rest := strings.Join(first[1:], " ")
	return append(first[:1], strings.Split(ansi.Wrap(rest, max(width-indent, 10), ""), "\n")...)
}
