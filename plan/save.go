package plan

import (
	"bytes"
	"fmt"
	"os"

	"go.yaml.in/yaml/v3"

	"etcdctl-wizard/node/fileutil"
)

// Marshal renders the plan as YAML, exactly as written (defaults are not
// filled in), so that Load(Marshal(p)) gives p back.
func Marshal(p *Plan) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encoding the plan: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding the plan: %w", err)
	}
	return b.Bytes(), nil
}

// Save writes the plan to path atomically: a temporary file in the same
// folder, synced, then renamed over path, so a crash never leaves half a plan.
// When path holds a plan already, its comments are kept (keepComments); a
// file whose comments cannot be carried over is rewritten without them.
func Save(path string, p *Plan) error {
	data, err := Marshal(p)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil {
		if merged, err := keepComments(old, data); err == nil {
			data = merged
		}
	}
	return fileutil.WriteFileAtomic(path, data, 0o644)
}
