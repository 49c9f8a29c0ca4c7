package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strings"
	"sync"
)

// Transport reaches one host. It is safe for concurrent use.
type Transport interface {
	// String names the host in messages, e.g. "infra0 (root@10.0.1.10:22)".
	String() string
	// Run executes c and returns when the command has exited and its output
	// has been copied. A non-zero exit is an *ExitError.
	Run(ctx context.Context, c Cmd) error
	// Upload writes f on the host as root (see the package doc).
	Upload(ctx context.Context, f File) (UploadResult, error)
	// ReadFile reads a file on the host as root. A missing file gives an error
	// matching fs.ErrNotExist.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// Dial connects from the host to addr (network "tcp"), e.g. a member's
	// client URL; it fits grpc and clientv3 dialer hooks.
	Dial(ctx context.Context, network, addr string) (net.Conn, error)
	// Close ends the connection; operations after Close fail.
	Close() error
}

// Cmd is one command for Run.
type Cmd struct {
	// Command is a shell command line (sh syntax). Quote arguments with Quote.
	// It must not carry secrets: pass them on Stdin.
	Command string
	// Stdin is copied to the command until EOF; nil means empty.
	Stdin io.Reader
	// Stdout and Stderr receive the output as it arrives; nil discards stdout
	// and keeps the last few KiB of stderr for the *ExitError.
	Stdout, Stderr io.Writer
	// Root runs the command as root (through sudo when the login user is not).
	Root bool
}

// ExitError is a command that ran and failed.
type ExitError struct {
	Target  string // Transport.String()
	Command string // the command line, shortened
	Status  int    // exit status; -1 when killed by a signal
	Signal  string // the signal name when killed by one
	Stderr  string // tail of stderr when Cmd.Stderr was nil
}

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: command %q ", e.Target, e.Command)
	if e.Signal != "" {
		fmt.Fprintf(&b, "killed by signal %s", e.Signal)
	} else {
		fmt.Fprintf(&b, "exited with status %d", e.Status)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		fmt.Fprintf(&b, ": %s", s)
	}
	return b.String()
}

// ErrConnLost matches errors of operations that failed because the connection
// to the host died (keepalives unanswered, reset, closed). The next operation
// on the same Transport dials again.
var ErrConnLost = errors.New("connection to host lost")

// File is one file for Upload.
type File struct {
	// Path is the absolute destination path on the host. Missing parent
	// folders are created with mode 0755; create others beforehand.
	Path string
	// Mode is the file mode; 0 means 0644.
	Mode os.FileMode
	// Owner is "user:group" (or "user") for chown; empty leaves the owner to
	// whoever writes the file (root, or the local user for Local).
	Owner string
	// Content is read from offset 0 to Size, possibly concurrently and more
	// than once.
	Content io.ReaderAt
	Size    int64
	// SHA256 is the hex sha256 of the content; computed when empty.
	SHA256 string
	// Progress, when set, is called as bytes are sent (from one goroutine).
	Progress func(done, total int64)
}

// BytesFile returns a File with the given content.
func BytesFile(path string, mode os.FileMode, content []byte) File {
	return File{Path: path, Mode: mode, Content: bytes.NewReader(content), Size: int64(len(content))}
}

// OpenFile returns a File whose content is the local file src, and the
// function that closes it. The mode defaults to the local file's permission bits.
func OpenFile(src, dst string) (File, func() error, error) {
	f, err := os.Open(src)
	if err != nil {
		return File{}, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return File{}, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return File{}, nil, fmt.Errorf("%s is not a regular file", src)
	}
	return File{Path: dst, Mode: st.Mode().Perm(), Content: f, Size: st.Size()}, f.Close, nil
}

// UploadResult tells what Upload did.
type UploadResult struct {
	// Changed is false when the host already had the file as asked.
	Changed bool
	// Sent is the number of content bytes transferred (0 when skipped or
	// when only the mode or owner was fixed).
	Sent int64
	// SHA256 is the hex sha256 of the content now on the host.
	SHA256 string
}

// ChecksumError is an upload whose copy on the host did not hash to the
// content's sha256. The destination was left untouched.
type ChecksumError struct {
	Target, Path string
	Want, Got    string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: upload of %s: sha256 mismatch: expected %s, the host has %s (the destination was not replaced)",
		e.Target, e.Path, e.Want, e.Got)
}

// Quote returns s as one sh word.
func Quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Output runs c on t and returns its stdout.
func Output(ctx context.Context, t Transport, c Cmd) ([]byte, error) {
	var out bytes.Buffer
	c.Stdout = &out
	err := t.Run(ctx, c)
	return out.Bytes(), err
}

// checkFile validates f and fills in the defaults.
func checkFile(f *File) error {
	if f.Path == "" || !path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || f.Path == "/" {
		return fmt.Errorf("upload: destination %q must be a clean absolute file path", f.Path)
	}
	if f.Content == nil || f.Size < 0 {
		return fmt.Errorf("upload %s: no content", f.Path)
	}
	if f.Mode == 0 {
		f.Mode = 0o644
	}
	if f.Mode&^os.ModePerm != 0 {
		return fmt.Errorf("upload %s: mode %v has more than permission bits", f.Path, f.Mode)
	}
	if strings.ContainsAny(f.Owner, " \t\n'\"\\$`;&|") {
		return fmt.Errorf("upload %s: bad owner %q", f.Path, f.Owner)
	}
	if f.SHA256 == "" {
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(f.Content, 0, f.Size)); err != nil {
			return fmt.Errorf("upload %s: reading content: %w", f.Path, err)
		}
		f.SHA256 = hex.EncodeToString(h.Sum(nil))
	}
	f.SHA256 = strings.ToLower(f.SHA256)
	if len(f.SHA256) != 64 || strings.Trim(f.SHA256, "0123456789abcdef") != "" {
		return fmt.Errorf("upload %s: SHA256 %q is not 64 hex digits", f.Path, f.SHA256)
	}
	return nil
}

// progressReader feeds an upload: it reports progress, stops when ctx ends,
// and has Size so that sftp uses concurrent writes.
type progressReader struct {
	ctx   context.Context
	r     *io.SectionReader
	done  int64
	total int64
	fn    func(done, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.r.Read(b)
	p.done += int64(n)
	if n > 0 && p.fn != nil {
		p.fn(p.done, p.total)
	}
	return n, err
}

func (p *progressReader) Size() int64 { return p.total }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
