package executor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/facts"
)

// A host's steps take few SSH round trips (each costs a session on the
// host): one to create the folders and read the sha256 of every file the
// plan puts, an upload for each large file that differs (the binary), one
// for all small files that differ (written through stdin, never argv, since
// keys are among them), and one to start or restart the member.

// smallLimit is the size up to which a file goes in the batch.
const smallLimit = 256 << 10

// hostFile is one file a step puts on the host.
type hostFile struct {
	step    string
	path    string
	mode    os.FileMode
	sum     string
	content []byte  // small files
	src     *source // large files
}

// collectFiles lists the files of the host's steps, plus the data dir marker.
func (s *session) collectFiles(h *host, srcs *sources) ([]hostFile, error) {
	var out []hostFile
	for _, st := range h.hp.Steps {
		for _, f := range st.Files {
			hf := hostFile{step: st.Kind, path: f.Path, mode: os.FileMode(f.Mode)}
			if f.Source == "" {
				hf.content = []byte(f.Content)
				hf.sum = f.SHA256
			} else {
				p, err := s.resolveSource(f.Source, h.facts)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", st.Kind, err)
				}
				src, err := srcs.open(p)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", st.Kind, err)
				}
				hf.sum = src.sum
				if src.size <= smallLimit {
					hf.content = make([]byte, src.size)
					if _, err := src.f.ReadAt(hf.content, 0); err != nil && err != io.EOF {
						return nil, fmt.Errorf("%s: reading %s: %w", st.Kind, p, err)
					}
				} else {
					hf.src = src
				}
			}
			if hf.sum == "" {
				hf.sum = sha256Hex(hf.content)
			}
			out = append(out, hf)
		}
	}
	lay := h.hp.Layout
	m := facts.MarkerFile(s.q.Metadata.Name, h.hp.ClusterID, h.hp.Member, h.hp.MemberID)
	out = append(out, hostFile{step: StepMarker, path: facts.MarkerPath(lay), mode: 0o600, content: m, sum: sha256Hex(m)})
	return out, nil
}

// prepareScript creates the folders and prints "dirs" when it had to,
// then "sum SHA MODE PATH" for every file that exists.
func prepareScript(h *host, files []hostFile) string {
	var b strings.Builder
	if st, ok := h.hp.Step(plan.StepDirectories); ok && st.Command != "" {
		fmt.Fprintf(&b, "if ! { %s; } 2>/dev/null; then %s || exit 1; echo dirs; fi\n", st.Check, st.Command)
	}
	dd := remote.Quote(h.hp.Layout.DataDir)
	fmt.Fprintf(&b, "[ -d %[1]s ] || { mkdir -p -m 0700 %[1]s || exit 1; echo dirs; }\n", dd)
	b.WriteString("for p in")
	for _, f := range files {
		b.WriteString(" " + remote.Quote(f.path))
	}
	b.WriteString(`; do if [ -f "$p" ]; then s=$(sha256sum <"$p") || exit 1; echo "sum ${s%% *} $(stat -c %a -- "$p") $p"; fi; done` + "\n")
	// The env file's lines that a member with data reads (restartNeeded).
	env := remote.Quote(h.hp.Layout.EnvFile)
	fmt.Fprintf(&b, "if [ -f %s ]; then echo \"cfg $(%s)\"; fi\n", env, plan.RuntimeConfigHashCommand(env))
	return b.String()
}

// bootstrapOnly reports whether the env file changes only lines that a
// member holding this cluster's data ignores (--initial-cluster*,
// discovery): after member add or remove, the other members' files list
// the new membership, which must not restart them. haveCfg is the hash the
// host computed from its current file ("" when there is none).
func (s *session) bootstrapOnly(h *host, haveCfg string) bool {
	st, ok := h.hp.Step(plan.StepEnvFile)
	if !ok || len(st.Files) != 1 || haveCfg == "" || h.facts == nil {
		return false
	}
	return haveCfg == plan.RuntimeConfigHash(st.Files[0].Content) &&
		h.facts.DataState(h.hp.ClusterID, h.hp.Member) == facts.DataSame
}

// batchScript writes the files that follow on stdin, each as a header line
// "MODE SHA LEN PATH" and LEN bytes, to a temporary name next to the
// destination, checks its sha256 and renames it into place.
const batchScript = `umask 077
while read -r mode sha len path; do
  [ -n "$path" ] || break
  dir=$(dirname -- "$path")
  tmp="$dir/.$(basename -- "$path").etcdctl-wizard-upload"
  mkdir -p -- "$dir" || exit 1
  dd bs=1 count="$len" of="$tmp" 2>/dev/null || exit 1
  s=$(sha256sum <"$tmp")
  if [ "${s%% *}" != "$sha" ]; then rm -f -- "$tmp"; echo "sha256 mismatch for $path: expected $sha, got ${s%% *}" >&2; exit 1; fi
  chmod "$mode" "$tmp" && mv -f -- "$tmp" "$path" || exit 1
done`

// applyHost runs one host's steps up to and including the start.
func (s *session) applyHost(ctx context.Context, h *host, srcs *sources, j *Journal) error {
	name := h.hp.Member
	journal := func(fn func(*JournalHost)) { _ = j.update(func(j *Journal) { fn(j.host(name)) }) }
	fail := func(step string, err error) error {
		s.ev.emit(Event{Host: name, Step: step, State: StateFailed, Err: err.Error()})
		return fmt.Errorf("%s: %w", step, err)
	}
	files, err := s.collectFiles(h, srcs)
	if err != nil {
		return fail(StepPreflight, err)
	}

	// 1. Folders, and what is on the host already.
	sctx, cancel := context.WithTimeout(ctx, s.opts.stepTimeout())
	s.ev.emit(Event{Host: name, Step: plan.StepDirectories, State: StateRunning})
	out, err := remote.Output(sctx, h.t, remote.Cmd{Root: true, Command: prepareScript(h, files)})
	cancel()
	if err != nil {
		return fail(plan.StepDirectories, err)
	}
	have := map[string]string{} // path -> "sha mode"
	dirsChanged := false
	haveCfg := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.SplitN(line, " ", 4)
		switch {
		case len(f) == 4 && f[0] == "sum":
			have[f[3]] = f[1] + " " + f[2]
		case len(f) == 2 && f[0] == "cfg":
			haveCfg = f[1]
		case line == "dirs":
			dirsChanged = true
		}
	}
	if dirsChanged {
		h.res.Changed = append(h.res.Changed, plan.StepDirectories)
		s.ev.emit(Event{Host: name, Step: plan.StepDirectories, State: StateDone})
	} else {
		s.ev.emit(Event{Host: name, Step: plan.StepDirectories, State: StateSkipped})
	}
	journal(func(x *JournalHost) {
		x.Steps[plan.StepDirectories] = time.Now().UTC()
		x.LastStep = plan.StepDirectories
	})

	// Which steps have files to write.
	stepChanged := map[string]bool{}
	var stepOrder []string
	for _, f := range files {
		if !contains(stepOrder, f.step) {
			stepOrder = append(stepOrder, f.step)
		}
		if have[f.path] != f.sum+" "+strconv.FormatUint(uint64(f.mode.Perm()), 8) {
			stepChanged[f.step] = true
		}
	}
	running := h.facts.Running
	// Steps whose change the running member must be restarted for.
	needsRestart := func(step string) bool {
		if !stepChanged[step] || step == StepMarker {
			return false
		}
		return step != plan.StepEnvFile || !s.bootstrapOnly(h, haveCfg)
	}
	done := func(step string, sent int64) {
		if !stepChanged[step] {
			s.ev.emit(Event{Host: name, Step: step, State: StateSkipped, Message: "already in place"})
		} else {
			h.res.Changed = append(h.res.Changed, step)
			msg := ""
			if sent > 0 {
				msg = "sent " + size(sent)
			}
			if step == plan.StepEnvFile && !needsRestart(step) && running {
				msg = "only bootstrap flags changed (ETCD_INITIAL_CLUSTER*, ETCD_DISCOVERY*), which a member with data ignores: no restart"
			}
			s.ev.emit(Event{Host: name, Step: step, State: StateDone, Message: msg})
		}
		journal(func(x *JournalHost) {
			x.Steps[step] = time.Now().UTC()
			x.LastStep = step
			if running && needsRestart(step) {
				x.RestartPending = true
			}
		})
	}

	// 2. Small files, all at once, while the large ones are on their way.
	var batch bytes.Buffer
	for _, f := range files {
		if f.src != nil || have[f.path] == f.sum+" "+strconv.FormatUint(uint64(f.mode.Perm()), 8) {
			continue
		}
		fmt.Fprintf(&batch, "%o %s %d %s\n", f.mode.Perm(), f.sum, len(f.content), f.path)
		batch.Write(f.content)
		h.res.Uploads++
	}
	batchErr := make(chan error, 1)
	go func() {
		if batch.Len() == 0 {
			batchErr <- nil
			return
		}
		sctx, cancel := context.WithTimeout(ctx, s.opts.stepTimeout())
		defer cancel()
		batchErr <- h.t.Run(sctx, remote.Cmd{Root: true, Command: batchScript, Stdin: &batch})
	}()

	// 3. Large files (the binary), each through Upload.
	largeSteps := map[string]bool{}
	for _, f := range files {
		if f.src == nil {
			continue
		}
		largeSteps[f.step] = true
		if have[f.path] == f.sum+" "+strconv.FormatUint(uint64(f.mode.Perm()), 8) {
			continue
		}
		s.ev.emit(Event{Host: name, Step: f.step, State: StateRunning})
		sent, err := s.upload(ctx, h, f)
		if err != nil {
			<-batchErr
			return fail(f.step, err)
		}
		h.res.Uploads++
		if onlyLarge(files, f.step) {
			done(f.step, sent)
		}
	}
	for _, st := range stepOrder {
		if largeSteps[st] && onlyLarge(files, st) && !stepChanged[st] {
			done(st, 0)
		}
	}

	if err := <-batchErr; err != nil {
		for _, st := range stepOrder {
			if stepChanged[st] && !onlyLarge(files, st) {
				return fail(st, err)
			}
		}
		return fail(plan.StepEnvFile, err)
	}
	for _, st := range stepOrder {
		if !onlyLarge(files, st) {
			done(st, 0)
		}
	}

	// 4. Start, or restart to pick up changed files.
	pending := false
	j.mu.Lock()
	pending = j.host(name).RestartPending
	j.mu.Unlock()
	changed := pending
	var pre []string
	for _, st := range h.hp.Steps {
		if st.Kind == plan.StepStart || st.Kind == plan.StepDirectories {
			continue
		}
		if needsRestart(st.Kind) {
			changed = true
			if st.Command != "" {
				pre = append(pre, st.Command)
			}
		}
	}
	if changed && h.facts.Running {
		// Members of a running cluster restart one at a time, after every
		// host is ready (rollingRestart).
		h.restartPre = pre
		h.restartPending = true
		s.ev.emit(Event{Host: name, Step: plan.StepStart, State: StateInfo, Message: "files changed: restart queued (one member at a time)"})
		return nil
	}
	// The start waits for every host to be ready (startAll): members of a
	// new cluster that start together elect a leader in one election
	// timeout.
	h.startChanged, h.startPre = changed, pre
	return nil
}

// startAll starts (or checks) every member that is not queued for a
// rolling restart, all at once.
func (s *session) startAll(ctx context.Context, j *Journal) error {
	var g errgroup.Group
	g.SetLimit(s.opts.parallel())
	errs := make([]error, len(s.hosts))
	for i, h := range s.hosts {
		if h.restartPending {
			continue
		}
		g.Go(func() error {
			if errs[i] = s.start(ctx, h, h.startChanged, h.startPre); errs[i] == nil {
				_ = j.update(func(j *Journal) {
					x := j.host(h.hp.Member)
					x.Steps[plan.StepStart] = time.Now().UTC()
					x.LastStep, x.RestartPending = plan.StepStart, false
				})
			}
			return nil
		})
	}
	g.Wait()
	return joinHostErrors(s.hosts, errs)
}

func onlyLarge(files []hostFile, step string) bool {
	for _, f := range files {
		if f.step == step && f.src == nil {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// upload sends one large file with progress events.
func (s *session) upload(ctx context.Context, h *host, f hostFile) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.stepTimeout())
	defer cancel()
	name := h.hp.Member
	var lastReport time.Time
	var lastDone int64
	rf := remote.File{Path: f.path, Mode: f.mode, SHA256: f.sum, Content: f.src.f, Size: f.src.size,
		Progress: func(done, total int64) {
			// Every 5% or 100 ms, whichever comes first.
			if now := time.Now(); now.Sub(lastReport) > 100*time.Millisecond || done-lastDone >= total/20 || done == total {
				lastReport, lastDone = now, done
				s.ev.emit(Event{Host: name, Step: f.step, State: StateProgress, Progress: &Progress{Done: done, Total: total}})
			}
		}}
	res, err := h.t.Upload(ctx, rf)
	return res.Sent, err
}

// startScript starts a stopped member, restarts a running one whose files
// changed, and leaves a running unchanged one alone; it prints what it did.
func startScript(lay *plan.HostLayout, changed bool, pre []string) string {
	var b strings.Builder
	for _, c := range pre {
		b.WriteString(c + " || exit 1\n")
	}
	fmt.Fprintf(&b, "if { %s; }; then\n", lay.RunningCheck())
	if changed {
		fmt.Fprintf(&b, "{ %s\n} || exit 1\necho restarted\n", lay.RestartCommand())
	} else {
		b.WriteString("echo running\n")
	}
	fmt.Fprintf(&b, "else\n%s || exit 1\necho started\nfi\n", lay.StartCommand())
	return b.String()
}

func (s *session) start(ctx context.Context, h *host, changed bool, pre []string) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.stepTimeout())
	defer cancel()
	name := h.hp.Member
	s.ev.emit(Event{Host: name, Step: plan.StepStart, State: StateRunning})
	out, err := remote.Output(ctx, h.t, remote.Cmd{Root: true, Command: startScript(h.hp.Layout, changed, pre)})
	if err != nil {
		s.ev.emit(Event{Host: name, Step: plan.StepStart, State: StateFailed, Err: err.Error()})
		return fmt.Errorf("start: %w", err)
	}
	switch strings.TrimSpace(string(out)) {
	case "running":
		s.ev.emit(Event{Host: name, Step: plan.StepStart, State: StateSkipped, Message: "already running"})
		return nil
	case "restarted":
		h.res.Restarted = true
		s.ev.emit(Event{Host: name, Step: plan.StepStart, State: StateDone, Message: "restarted to pick up changed files"})
	case "started":
		h.res.Started = true
		s.ev.emit(Event{Host: name, Step: plan.StepStart, State: StateDone, Message: "started"})
	default:
		err := fmt.Errorf("start: unexpected answer %q", strings.TrimSpace(string(out)))
		s.ev.emit(Event{Host: name, Step: plan.StepStart, State: StateFailed, Err: err.Error()})
		return err
	}
	h.res.Changed = append(h.res.Changed, plan.StepStart)
	return nil
}

// rollingRestart restarts the running members whose files changed, one at
// a time: the cluster must be healthy before each restart, and the member
// must serve again and the cluster be healthy before the next one.
func (s *session) rollingRestart(ctx context.Context, j *Journal) error {
	var queue []*host
	for _, h := range s.hosts {
		if h.restartPending {
			queue = append(queue, h)
		}
	}
	if len(queue) == 0 {
		return nil
	}
	s.ev.emit(Event{Step: "rolling-restart", State: StateRunning, Message: fmt.Sprintf("%d members", len(queue))})
	for _, h := range queue {
		if err := s.waitCluster(ctx, s.hosts); err != nil {
			return fmt.Errorf("before restarting %s: %w", h.hp.Member, err)
		}
		if err := s.start(ctx, h, true, h.restartPre); err != nil {
			return fmt.Errorf("%s: %w", h.hp.Member, err)
		}
		_ = j.update(func(j *Journal) {
			x := j.host(h.hp.Member)
			x.Steps[plan.StepStart] = time.Now().UTC()
			x.LastStep, x.RestartPending = plan.StepStart, false
		})
		h.restartPending = false
		hctx, cancel := context.WithTimeout(ctx, s.opts.healthTimeout())
		err := s.waitMember(hctx, h)
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", h.hp.Member, err)
		}
	}
	s.ev.emit(Event{Step: "rolling-restart", State: StateDone})
	return nil
}
