package proc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Ports are taken below the kernel's ephemeral range so that outgoing connections (which take
// their local port from that range) never occupy a port between reservation and the member's
// bind. Parallel test processes coordinate through one flock'ed file per port: the lock lives as
// long as the open file, so a crashed process frees its ports automatically.
const (
	lowestPort      = 10000
	fallbackHighest = 32767
	maxAttempts     = 2000
)

// Reservation holds loopback ports for its owner until Release.
type Reservation struct {
	Ports []int

	mu    sync.Mutex
	locks []*os.File
}

// ReservePorts reserves n distinct TCP ports on 127.0.0.1 that were free when reserved and
// that no other reservation on this machine holds.
func ReservePorts(n int) (*Reservation, error) {
	if n <= 0 {
		return nil, fmt.Errorf("reserve ports: count must be positive, got %d", n)
	}
	dir := filepath.Join(os.TempDir(), "etcdctl-wizard-ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("reserve ports: %w", err)
	}
	highest := ephemeralLow() - 1
	r := &Reservation{}
	for attempt := 0; len(r.Ports) < n; attempt++ {
		if attempt >= maxAttempts {
			r.Release()
			return nil, fmt.Errorf("reserve ports: no free port in %d..%d after %d attempts", lowestPort, highest, maxAttempts)
		}
		port := lowestPort + rand.IntN(highest-lowestPort+1)
		f, ok, err := lockPort(dir, port)
		if err != nil {
			r.Release()
			return nil, err
		}
		if !ok {
			continue
		}
		if !bindable(port) {
			f.Close()
			continue
		}
		r.Ports = append(r.Ports, port)
		r.locks = append(r.locks, f)
	}
	return r, nil
}

// Release gives the ports back. Safe to call more than once.
func (r *Reservation) Release() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.locks {
		f.Close()
	}
	r.locks = nil
}

func lockPort(dir string, port int) (*os.File, bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("reserve ports: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("reserve ports: lock %d: %w", port, err)
	}
	return f, true, nil
}

func bindable(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// ephemeralLow reads the start of the kernel's ephemeral port range; the documented Linux
// default is used when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallbackHighest + 1
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return fallbackHighest + 1
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil || low <= lowestPort+100 {
		return fallbackHighest + 1
	}
	return low
}

// ReserveOffsets reserves, for one base port, base+off for every offset:
// layouts with fixed gaps between ports (the sandbox puts member i at
// base+100*i and base+100*i+1) need them together. It returns the base.
func ReserveOffsets(offsets []int) (*Reservation, int, error) {
	maxOff := 0
	for _, off := range offsets {
		if off < 0 {
			return nil, 0, fmt.Errorf("reserve ports: negative offset %d", off)
		}
		maxOff = max(maxOff, off)
	}
	dir := filepath.Join(os.TempDir(), "etcdctl-wizard-ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, fmt.Errorf("reserve ports: %w", err)
	}
	highest := ephemeralLow() - 1 - maxOff
	if highest <= lowestPort {
		return nil, 0, fmt.Errorf("reserve ports: offsets up to %d do not fit below the ephemeral range", maxOff)
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		base := lowestPort + rand.IntN(highest-lowestPort+1)
		r := &Reservation{}
		ok := true
		for _, off := range offsets {
			f, locked, err := lockPort(dir, base+off)
			if err != nil {
				r.Release()
				return nil, 0, err
			}
			if !locked || !bindable(base+off) {
				if f != nil {
					f.Close()
				}
				ok = false
				break
			}
			r.Ports = append(r.Ports, base+off)
			r.locks = append(r.locks, f)
		}
		if ok {
			return r, base, nil
		}
		r.Release()
	}
	return nil, 0, fmt.Errorf("reserve ports: no base with offsets %v free after %d attempts", offsets, maxAttempts)
}
