package executor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Event states.
const (
	StateRunning  = "running"  // a step began
	StateProgress = "progress" // bytes sent of an upload
	StateDone     = "done"     // a step finished and changed something
	StateSkipped  = "skipped"  // a step was already done: nothing changed
	StateFailed   = "failed"   // a step failed; Err says why
	StateWarning  = "warning"  // a finding that does not stop the run
	StateInfo     = "info"     // something worth knowing
)

// Progress is an upload's progress.
type Progress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

// Event is one thing that happened during apply or reset (DESIGN.md §3).
// Host is the member name, "" for the cluster. Events never carry secrets:
// file contents are not in them.
type Event struct {
	Host     string    `json:"host,omitempty"`
	Step     string    `json:"step"`
	State    string    `json:"state"`
	Progress *Progress `json:"progress,omitempty"`
	Message  string    `json:"message,omitempty"`
	Err      string    `json:"error,omitempty"`
	Time     time.Time `json:"time"`
}

// emitter serialises events to the consumer.
type emitter struct {
	mu sync.Mutex
	fn func(Event)
}

func (e *emitter) emit(ev Event) {
	if e == nil || e.fn == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fn(ev)
}

// JSONLines returns a consumer writing one JSON event per line.
func JSONLines(w io.Writer) func(Event) {
	enc := json.NewEncoder(w)
	return func(ev Event) { _ = enc.Encode(ev) }
}

// LinePrinter returns a consumer writing plain lines, for terminals and
// logs. Upload progress is printed in 25% steps.
func LinePrinter(w io.Writer) func(Event) {
	last := map[string]int64{}
	return func(ev Event) {
		who := ev.Host
		if who == "" {
			who = "cluster"
		}
		switch ev.State {
		case StateProgress:
			if ev.Progress == nil || ev.Progress.Total == 0 {
				return
			}
			q := ev.Progress.Done * 4 / ev.Progress.Total
			key := ev.Host + "/" + ev.Step
			if q == last[key] || q == 4 {
				return
			}
			last[key] = q
			fmt.Fprintf(w, "%s %-8s %-15s %3d%% of %s\n", ev.Time.Format("15:04:05"), who, ev.Step, q*25, size(ev.Progress.Total))
			return
		case StateRunning:
			return
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s %-8s %-15s %s", ev.Time.Format("15:04:05"), who, ev.Step, ev.State)
		if ev.Message != "" {
			b.WriteString(": " + ev.Message)
		}
		if ev.Err != "" {
			b.WriteString(": " + ev.Err)
		}
		fmt.Fprintln(w, b.String())
	}
}

func size(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	if n >= 1<<10 {
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
