package remote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalRun(t *testing.T) {
	l := NewLocal(LocalOptions{Name: "sandbox"})
	ctx := testCtx(t)
	out, err := Output(ctx, l, Cmd{Command: "tr a-z A-Z", Stdin: strings.NewReader("abc")})
	if err != nil || string(out) != "ABC" {
		t.Fatalf("run: %q %v", out, err)
	}
	err = l.Run(ctx, Cmd{Command: "echo bad >&2; exit 7"})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Status != 7 || !strings.Contains(ee.Stderr, "bad") || ee.Target != "sandbox (local)" {
		t.Fatalf("exit 7: %+v %v", ee, err)
	}
	err = l.Run(ctx, Cmd{Command: "kill -KILL $$"})
	if !errors.As(err, &ee) || ee.Signal != "KILL" || ee.Status != -1 {
		t.Fatalf("killed: %+v %v", ee, err)
	}
}

// Cancelling kills the whole process group: a background child holding the
// output open does not keep Run waiting.
func TestLocalRunCancel(t *testing.T) {
	l := NewLocal(LocalOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- l.Run(ctx, Cmd{Command: "sleep 60 & echo started; wait", Stdout: pw})
		pw.Close()
	}()
	buf := make([]byte, 8)
	if _, err := io.ReadFull(pr, buf); err != nil || string(buf) != "started\n" {
		t.Fatalf("%q %v", buf, err)
	}
	go io.Copy(io.Discard, pr)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestLocalUpload(t *testing.T) {
	l := NewLocal(LocalOptions{})
	ctx := testCtx(t)
	dst := filepath.Join(t.TempDir(), "a", "b", "file")
	content := randomBytes(t, 1<<20)
	var last int64
	file := BytesFile(dst, 0o600, content)
	file.Progress = func(done, _ int64) { last = done }
	res, err := l.Upload(ctx, file)
	if err != nil || !res.Changed || res.Sent != int64(len(content)) || last != int64(len(content)) {
		t.Fatalf("upload: %+v %v (progress %d)", res, err, last)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, content) {
		t.Fatal("content differs")
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	res, err = l.Upload(ctx, BytesFile(dst, 0o600, content))
	if err != nil || res.Changed || res.Sent != 0 {
		t.Errorf("same again: %+v %v", res, err)
	}
	res, err = l.Upload(ctx, BytesFile(dst, 0o644, content))
	if err != nil || !res.Changed || res.Sent != 0 {
		t.Errorf("mode only: %+v %v", res, err)
	}
	bad := BytesFile(dst, 0o644, []byte("other"))
	bad.SHA256 = sha([]byte("not it"))
	var ce *ChecksumError
	if _, err := l.Upload(ctx, bad); !errors.As(err, &ce) {
		t.Fatalf("mismatch: %v", err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, content) {
		t.Error("destination replaced after a mismatch")
	}
	assertNoTemp(t, filepath.Dir(dst))

	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, []byte("#!/bin/sh\n"), 0o755)
	of, closeFn, err := OpenFile(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if _, err := l.Upload(ctx, of); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(dst); st.Mode().Perm() != 0o755 {
		t.Errorf("mode from the source file: %v", st.Mode())
	}
}

func TestLocalReadFileAndDial(t *testing.T) {
	l := NewLocal(LocalOptions{})
	ctx := testCtx(t)
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("data"), 0o600)
	if b, err := l.ReadFile(ctx, p); err != nil || string(b) != "data" {
		t.Fatalf("read: %q %v", b, err)
	}
	if _, err := l.ReadFile(ctx, p+"x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.WriteString(c, "hi")
			c.Close()
		}
	}()
	c, err := l.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "hi" {
		t.Errorf("dial read %q", b)
	}
}
