package proc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcessConfig describes a process to run. Restarts reuse it unchanged.
type ProcessConfig struct {
	Name    string   // label used in errors and log markers
	Binary  string   // path of the executable
	Args    []string // arguments after the binary name
	Env     []string // KEY=VALUE pairs added to the cleaned environment (see CleanEnv)
	LogPath string   // stdout and stderr are appended here
}

// Process is one running (or exited) child process whose output goes to a log file.
type Process struct {
	cfg ProcessConfig

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	paused  bool
}

// StartProcess starts the process described by cfg.
func StartProcess(cfg ProcessConfig) (*Process, error) {
	if cfg.Binary == "" {
		return nil, errors.New("start process: no binary given")
	}
	if cfg.LogPath == "" {
		return nil, fmt.Errorf("start %s: no log path given", cfg.Name)
	}
	p := &Process{cfg: cfg}
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, nil
}

// CleanEnv returns this process's environment without ETCD_* and ETCDCTL_* variables (a
// developer's shell must not change what a test starts), followed by extra.
func CleanEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "ETCDCTL_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

func (p *Process) start() error {
	logFile, err := os.OpenFile(p.cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: open log: %w", p.cfg.Name, err)
	}
	fmt.Fprintf(logFile, "=== harness: starting %s: %s %s\n", p.cfg.Name, p.cfg.Binary, strings.Join(p.cfg.Args, " "))
	cmd := exec.Command(p.cfg.Binary, p.cfg.Args...)
	cmd.Env = CleanEnv(p.cfg.Env)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Members must not outlive a test binary that dies without running its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", p.cfg.Name, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.waitErr, p.paused = cmd, done, nil, false
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logFile.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// Config returns the configuration the process was started with.
func (p *Process) Config() ProcessConfig { return p.cfg }

// Pid is the current process id (it changes on Restart).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Done is closed when the current incarnation of the process has exited.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// Running reports whether the current incarnation has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.Done():
		return false
	default:
		return true
	}
}

// ExitCode is the exit status of the exited process; -1 when it was ended by a signal.
// ok is false while the process is still running.
func (p *Process) ExitCode() (code int, ok bool) {
	if p.Running() {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.ProcessState.ExitCode(), true
}

// ExitErr is what Wait returned for the exited process (nil for exit status 0).
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

func (p *Process) signal(sig syscall.Signal) error {
	if !p.Running() {
		return fmt.Errorf("%s: signal %v: process %d already exited", p.cfg.Name, sig, p.Pid())
	}
	p.mu.Lock()
	proc := p.cmd.Process
	p.mu.Unlock()
	if err := proc.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: signal %v: %w", p.cfg.Name, sig, err)
	}
	return nil
}

// Kill sends SIGKILL and waits for the exit. Killing an exited process is not an error.
func (p *Process) Kill() error {
	if !p.Running() {
		return nil
	}
	if err := p.signal(syscall.SIGKILL); err != nil && p.Running() {
		return err
	}
	<-p.Done()
	return nil
}

// Stop sends SIGTERM and waits up to timeout for the exit; after that it kills the process and
// reports that the graceful stop failed.
func (p *Process) Stop(timeout time.Duration) error {
	if !p.Running() {
		return nil
	}
	if err := p.signal(syscall.SIGTERM); err != nil && p.Running() {
		return err
	}
	// A paused process keeps SIGTERM pending until it runs again.
	_ = p.setPaused(syscall.SIGCONT, false)
	select {
	case <-p.Done():
		return nil
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s: did not exit within %v of SIGTERM; killed", p.cfg.Name, timeout)
	}
}

// Restart stops the process if it still runs and starts it again with the same configuration.
func (p *Process) Restart(stopTimeout time.Duration) error {
	if err := p.Stop(stopTimeout); err != nil {
		return err
	}
	return p.start()
}

// Pause stops the process with SIGSTOP and returns once the kernel reports it stopped (signal
// delivery is asynchronous, and callers rely on the member being frozen when Pause returns).
func (p *Process) Pause() error {
	if err := p.setPaused(syscall.SIGSTOP, true); err != nil {
		return err
	}
	return p.waitState(func(s string) bool { return s == "T" }, "stopped")
}

// Resume continues a paused process with SIGCONT and returns once it is no longer stopped.
func (p *Process) Resume() error {
	if err := p.setPaused(syscall.SIGCONT, false); err != nil {
		return err
	}
	return p.waitState(func(s string) bool { return s != "T" }, "running")
}

// stateWait bounds how long a signalled process may take to change state.
const stateWait = 10 * time.Second

func (p *Process) waitState(ok func(string) bool, want string) error {
	deadline := time.Now().Add(stateWait)
	for {
		st, err := State(p.Pid())
		if err != nil {
			return fmt.Errorf("%s: %w", p.cfg.Name, err)
		}
		if ok(st) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not %s after %v (state %s)", p.cfg.Name, want, stateWait, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// State returns the one-letter scheduler state of pid (R, S, D, T, Z, ...) from /proc/<pid>/stat.
func State(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", fmt.Errorf("state of %d: %w", pid, err)
	}
	// The command name in parentheses may contain spaces; the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	fields := strings.Fields(string(b[i+1:]))
	if i < 0 || len(fields) == 0 {
		return "", fmt.Errorf("state of %d: unexpected /proc/%d/stat %q", pid, pid, b)
	}
	return fields[0], nil
}

// Paused reports whether Pause was called without a Resume since.
func (p *Process) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

func (p *Process) setPaused(sig syscall.Signal, paused bool) error {
	if err := p.signal(sig); err != nil {
		return err
	}
	p.mu.Lock()
	p.paused = paused
	p.mu.Unlock()
	return nil
}

// Logs returns everything the process (and its earlier incarnations) wrote.
func (p *Process) Logs() (string, error) {
	b, err := os.ReadFile(p.cfg.LogPath)
	if err != nil {
		return "", fmt.Errorf("%s: read log: %w", p.cfg.Name, err)
	}
	return string(b), nil
}

// LogTail returns at most the last max bytes of the log, starting at a line boundary.
func (p *Process) LogTail(max int64) string {
	f, err := os.Open(p.cfg.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return fmt.Sprintf("(log read error: %v)", err)
	}
	s := string(b)
	if off > 0 {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = "...\n" + s[i+1:]
		}
	}
	return s
}
