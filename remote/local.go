package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LocalOptions configures the local transport.
type LocalOptions struct {
	// Name labels this machine in messages; "" means "local".
	Name string
	// Sudo runs Cmd.Root commands through `sudo -n` when this process is not
	// root. Without it, everything runs as the current user: the sandbox
	// keeps its members and files in folders that user owns.
	Sudo bool
}

// Local is a Transport on this machine.
type Local struct {
	opts LocalOptions
}

var _ Transport = (*Local)(nil)

// NewLocal returns the local transport.
func NewLocal(opts LocalOptions) *Local { return &Local{opts: opts} }

func (l *Local) String() string {
	if l.opts.Name != "" {
		return l.opts.Name + " (local)"
	}
	return "local"
}

// Close implements Transport; there is nothing to release.
func (l *Local) Close() error { return nil }

// Run implements Transport. Cancelling ctx kills the command's whole process
// group, so that children holding its output open do not keep Run waiting.
func (l *Local) Run(ctx context.Context, c Cmd) error {
	args := []string{"/bin/sh", "-c", c.Command}
	if c.Root && l.opts.Sudo && os.Geteuid() != 0 {
		args = append([]string{"sudo", "-n", "-H", "--"}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	cmd.Stdin = c.Stdin
	cmd.Stdout = c.Stdout
	var tail *tailBuffer
	if c.Stderr != nil {
		cmd.Stderr = c.Stderr
	} else {
		tail = &tailBuffer{max: 4096}
		cmd.Stderr = tail
	}
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %s: %w", l, shorten(c.Command, 80), ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		x := &ExitError{Target: l.String(), Command: shorten(c.Command, 200), Status: ee.ExitCode()}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			x.Status, x.Signal = -1, strings.TrimPrefix(unixSignalName(ws.Signal()), "SIG")
		}
		if tail != nil {
			x.Stderr = tail.String()
		}
		return x
	}
	return fmt.Errorf("%s: %s: %w", l, shorten(c.Command, 80), err)
}

func unixSignalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGKILL:
		return "KILL"
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGSEGV:
		return "SEGV"
	case syscall.SIGABRT:
		return "ABRT"
	case syscall.SIGPIPE:
		return "PIPE"
	}
	return strconv.Itoa(int(s))
}

// Upload implements Transport with the same steps as over SSH: skip when the
// sha256 matches, else write a temporary file next to the destination, check
// its sha256 by reading it back, then rename.
func (l *Local) Upload(ctx context.Context, f File) (UploadResult, error) {
	if err := checkFile(&f); err != nil {
		return UploadResult{}, fmt.Errorf("%s: %w", l, err)
	}
	res := UploadResult{SHA256: f.SHA256}
	st, err := os.Stat(f.Path)
	switch {
	case err == nil && st.IsDir():
		return res, fmt.Errorf("%s: upload %s: the destination is a directory", l, f.Path)
	case err == nil:
		sum, herr := fileSHA256(f.Path)
		if herr != nil {
			return res, fmt.Errorf("%s: upload %s: %w", l, f.Path, herr)
		}
		if sum == f.SHA256 {
			if st.Mode().Perm() == f.Mode && localOwnerMatches(st, f.Owner) {
				if f.Progress != nil {
					f.Progress(f.Size, f.Size)
				}
				return res, nil
			}
			if err := l.setMeta(f.Path, f); err != nil {
				return res, err
			}
			res.Changed = true
			return res, nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return res, fmt.Errorf("%s: upload %s: %w", l, f.Path, err)
	}
	if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
		return res, fmt.Errorf("%s: upload %s: %w", l, f.Path, err)
	}
	tmp := tmpName(f.Path)
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return res, fmt.Errorf("%s: upload %s: %w", l, f.Path, err)
	}
	pr := &progressReader{ctx: ctx, r: io.NewSectionReader(f.Content, 0, f.Size), total: f.Size, fn: f.Progress}
	n, err := io.Copy(out, pr)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	res.Sent = n
	if err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("%s: upload %s: %w", l, f.Path, err)
	}
	res.Changed = true
	sum, err := fileSHA256(tmp)
	if err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("%s: upload %s: %w", l, f.Path, err)
	}
	if sum != f.SHA256 {
		os.Remove(tmp)
		return res, &ChecksumError{Target: l.String(), Path: f.Path, Want: f.SHA256, Got: sum}
	}
	if err := l.setMeta(tmp, f); err != nil {
		os.Remove(tmp)
		return res, err
	}
	if err := os.Rename(tmp, f.Path); err != nil {
		os.Remove(tmp)
		return res, fmt.Errorf("%s: upload %s: %w", l, f.Path, err)
	}
	return res, nil
}

func (l *Local) setMeta(p string, f File) error {
	if err := os.Chmod(p, f.Mode); err != nil {
		return fmt.Errorf("%s: upload %s: %w", l, f.Path, err)
	}
	if f.Owner == "" {
		return nil
	}
	uid, gid, err := lookupOwner(f.Owner)
	if err != nil {
		return fmt.Errorf("%s: upload %s: %w", l, f.Path, err)
	}
	if err := os.Chown(p, uid, gid); err != nil {
		return fmt.Errorf("%s: upload %s: %w", l, f.Path, err)
	}
	return nil
}

func lookupOwner(owner string) (int, int, error) {
	name, group, hasGroup := strings.Cut(owner, ":")
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid := -1
	if hasGroup {
		g, err := user.LookupGroup(group)
		if err != nil {
			return 0, 0, err
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	return uid, gid, nil
}

func localOwnerMatches(st os.FileInfo, owner string) bool {
	if owner == "" {
		return true
	}
	uid, gid, err := lookupOwner(owner)
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return int(sys.Uid) == uid && (gid < 0 || int(sys.Gid) == gid)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ReadFile implements Transport.
func (l *Local) ReadFile(_ context.Context, p string) ([]byte, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}
	return b, nil
}

// Dial implements Transport.
func (l *Local) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}
	return c, nil
}
