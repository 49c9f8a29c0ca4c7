package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/pkg/sftp"
)

// hashFn prints the sha256 of file $1 first on its line. openssl when the
// host has it: coreutils' sha256sum does not use the CPU's SHA instructions
// and is 3x slower on a large binary.
const hashFn = `ewz_hash() {
  if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r <"$1"; else sha256sum <"$1"; fi
}
`

// stateScript prints what is at $1: "dir", "absent" (after creating the
// parent folders, which the upload needs next) or "file MODE USER:GROUP SHA",
// where SHA is "-" when the size differs from $2 (no need to hash then).
const stateScript = hashFn + `d=$1
if [ -d "$d" ]; then echo dir; exit 0; fi
if [ -f "$d" ]; then
  set -- $(stat -c '%a %U:%G %s' -- "$d") "$2"
  sum=-
  if [ "$3" = "$4" ]; then s=$(ewz_hash "$d") || exit 1; sum=${s%% *}; fi
  echo "file $1 $2 $sum"
  exit 0
fi
mkdir -p -- "$(dirname -- "$d")" && echo absent`

// finishScript moves a transferred file into place once its sha256 matches:
// $1 the transferred copy, $2 the temporary name next to the destination,
// $3 the destination, $4 mode, $5 owner, $6 expected sha256.
const finishScript = hashFn + `set -e
src=$1 tmp=$2 dst=$3 mode=$4 owner=$5 want=$6
umask 077
if [ "$src" != "$tmp" ]; then cp -- "$src" "$tmp"; rm -f -- "$src"; fi
s=$(ewz_hash "$tmp")
got=${s%% *}
if [ "$got" != "$want" ]; then rm -f -- "$tmp"; echo "mismatch $got"; exit 0; fi
chmod "$mode" "$tmp"
if [ -n "$owner" ]; then chown "$owner" "$tmp"; fi
mv -f "$tmp" "$dst"
echo ok`

// fixScript sets mode $2 and owner $3 of $1.
const fixScript = `chmod "$2" "$1" && if [ -n "$3" ]; then chown "$3" "$1"; fi`

// scriptCmd is a command line running script with positional arguments.
func scriptCmd(script string, args ...string) string {
	var b strings.Builder
	b.WriteString("set --")
	for _, a := range args {
		b.WriteByte(' ')
		b.WriteString(Quote(a))
	}
	b.WriteByte('\n')
	b.WriteString(script)
	return b.String()
}

// remoteState is what the host has at an upload's destination.
type remoteState struct {
	kind  string // "absent", "dir" or "file"
	mode  string // octal, e.g. "644"
	owner string // user:group
	sum   string
}

func parseState(out string) (remoteState, error) {
	f := strings.Fields(out)
	switch {
	case len(f) == 1 && (f[0] == "absent" || f[0] == "dir"):
		return remoteState{kind: f[0]}, nil
	case len(f) == 4 && f[0] == "file":
		return remoteState{kind: "file", mode: f[1], owner: f[2], sum: f[3]}, nil
	}
	return remoteState{}, fmt.Errorf("unexpected answer about the destination: %q", shorten(out, 200))
}

// sameMeta reports whether a file with st already has f's mode and owner.
func sameMeta(st remoteState, f File) bool {
	if st.mode != strconv.FormatUint(uint64(f.Mode.Perm()), 8) {
		return false
	}
	if f.Owner == "" {
		return true
	}
	if strings.Contains(f.Owner, ":") {
		return st.owner == f.Owner
	}
	u, _, _ := strings.Cut(st.owner, ":")
	return u == f.Owner
}

// tmpName is the temporary name next to dst. It is fixed per destination so
// that an upload cut short leaves one stale file that the next one replaces.
func tmpName(dst string) string {
	return path.Join(path.Dir(dst), "."+path.Base(dst)+".etcdctl-wizard-upload")
}

// Upload implements Transport.
func (s *SSH) Upload(ctx context.Context, f File) (UploadResult, error) {
	if err := checkFile(&f); err != nil {
		return UploadResult{}, fmt.Errorf("%s: %w", s, err)
	}
	res := UploadResult{SHA256: f.SHA256}
	mode := strconv.FormatUint(uint64(f.Mode.Perm()), 8)
	out, err := Output(ctx, s, Cmd{Root: true, Command: scriptCmd(stateScript, f.Path, strconv.FormatInt(f.Size, 10))})
	if err != nil {
		return res, fmt.Errorf("upload %s: %w", f.Path, err)
	}
	st, err := parseState(string(out))
	if err != nil {
		return res, fmt.Errorf("%s: upload %s: %w", s, f.Path, err)
	}
	switch {
	case st.kind == "dir":
		return res, fmt.Errorf("%s: upload %s: the destination is a directory", s, f.Path)
	case st.kind == "file" && st.sum == f.SHA256:
		if sameMeta(st, f) {
			if f.Progress != nil {
				f.Progress(f.Size, f.Size)
			}
			return res, nil
		}
		if err := s.Run(ctx, Cmd{Root: true, Command: scriptCmd(fixScript, f.Path, mode, f.Owner)}); err != nil {
			return res, fmt.Errorf("upload %s: %w", f.Path, err)
		}
		res.Changed = true
		return res, nil
	}

	priv, _, err := s.privilege(ctx)
	if err != nil {
		return res, err
	}
	conn, err := s.connection(ctx)
	if err != nil {
		return res, err
	}
	tmp := tmpName(f.Path)
	src, sent, err := s.transfer(ctx, conn, f, tmp, priv != privRoot)
	res.Sent = sent
	if err != nil {
		return res, err
	}
	res.Changed = true
	out, err = Output(ctx, s, Cmd{Root: true, Command: scriptCmd(finishScript, src, tmp, f.Path, mode, f.Owner, f.SHA256)})
	if err != nil {
		return res, fmt.Errorf("upload %s: %w", f.Path, err)
	}
	switch ans := strings.Fields(string(out)); {
	case len(ans) == 1 && ans[0] == "ok":
		return res, nil
	case len(ans) == 2 && ans[0] == "mismatch":
		return res, &ChecksumError{Target: s.String(), Path: f.Path, Want: f.SHA256, Got: ans[1]}
	default:
		return res, fmt.Errorf("%s: upload %s: unexpected answer %q", s, f.Path, shorten(string(out), 200))
	}
}

// transfer copies f's content over SFTP to tmp, or, when the login user is
// not root (staged), to a private folder in its home that finishScript then
// copies from as root. It returns where the content went.
func (s *SSH) transfer(ctx context.Context, conn *sshConn, f File, tmp string, staged bool) (string, int64, error) {
	// One SFTP session per upload: cancelling it (closing the session) stops
	// this upload without touching others on the same connection.
	sc, err := sftp.NewClient(conn.client, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		return "", 0, s.opErr(conn, "starting sftp", err)
	}
	defer sc.Close()
	stop := context.AfterFunc(ctx, func() { sc.Close() })
	defer stop()
	fail := func(what string, err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: upload %s: %w", s, f.Path, ctx.Err())
		}
		return s.opErr(conn, fmt.Sprintf("upload %s: %s", f.Path, what), err)
	}
	dst := tmp
	if staged {
		home, err := sc.Getwd()
		if err != nil {
			return "", 0, fail("finding the home folder", err)
		}
		dir := path.Join(home, ".cache", "etcdctl-wizard", "uploads")
		if err := sc.MkdirAll(dir); err != nil {
			return "", 0, fail("creating "+dir, err)
		}
		if err := sc.Chmod(dir, 0o700); err != nil {
			return "", 0, fail("chmod "+dir, err)
		}
		dst = path.Join(dir, f.SHA256[:16]+"-"+path.Base(f.Path))
	}
	fh, err := sc.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return "", 0, fail("creating "+dst, err)
	}
	// Private until finishScript sets the final mode: the content may be a key.
	if err := fh.Chmod(0o600); err != nil {
		fh.Close()
		return "", 0, fail("chmod "+dst, err)
	}
	pr := &progressReader{ctx: ctx, r: io.NewSectionReader(f.Content, 0, f.Size), total: f.Size, fn: f.Progress}
	n, err := fh.ReadFrom(pr)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != f.Size {
		err = fmt.Errorf("sent %d of %d bytes", n, f.Size)
	}
	if err != nil {
		if !conn.isDead() && ctx.Err() == nil {
			sc.Remove(dst)
		}
		return "", n, fail("writing "+dst, err)
	}
	return dst, n, nil
}

// readScript prints file $1, or exits 44 when it does not exist.
const readScript = `[ -e "$1" ] || [ -L "$1" ] || exit 44
exec cat -- "$1"`

// ReadFile implements Transport.
func (s *SSH) ReadFile(ctx context.Context, p string) ([]byte, error) {
	var out bytes.Buffer
	err := s.Run(ctx, Cmd{Root: true, Command: scriptCmd(readScript, p), Stdout: &out})
	var ee *ExitError
	if errors.As(err, &ee) && ee.Status == 44 {
		return nil, fmt.Errorf("%s: %s: %w", s, p, fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
