package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxPlanSize bounds what Load reads: a plan is a few kilobytes, and a bound
// keeps a wrong file (a binary, a log) from being parsed at length.
const MaxPlanSize = 4 << 20

// Load error codes.
const (
	CodeFileUnreadable = "file-unreadable"
	CodeFileTooLarge   = "file-too-large"
	CodeEmptyFile      = "empty-file"
	CodeYAMLSyntax     = "yaml-syntax"
	CodeMultipleDocs   = "multiple-documents"
	CodeUnknownField   = "unknown-field"
	CodeDuplicateField = "duplicate-field"
	CodeWrongType      = "wrong-type"
	CodeAPIVersion     = "api-version"
	CodeKind           = "kind"
)

// LoadError is a plan file that cannot be read as a v1 plan. It names the
// file, the position and the field, and says what to do.
type LoadError struct {
	Code   string
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	Field  string
	Msg    string
	Hint   string
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

// Finding turns the load error into a validation finding, so that scripts
// see one format whatever went wrong.
func (e *LoadError) Finding() Finding {
	return Finding{Code: e.Code, Severity: SeverityError, Field: e.Field, Message: e.Msg, Hint: e.Hint,
		File: e.File, Line: e.Line, Column: e.Column}
}

// Load reads and parses a plan file.
func Load(path string) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &LoadError{Code: CodeFileUnreadable, File: path, Msg: err.Error(), Hint: "check the path given to -f"}
	}
	defer f.Close()
	return LoadReader(f, path)
}

// LoadReader reads and parses a plan from r; name is used in messages.
func LoadReader(r io.Reader, name string) (*Plan, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxPlanSize+1))
	if err != nil {
		return nil, &LoadError{Code: CodeFileUnreadable, File: name, Msg: err.Error()}
	}
	return Parse(data, name)
}

// Parse parses plan YAML. name is used in error messages. Unknown fields,
// wrong types, duplicate keys and a second document are errors with the
// line and column of the offending node.
func Parse(data []byte, name string) (*Plan, error) {
	if len(data) > MaxPlanSize {
		return nil, &LoadError{Code: CodeFileTooLarge, File: name,
			Msg: fmt.Sprintf("the file is larger than %d bytes", MaxPlanSize), Hint: "is this really a plan file?"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &LoadError{Code: CodeEmptyFile, File: name, Msg: "the file holds no YAML document",
				Hint: "start from 'etcdctl-wizard plan import' or the examples in docs/plan.md"}
		}
		return nil, syntaxError(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &LoadError{Code: CodeMultipleDocs, File: name, Line: extra.Line, Column: extra.Column,
			Msg: "the file holds more than one YAML document", Hint: "keep one plan per file; remove the '---' separator"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(name, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if isNull(root) {
		return nil, &LoadError{Code: CodeEmptyFile, File: name, Line: root.Line, Column: root.Column,
			Msg: "the document is empty", Hint: "a plan starts with 'apiVersion: " + APIVersion + "'"}
	}
	w := walker{file: name, visits: new(int)}
	if err := w.walk(root, reflect.TypeOf(Plan{}), "", 0); err != nil {
		return nil, err
	}
	// The walker has already checked fields and types with positions; the
	// strict decoder stays as the safety net the contract asks for.
	var p Plan
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	if err := strict.Decode(&p); err != nil {
		return nil, syntaxError(name, err)
	}
	if err := checkIdentity(&p, root, name); err != nil {
		return nil, err
	}
	p.normalize()
	return &p, nil
}

// normalize makes empty lists and maps nil, so that "members: []" and an
// absent key load the same and a plan survives Save and Load unchanged.
func (p *Plan) normalize() {
	if len(p.Spec.Members) == 0 {
		p.Spec.Members = nil
	}
	if len(p.Spec.Node.Flags) == 0 {
		p.Spec.Node.Flags = nil
	}
	for i := range p.Spec.Members {
		if len(p.Spec.Members[i].Flags) == 0 {
			p.Spec.Members[i].Flags = nil
		}
	}
}

func checkIdentity(p *Plan, root *yaml.Node, name string) error {
	if p.APIVersion != APIVersion {
		line, col := keyPos(root, "apiVersion")
		msg := fmt.Sprintf("apiVersion is %q, this wizard reads %q", p.APIVersion, APIVersion)
		if p.APIVersion == "" {
			msg = "apiVersion is missing"
		}
		return &LoadError{Code: CodeAPIVersion, File: name, Line: line, Column: col, Field: "apiVersion", Msg: msg,
			Hint: "set 'apiVersion: " + APIVersion + "'"}
	}
	if p.Kind != KindCluster {
		line, col := keyPos(root, "kind")
		return &LoadError{Code: CodeKind, File: name, Line: line, Column: col, Field: "kind",
			Msg: fmt.Sprintf("kind is %q, expected %q", p.Kind, KindCluster), Hint: "set 'kind: " + KindCluster + "'"}
	}
	return nil
}

// keyPos finds the position of a top-level key (or of the document when
// the key is missing).
func keyPos(root *yaml.Node, key string) (int, int) {
	if root.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == key {
				return root.Content[i+1].Line, root.Content[i+1].Column
			}
		}
	}
	return root.Line, root.Column
}

var lineRE = regexp.MustCompile(`line (\d+)`)

func syntaxError(name string, err error) *LoadError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = strings.TrimSpace(strings.Replace(msg, m[0]+":", "", 1))
	}
	return &LoadError{Code: CodeYAMLSyntax, File: name, Line: line, Msg: msg,
		Hint: "fix the YAML syntax (indentation uses spaces; quote values that contain ': ' or start with '{', '[', '*' or '&')"}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// walker checks a YAML tree against the plan's Go types, so that every
// unknown field or type error is reported with its line, column and path.
type walker struct {
	file   string
	visits *int
}

// maxDepth and maxVisits bound the walk: aliases can make a small file
// expand exponentially ("billion laughs").
const (
	maxDepth  = 64
	maxVisits = 100000
)

func (w walker) fail(code string, n *yaml.Node, path, format string, args ...any) *LoadError {
	return &LoadError{Code: code, File: w.file, Line: n.Line, Column: n.Column, Field: path, Msg: fmt.Sprintf(format, args...)}
}

func (w walker) walk(n *yaml.Node, t reflect.Type, path string, depth int) error {
	if depth > maxDepth {
		return w.fail(CodeWrongType, n, path, "the document nests deeper than a plan can")
	}
	if *w.visits++; *w.visits > maxVisits {
		return w.fail(CodeYAMLSyntax, n, path, "the document expands to too many nodes (aliases?)")
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return w.fail(CodeYAMLSyntax, n, path, "unknown alias")
		}
		return w.walk(n.Alias, t, path, depth+1)
	}
	if isNull(n) {
		return nil // yaml leaves the zero value
	}
	switch t.Kind() {
	case reflect.Pointer:
		return w.walk(n, t.Elem(), path, depth+1)
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return w.typeErr(n, path, "a mapping of fields")
		}
		return w.walkStruct(n, t, path, depth)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return w.typeErr(n, path, "a list")
		}
		for i, item := range n.Content {
			if err := w.walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), depth+1); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return w.typeErr(n, path, "a mapping of flag names to values")
		}
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return w.typeErr(k, path, "a flag name")
			}
			if prev, dup := seen[k.Value]; dup {
				return w.dupErr(k, prev, path)
			}
			seen[k.Value] = k
			if err := w.walk(v, t.Elem(), join(path, k.Value), depth+1); err != nil {
				return err
			}
		}
		return nil
	default:
		if n.Kind != yaml.ScalarNode {
			return w.typeErr(n, path, kindWord(t))
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return w.typeErr(n, path, kindWord(t))
		}
		return nil
	}
}

func (w walker) walkStruct(n *yaml.Node, t reflect.Type, path string, depth int) error {
	fields := map[string]reflect.StructField{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = f
		names = append(names, name)
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return w.fail(CodeWrongType, k, path, "a field name must be a plain word")
		}
		f, ok := fields[k.Value]
		if !ok {
			e := w.fail(CodeUnknownField, k, join(path, k.Value), "unknown field %q", k.Value)
			e.Hint = "known fields here: " + strings.Join(names, ", ")
			if s := closest(k.Value, names); s != "" {
				e.Hint = fmt.Sprintf("did you mean %q? ", s) + e.Hint
			}
			return e
		}
		if prev, dup := seen[k.Value]; dup {
			return w.dupErr(k, prev, path)
		}
		seen[k.Value] = k
		if err := w.walk(v, f.Type, join(path, k.Value), depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (w walker) dupErr(k, prev *yaml.Node, path string) *LoadError {
	e := w.fail(CodeDuplicateField, k, join(path, k.Value), "%q is given twice (first at line %d)", k.Value, prev.Line)
	e.Hint = "keep one of the two; YAML would silently use the last"
	return e
}

func (w walker) typeErr(n *yaml.Node, path, want string) *LoadError {
	got := n.Value
	switch n.Kind {
	case yaml.MappingNode:
		got = "a mapping"
	case yaml.SequenceNode:
		got = "a list"
	default:
		got = strconv.Quote(got)
	}
	e := w.fail(CodeWrongType, n, path, "expected %s, found %s", want, got)
	e.Hint = "see the field reference in docs/plan.md"
	return e
}

func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "a whole number"
	case reflect.Bool:
		return "true or false"
	default:
		return "a text value"
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// closest returns the candidate nearest to s by edit distance, if it is
// near enough to be a likely typo.
func closest(s string, candidates []string) string {
	best, bestD := "", 3
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
