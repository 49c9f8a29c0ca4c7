package plan

import (
	"bytes"
	"etcdctl-wizard/node/fileutil"
	"fmt"

	"go.yaml.in/yaml/v3"
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
func Save(path string, p *Plan) error {
	data, err := Marshal(p)
	if err != nil {
		return err
	}
	return fileutil.WriteFileAtomic(path, data, 0o644)
}
