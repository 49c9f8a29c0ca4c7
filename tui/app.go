package tui

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"etcdctl-wizard/plan"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// Options configure a wizard. The zero value is a wizard that plans and
// exports but cannot apply.
type Options struct {
	// PlanPath opens this plan file (etcdctl-wizard -f PLAN).
	PlanPath string
	// Dir is where new plan files and dry-run exports go by default; "" is
	// the working directory.
	Dir string
	// Applier provisions plans; nil disables the apply screens.
	Applier Applier
	// Sandbox returns the local sandbox plan (members on this machine) and
	// the file it is saved to; nil hides the choice.
	Sandbox func() (*plan.Plan, string, error)
	// Renderer draws the styles; nil is lipgloss's default renderer (which
	// follows NO_COLOR).
	Renderer *lipgloss.Renderer
	// Context bounds the applier's work; nil is context.Background().
	Context context.Context
	// IssueCertificates creates the CA in dir when it has none (or reuses
	// it) and issues the member certificates of the plan saved at planPath,
	// as 'etcdctl-wizard certs issue -f PLAN' does; it returns what it did.
	// nil hides the review's certificate key.
	IssueCertificates func(planPath, dir string) (string, error)
	// Resolver answers the DNS SRV live check; nil is net.DefaultResolver.
	Resolver Resolver
	// Now is the clock of elapsed times; nil is time.Now.
	Now func() time.Time
	// IssueMemberCertificates issues the certificates of the member a
	// member add appends (the last of grown), for the plan saved at
	// planPath, as 'etcdctl-wizard member add' does with self-signed TLS;
	// it returns what it did. nil: the wizard cannot add members to a
	// self-signed cluster (it says to use the command).
	IssueMemberCertificates func(planPath string, grown *plan.Plan) (string, error)
}

type screenID int

const (
	scrStart screenID = iota
	scrHosts
	scrBootstrap
	scrTLS
	scrReview
	scrHostKeys
	scrApply
	scrDone
	scrCluster
)

var screenNames = []string{"Start", "Hosts", "Bootstrap", "TLS", "Review", "Host keys", "Apply", "Done", "Cluster"}

// screen is one step of the wizard.
type screen interface {
	// update handles a key; the model's global keys run only when the
	// screen is not editing text.
	update(m *Model, msg tea.KeyMsg) tea.Cmd
	view(m *Model) string
	help(m *Model) []key.Binding
	editing() bool
}

// Model is the wizard: the plan being edited and one model per screen.
type Model struct {
	opts   Options
	ctx    context.Context
	keys   keyMap
	help   help.Model
	st     styles
	width  int
	height int

	cur screenID
	// p is the plan being edited, as the operator wrote it (no defaults
	// filled in), so that saving round-trips it.
	p        *plan.Plan
	planPath string
	sandbox  bool
	// manage: the plan is a running cluster's, managed on the cluster
	// screen (its host-key screen is a member add's).
	manage bool

	start    startScreen
	hosts    hostsScreen
	boot     bootScreen
	tls      tlsScreen
	review   reviewScreen
	hostkeys hostKeysScreen
	apply    applyScreen
	done     doneScreen
	cluster  clusterScreen

	// flash is a one-line message under the screen (what was saved, why a
	// key did nothing); flashErr marks it as an error.
	flash    string
	flashErr bool
	// hostKeysReq numbers the host-key scans.
	hostKeysReq int
	// Err is the error the wizard ended with, if any.
	Err error
}

// New returns the wizard at its first screen: the plan of Options.PlanPath
// when given (at the hosts screen), the start screen otherwise.
func New(opts Options) *Model {
	r := opts.Renderer
	if r == nil {
		r = lipgloss.DefaultRenderer()
	}
	ctx := opts.Context
	if ctx == nil {
		ctx = context.Background()
	}
	m := &Model{opts: opts, ctx: ctx, keys: newKeyMap(), help: help.New(), st: newStyles(r), width: 80, height: 24}
	m.help.Styles.ShortKey = r.NewStyle().Bold(true)
	m.help.Styles.ShortDesc = r.NewStyle().Foreground(lipgloss.Color("8"))
	m.help.Styles.ShortSeparator = r.NewStyle().Foreground(lipgloss.Color("8"))
	m.help.Styles.Ellipsis = m.help.Styles.ShortSeparator
	m.start = newStartScreen(m)
	if opts.PlanPath != "" {
		p, err := plan.Load(opts.PlanPath)
		if err != nil {
			m.setFlash(true, "%v", err)
			m.start.choosePath(opts.PlanPath)
			return m
		}
		m.openPlan(p, opts.PlanPath, false)
	}
	return m
}

// Plan returns the plan being edited.
func (m *Model) Plan() *plan.Plan { return m.p }

// Screen names the current screen.
func (m *Model) Screen() string { return screenNames[m.cur] }

// openPlan makes p the plan being edited and moves to the hosts screen (the
// review screen for the sandbox, which is ready to apply).
func (m *Model) openPlan(p *plan.Plan, path string, sandbox bool) {
	m.p, m.planPath, m.sandbox, m.manage = p, path, sandbox, false
	m.hosts = newHostsScreen(m)
	m.boot = newBootScreen(m)
	m.tls = newTLSScreen(m)
	if sandbox {
		m.goTo(scrReview)
		return
	}
	m.goTo(scrHosts)
}

func (m *Model) dir() string {
	if m.opts.Dir == "" {
		return "."
	}
	return m.opts.Dir
}

// planDir is the folder relative paths in the plan are taken from.
func (m *Model) planDir() string {
	if m.planPath == "" {
		return m.dir()
	}
	return filepath.Dir(m.planPath)
}

func (m *Model) setFlash(isErr bool, format string, args ...any) {
	m.flash, m.flashErr = fmt.Sprintf(format, args...), isErr
}

// goTo enters a screen, refreshing what it shows from the plan.
func (m *Model) goTo(s screenID) tea.Cmd {
	m.cur = s
	switch s {
	case scrReview:
		m.review = newReviewScreen(m)
	case scrApply:
		return m.apply.init(m)
	case scrDone:
		m.done = newDoneScreen(m)
	}
	return nil
}

func (m *Model) screen() screen {
	switch m.cur {
	case scrHosts:
		return &m.hosts
	case scrBootstrap:
		return &m.boot
	case scrTLS:
		return &m.tls
	case scrReview:
		return &m.review
	case scrHostKeys:
		return &m.hostkeys
	case scrApply:
		return &m.apply
	case scrDone:
		return &m.done
	case scrCluster:
		return &m.cluster
	default:
		return &m.start
	}
}

// Init implements tea.Model.
func (m *Model) Init() tea.Cmd { return nil }

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.Width = msg.Width
		return m, nil
	case tea.KeyMsg:
		if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste {
			// Keys typed faster than the terminal is read arrive as one
			// message ("nnn"); each is a key of its own.
			var cmds []tea.Cmd
			for _, r := range msg.Runes {
				var cmd tea.Cmd
				_, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt})
				cmds = append(cmds, cmd)
			}
			return m, tea.Batch(cmds...)
		}
		sc := m.screen()
		// A running apply or member change is not left by a key: the
		// screens explain why (the apply asks to cancel).
		busy := (m.cur == scrApply && m.apply.running()) || m.cluster.running()
		if key.Matches(msg, m.keys.ForceQuit) && !busy {
			return m, tea.Quit
		}
		// q on the cluster screen goes back to the start.
		if !sc.editing() && key.Matches(msg, m.keys.Quit) && !busy && m.cur != scrCluster {
			return m, tea.Quit
		}
		m.flash = ""
		return m, sc.update(m, msg)
	case logTailMsg:
		if m.cur == scrCluster {
			m.cluster.onLog(m, msg)
		} else {
			m.apply.onLog(m, msg)
		}
		return m, nil
	case memberListMsg:
		return m, m.cluster.onList(msg)
	case memberEventMsg:
		return m, m.cluster.onEvent(m, msg)
	case tokenMsg:
		m.boot.tokenCreated(m, msg)
		return m, nil
	case dnsCheckMsg:
		m.boot.dns = &msg
		return m, nil
	case hostKeysMsg:
		return m, m.hostkeys.loaded(m, msg)
	case applyEventMsg:
		return m, m.apply.event(m, msg)
	case statusMsg:
		return m, m.apply.onStatus(m, msg)
	case tickMsg:
		if m.cur == scrApply && m.apply.running() {
			return m, tick()
		}
	}
	return m, nil
}

// View implements tea.Model.
func (m *Model) View() string {
	w, h := m.width, m.height
	// Planning shows its five steps; provisioning shows the review and
	// its own three, so that the line fits 80 columns.
	var crumbs []string
	var steps []screenID
	switch {
	case m.manage:
		steps = []screenID{scrStart, scrCluster}
		if m.cur == scrHostKeys {
			steps = append(steps, scrHostKeys)
		}
	case m.cur > scrReview:
		steps = []screenID{scrReview, scrHostKeys, scrApply, scrDone}
		crumbs = append(crumbs, m.st.crumb.Render("…"))
	default:
		steps = []screenID{scrStart, scrHosts, scrBootstrap, scrTLS, scrReview}
	}
	for _, s := range steps {
		if s == m.cur {
			crumbs = append(crumbs, m.st.crumbOn.Render("["+screenNames[s]+"]"))
		} else {
			crumbs = append(crumbs, m.st.crumb.Render(screenNames[s]))
		}
	}
	header := m.st.title.Render("etcdctl-wizard") + "  " + strings.Join(crumbs, m.st.crumb.Render(" > "))
	sc := m.screen()
	flash := ""
	if m.flash != "" {
		if m.flashErr {
			flash = m.st.errText.Render("error: " + m.flash)
		} else {
			flash = m.st.okText.Render(m.flash)
		}
	}
	helpView := m.help.ShortHelpView(sc.help(m))
	bodyH := h - 4
	if bodyH < 1 {
		bodyH = 1
	}
	body := clip(sc.view(m), w, bodyH)
	pad := bodyH - strings.Count(body, "\n") - 1
	if pad < 0 {
		pad = 0
	}
	return clip(header, w, 1) + "\n\n" + body + strings.Repeat("\n", pad) + "\n" + clip(flash, w, 1) + "\n" + clip(helpView, w, 1)
}

// Run shows the wizard on a terminal until the operator quits. in and out
// must be the terminal.
func Run(opts Options, in io.Reader, out io.Writer) error {
	m := New(opts)
	prog := tea.NewProgram(m, tea.WithInput(in), tea.WithOutput(out), tea.WithAltScreen(), tea.WithContext(m.ctx))
	final, err := prog.Run()
	if err != nil {
		return err
	}
	if fm, ok := final.(*Model); ok && fm.Err != nil {
		return fm.Err
	}
	return nil
}
