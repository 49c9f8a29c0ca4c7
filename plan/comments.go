package plan

import (
	"bytes"
	"errors"

	"go.yaml.in/yaml/v3"
)

// keepComments returns the plan rendered in rendered with the comments of
// the plan file old carried over: each field's comments go to the same
// field, each member's to the member with the same name. A field or member
// that is gone takes its comments with it. Operators annotate plans, and a
// rewrite by the wizard (member add or remove, a save from the review
// screen) must not throw their notes away.
func keepComments(old, rendered []byte) ([]byte, error) {
	var o, n yaml.Node
	if err := yaml.Unmarshal(old, &o); err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(rendered, &n); err != nil {
		return nil, err
	}
	copyComments(&o, &n)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	// Comments change no value: the result must read back as the plan.
	var back, want Plan
	if err := yaml.Unmarshal(b.Bytes(), &back); err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(rendered, &want); err != nil {
		return nil, err
	}
	bb, _ := Marshal(&back)
	wb, _ := Marshal(&want)
	if !bytes.Equal(bb, wb) {
		return nil, errors.New("comments changed the plan")
	}
	return b.Bytes(), nil
}

// copyComments copies o's comments onto n where n has none, recursing into
// matching mapping values and sequence items.
func copyComments(o, n *yaml.Node) {
	if o == nil || n == nil || o.Kind != n.Kind {
		return
	}
	if n.HeadComment == "" {
		n.HeadComment = o.HeadComment
	}
	if n.LineComment == "" {
		n.LineComment = o.LineComment
	}
	if n.FootComment == "" {
		n.FootComment = o.FootComment
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(o.Content) > 0 && len(n.Content) > 0 {
			copyComments(o.Content[0], n.Content[0])
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if j := mappingKey(o, n.Content[i].Value); j >= 0 {
				copyComments(o.Content[j], n.Content[i])
				copyComments(o.Content[j+1], n.Content[i+1])
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			copyComments(sequenceMatch(o, item, i), item)
		}
	}
}

// mappingKey is the index of key's key node in the mapping m, or -1.
func mappingKey(m *yaml.Node, key string) int {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return i
		}
	}
	return -1
}

// sequenceMatch finds item's counterpart in the sequence s: the mapping
// with the same "name" (members), else the item at the same index.
func sequenceMatch(s, item *yaml.Node, i int) *yaml.Node {
	if item.Kind == yaml.MappingNode {
		if k := mappingKey(item, "name"); k >= 0 {
			for _, c := range s.Content {
				if j := mappingKey(c, "name"); j >= 0 && c.Content[j+1].Value == item.Content[k+1].Value {
					return c
				}
			}
			return nil
		}
	}
	if i < len(s.Content) {
		return s.Content[i]
	}
	return nil
}
