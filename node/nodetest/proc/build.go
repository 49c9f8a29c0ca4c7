package proc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ModulePath is the module this harness builds from; RepoRoot looks for its go.mod.
const ModulePath = "etcdctl-wizard"

// RepoRoot walks up from the working directory to the go.mod of module etcdctl-wizard.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(b), []byte("module "+ModulePath+"\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find repo root: no go.mod of module %s above the working directory", ModulePath)
		}
		dir = parent
	}
}

// UpstreamDir is where the upstream reference binaries are cached: $ETCDWIZ_UPSTREAM_DIR, or
// $HOME/.cache/etcdctl-wizard/upstream.
func UpstreamDir() (string, error) {
	if d := os.Getenv("ETCDWIZ_UPSTREAM_DIR"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("upstream cache dir: %w (set ETCDWIZ_UPSTREAM_DIR)", err)
	}
	return filepath.Join(home, ".cache", "etcdctl-wizard", "upstream"), nil
}

// EnsureUpstream builds upstream etcd and etcdctl with testdata/upstream/build.sh unless they
// are cached, and returns their paths. A file lock next to the cache dir keeps test processes
// running in parallel from building at the same time.
func EnsureUpstream(ctx context.Context, repoRoot string) (etcd, etcdctl string, err error) {
	dir, err := UpstreamDir()
	if err != nil {
		return "", "", err
	}
	etcd, etcdctl = filepath.Join(dir, "etcd"), filepath.Join(dir, "etcdctl")
	if executable(etcd) && executable(etcdctl) {
		return etcd, etcdctl, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", "", fmt.Errorf("build upstream: %w", err)
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return "", "", fmt.Errorf("build upstream: %w", err)
	}
	defer unlock()
	script := filepath.Join(repoRoot, "testdata", "upstream", "build.sh")
	cmd := exec.CommandContext(ctx, "bash", script, dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("build upstream etcd/etcdctl with %s: %w\n%s", script, err, out)
	}
	if !executable(etcd) || !executable(etcdctl) {
		return "", "", fmt.Errorf("build upstream: %s finished but %s or %s is missing", script, etcd, etcdctl)
	}
	return etcd, etcdctl, nil
}

func executable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// lockFile takes an exclusive flock on path, polling so that ctx can end the wait.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// NodeBinDir is where BuildNode puts binaries: $ETCDWIZ_NODE_DIR, or
// $HOME/.cache/etcdctl-wizard/node.
func NodeBinDir() (string, error) {
	if d := os.Getenv("ETCDWIZ_NODE_DIR"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("node binary dir: %w (set ETCDWIZ_NODE_DIR)", err)
	}
	return filepath.Join(home, ".cache", "etcdctl-wizard", "node"), nil
}

// BuildNode runs `go build ./cmd/etcd-node` in repoRoot and returns the binary's path.
// The file is named after its content hash: parallel test processes built from different
// sources each run their own build, and a rename never swaps a binary under a running test.
func BuildNode(ctx context.Context, repoRoot string) (string, error) {
	dir, err := NodeBinDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build etcd-node: %w", err)
	}
	// go build refuses to overwrite a file that is not an object file, so build into a fresh
	// folder rather than onto a pre-created temp file.
	tmpDir, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("build etcd-node: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	built := filepath.Join(tmpDir, "etcd-node")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", built, "./cmd/etcd-node")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/etcd-node in %s: %w\n%s", repoRoot, err, out)
	}
	sum, err := fileSHA256(built)
	if err != nil {
		return "", fmt.Errorf("build etcd-node: %w", err)
	}
	final := filepath.Join(dir, "etcd-node-"+sum[:16])
	if err := os.Rename(built, final); err != nil {
		return "", fmt.Errorf("build etcd-node: %w", err)
	}
	pruneOld(dir, final, 7*24*time.Hour)
	return final, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
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

// pruneOld removes binaries from older builds so the cache does not grow without bound.
// A week is far longer than any test run that might still execute one.
func pruneOld(dir, keep string, age time.Duration) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil || path == keep || time.Since(info.ModTime()) < age {
			continue
		}
		os.Remove(path)
	}
}
