package executor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Journal records an apply's progress on this machine, so that an
// interrupted apply is resumed knowingly: steps are idempotent either way,
// but a member whose files changed while it ran must still be restarted
// when the run that changed them died before the restart.
type Journal struct {
	Cluster   string                  `json:"cluster"`
	ClusterID string                  `json:"clusterID"`
	Started   time.Time               `json:"started"`
	Updated   time.Time               `json:"updated"`
	Finished  bool                    `json:"finished"`
	Hosts     map[string]*JournalHost `json:"hosts"`

	path string
	mu   sync.Mutex
}

// JournalHost is one host's record.
type JournalHost struct {
	Steps map[string]time.Time `json:"steps"` // completed steps of the last run
	// RestartPending: files changed under a running member that was not
	// restarted yet.
	RestartPending bool   `json:"restartPending,omitempty"`
	LastStep       string `json:"lastStep,omitempty"`
	Complete       bool   `json:"complete,omitempty"`
}

// JournalPath is the journal's place under the state dir.
func JournalPath(stateDir, cluster string) string {
	return filepath.Join(stateDir, cluster, "journal.json")
}

// LoadJournal reads the journal, or starts an empty one.
func LoadJournal(path string) (*Journal, error) {
	j := &Journal{path: path, Hosts: map[string]*JournalHost{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := json.Unmarshal(b, j); err != nil {
		return nil, fmt.Errorf("journal %s is damaged (%v): remove it to start afresh", path, err)
	}
	if j.Hosts == nil {
		j.Hosts = map[string]*JournalHost{}
	}
	return j, nil
}

func (j *Journal) host(name string) *JournalHost {
	h := j.Hosts[name]
	if h == nil {
		h = &JournalHost{}
		j.Hosts[name] = h
	}
	if h.Steps == nil {
		h.Steps = map[string]time.Time{}
	}
	return h
}

// update changes the journal under its lock and saves it.
func (j *Journal) update(fn func(j *Journal)) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	fn(j)
	j.Updated = time.Now().UTC()
	return j.save()
}

func (j *Journal) save() error {
	if j.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o700); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	tmp := j.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func removeJournal(p string) error {
	err := os.Remove(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
