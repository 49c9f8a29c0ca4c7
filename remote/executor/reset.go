package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"etcdctl-wizard/plan"
	"etcdctl-wizard/remote"
	"etcdctl-wizard/remote/facts"
)

// ResetResult tells what Reset did per host.
type ResetResult struct {
	Member  string
	Stopped bool
	Removed []string
	Kept    []string // paths left alone, with why
}

// Reset stops the plan's members and removes their data, binaries and
// service files. It touches only the plan's hosts, and on them only the
// paths the plan names; a host whose data dir holds another cluster's data
// (per the marker) is left alone. Every host must be reachable: a partial reset
// would leave a cluster neither running nor gone.
func Reset(ctx context.Context, p *plan.Plan, opts Options) ([]ResetResult, error) {
	s, err := newSession(p, opts)
	if err != nil {
		return nil, err
	}
	defer s.close()
	problems := s.connectAndGather(ctx, s.hosts)
	if len(problems) == 0 {
		// Same layout choice as apply made.
		fs := map[string]*facts.Facts{}
		for _, h := range s.hosts {
			fs[h.hp.Member] = h.facts
		}
		hps, err := plan.BuildFor(s.p, s.hostOptions(fs))
		if err != nil {
			return nil, err
		}
		for i, h := range s.hosts {
			h.hp = hps[i]
		}
	}
	if hasFatal(problems) {
		return nil, &PreflightError{Problems: problems}
	}
	if s.opts.Confirm != nil {
		ok, err := s.opts.Confirm(s.summary(nil))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, errors.New("reset cancelled: nothing was changed")
		}
	}
	var g errgroup.Group
	g.SetLimit(s.opts.parallel())
	results := make([]ResetResult, len(s.hosts))
	errs := make([]error, len(s.hosts))
	var mu sync.Mutex
	for i, h := range s.hosts {
		g.Go(func() error {
			r, err := s.resetHost(ctx, h)
			mu.Lock()
			results[i], errs[i] = r, err
			mu.Unlock()
			return nil
		})
	}
	g.Wait()
	if err := joinHostErrors(s.hosts, errs); err != nil {
		return results, err
	}
	_ = removeJournal(JournalPath(s.opts.StateDir, s.q.Metadata.Name))
	// The local members' folders are gone: remove their parents when empty.
	_ = os.Remove(filepath.Join(s.opts.StateDir, s.q.Metadata.Name, "members"))
	s.ev.emit(Event{Step: "reset", State: StateDone, Message: fmt.Sprintf("%d hosts reset", len(s.hosts))})
	return results, nil
}

func (s *session) resetHost(ctx context.Context, h *host) (ResetResult, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.stepTimeout())
	defer cancel()
	name, lay := h.hp.Member, h.hp.Layout
	r := ResetResult{Member: name}
	if h.facts.DataState(h.hp.ClusterID, name) == facts.DataOther {
		// The member there, its binary and its env file are another
		// cluster's: this plan has nothing to remove on the host.
		r.Kept = append(r.Kept, lay.DataDir+" (data of another cluster)")
		s.ev.emit(Event{Host: name, Step: StepRemove, State: StateWarning,
			Message: "left alone: " + lay.DataDir + " holds another cluster's member"})
		return r, nil
	}
	s.ev.emit(Event{Host: name, Step: StepStop, State: StateRunning})
	// Both service kinds: the host may have changed since the apply.
	sup := *lay
	sup.Service = plan.ServiceSupervisor
	if sup.PIDFile == "" {
		sup.ServiceFile, sup.PIDFile, sup.LogFile = plan.SupervisorPath, plan.PIDFilePath, plan.LogFilePath
	}
	stop := sup.StopCommand()
	if h.facts.Systemd {
		sd := *lay
		sd.Service = plan.ServiceSystemd
		stop = "{ " + sd.StopCommand() + "\n} && { " + stop + "\n}"
	}
	if err := h.t.Run(ctx, remote.Cmd{Root: true, Command: stop}); err != nil {
		s.ev.emit(Event{Host: name, Step: StepStop, State: StateFailed, Err: err.Error()})
		return r, fmt.Errorf("stopping the member: %w", err)
	}
	r.Stopped = h.facts.Running
	s.ev.emit(Event{Host: name, Step: StepStop, State: StateDone})

	var certDirs []string
	rm := []string{lay.DataDir, lay.InstallPath, lay.EnvFile}
	for _, st := range h.hp.Steps {
		if st.Kind == plan.StepCertificates {
			for _, f := range st.Files {
				rm = append(rm, f.Path)
				if d := path.Dir(f.Path); !contains(certDirs, d) {
					certDirs = append(certDirs, d)
				}
			}
		}
	}
	if lay.Root != "" {
		// A local member's folder holds nothing else.
		rm = append(rm, lay.Root)
	} else {
		rm = append(rm, plan.UnitFilePath, plan.SupervisorPath, plan.PIDFilePath, plan.PIDFilePath+".child", plan.LogFilePath)
	}
	for _, p := range rm {
		if !safeToRemove(p) {
			return r, fmt.Errorf("refusing to remove %q: not a path the wizard would create", p)
		}
	}
	// Uploads cut short leave their temporary copies next to the files.
	for _, p := range append([]string(nil), rm...) {
		rm = append(rm, path.Join(path.Dir(p), "."+path.Base(p)+".etcdctl-wizard-upload"))
	}
	var cmd strings.Builder
	cmd.WriteString("set -e\n")
	for _, p := range rm {
		fmt.Fprintf(&cmd, "if [ -e %[1]s ] || [ -L %[1]s ]; then rm -rf -- %[1]s; echo %[1]s; fi\n", remote.Quote(p))
	}
	// Folders the apply created, when nothing else is left in them.
	for _, d := range append(certDirs, path.Dir(lay.EnvFile), lay.WorkingDirectory) {
		if safeToRemove(d) {
			fmt.Fprintf(&cmd, "rmdir -- %[1]s 2>/dev/null && echo %[1]s || true\n", remote.Quote(d))
		}
	}
	if h.facts.Systemd && lay.Root == "" {
		cmd.WriteString("systemctl daemon-reload 2>/dev/null || true\n")
	}
	out, err := remote.Output(ctx, h.t, remote.Cmd{Root: true, Command: cmd.String()})
	if err != nil {
		s.ev.emit(Event{Host: name, Step: StepRemove, State: StateFailed, Err: err.Error()})
		return r, fmt.Errorf("removing files: %w", err)
	}
	r.Removed = strings.Fields(string(out))
	s.ev.emit(Event{Host: name, Step: StepRemove, State: StateDone, Message: fmt.Sprintf("removed %d paths", len(r.Removed))})
	return r, nil
}

// safeToRemove refuses the paths no plan should make the wizard delete.
func safeToRemove(p string) bool {
	p = path.Clean(p)
	if !path.IsAbs(p) || strings.Count(p, "/") < 2 {
		return false
	}
	switch p {
	case "/usr/local", "/usr/local/bin", "/usr/bin", "/var/lib", "/var/log", "/etc/systemd", "/etc/systemd/system",
		"/home", "/root", "/run", "/tmp", "/var/tmp", "/opt", "/srv", "/usr/lib", "/etc/ssh":
		return false
	}
	return true
}
