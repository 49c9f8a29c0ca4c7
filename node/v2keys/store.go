package v2keys

import (
	"context"
	"errors"
	"path"
	"sort"
	"strconv"
	"strings"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// Backend is the replicated key space the API is stored in.
type Backend interface {
	Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error)
	Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error)
	// Rev is the current revision.
	Rev() int64
	// AddWriteListener receives the events of every applied write.
	AddWriteListener(fn func(events []*mvccpb.Event))
}

// Prefix is where v2 nodes are kept in the key space.
const Prefix = "\x00v2"

const (
	kindFile = 'f'
	kindDir  = 'd'

	actSet     = 's'
	actCreate  = 'c'
	actUpdate  = 'u'
	actCAS     = 'w'
	actImplDir = 'i' // a parent directory created by a write below it
)

var actionNames = map[byte]string{
	actSet: "set", actCreate: "create", actUpdate: "update", actCAS: "compareAndSwap", actImplDir: "create",
}

func storeKey(p string) []byte { return []byte(Prefix + p) }

func pathOf(key []byte) (string, bool) {
	if !strings.HasPrefix(string(key), Prefix+"/") {
		return "", false
	}
	return string(key[len(Prefix):]), true
}

func encode(kind, act byte, value string) []byte {
	return append([]byte{kind, act}, value...)
}

type stored struct {
	path     string
	dir      bool
	act      byte
	value    string
	created  int64
	modified int64
}

func decode(kv *mvccpb.KeyValue) (*stored, bool) {
	p, ok := pathOf(kv.Key)
	if !ok || len(kv.Value) < 2 {
		return nil, false
	}
	return &stored{path: p, dir: kv.Value[0] == kindDir, act: kv.Value[1], value: string(kv.Value[2:]),
		created: kv.CreateRevision, modified: kv.ModRevision}, true
}

// cleanPath makes an absolute clean path of a request key.
func cleanPath(p string) string { return path.Clean("/" + p) }

// ancestors lists the parent directories of p, top first, without the root.
func ancestors(p string) []string {
	var out []string
	for d := path.Dir(p); d != "/"; d = path.Dir(d) {
		out = append(out, d)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// isHidden reports whether key, seen from watchPath, goes through a hidden
// ('_') name below watchPath.
func isHidden(watchPath, key string) bool {
	if len(key) <= len(watchPath) {
		return false
	}
	rest := strings.TrimPrefix(key[len(watchPath):], "/")
	for _, name := range strings.Split(rest, "/") {
		if strings.HasPrefix(name, "_") {
			return true
		}
	}
	return false
}

func under(p, dir string) bool {
	if dir == "/" {
		return p != "/"
	}
	return strings.HasPrefix(p, dir+"/")
}

func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0}
}

// Node is a v2 node as the API prints it.
type Node struct {
	Key           string  `json:"key,omitempty"`
	Value         *string `json:"value,omitempty"`
	Dir           bool    `json:"dir,omitempty"`
	Nodes         []*Node `json:"nodes,omitempty"`
	ModifiedIndex int64   `json:"modifiedIndex,omitempty"`
	CreatedIndex  int64   `json:"createdIndex,omitempty"`
}

func (st *stored) node() *Node {
	n := &Node{Key: st.path, Dir: st.dir, ModifiedIndex: st.modified, CreatedIndex: st.created}
	if !st.dir {
		v := st.value
		n.Value = &v
	}
	return n
}

// Event is one answer of the API: a read, a write or a watch.
type Event struct {
	Action   string `json:"action"`
	Node     *Node  `json:"node,omitempty"`
	PrevNode *Node  `json:"prevNode,omitempty"`

	index int64 // the revision of the change, for watches
}

// Error is the v2 error JSON.
type Error struct {
	Code    int    `json:"errorCode"`
	Message string `json:"message"`
	Cause   string `json:"cause,omitempty"`
	Index   int64  `json:"index"`
}

func (e *Error) Error() string { return e.Message + " (" + e.Cause + ")" }

const (
	codeKeyNotFound   = 100
	codeTestFailed    = 101
	codeNotFile       = 102
	codeNotDir        = 104
	codeNodeExist     = 105
	codeRootROnly     = 107
	codeDirNotEmpty   = 108
	codeIndexNaN      = 203
	codeInvalidField  = 209
	codeInvalidForm   = 210
	codeRaftInternal  = 300
	codeEventIndexOld = 401
)

var messages = map[int]string{
	codeKeyNotFound:   "Key not found",
	codeTestFailed:    "Compare failed",
	codeNotFile:       "Not a file",
	codeNotDir:        "Not a directory",
	codeNodeExist:     "Key already exists",
	codeRootROnly:     "Root is read only",
	codeDirNotEmpty:   "Directory not empty",
	codeIndexNaN:      "The given index in POST form is not a number",
	codeInvalidField:  "Invalid field",
	codeInvalidForm:   "Invalid POST form",
	codeRaftInternal:  "Raft Internal Error",
	codeEventIndexOld: "The event in requested index is outdated and cleared",
}

func newError(code int, cause string, index int64) *Error {
	return &Error{Code: code, Message: messages[code], Cause: cause, Index: index}
}

func (e *Error) status() int {
	switch e.Code {
	case codeKeyNotFound:
		return 404
	case codeTestFailed, codeNodeExist:
		return 412
	case codeNotFile, codeDirNotEmpty:
		return 403
	case codeRaftInternal:
		return 500
	}
	return 400
}

// store reads and writes v2 nodes in the backend.
type store struct {
	b Backend
}

// view is a consistent read of one path: its ancestors (top first, nil when
// missing), the node itself and the revision read at.
type view struct {
	p      string
	anc    []*stored
	target *stored
	rev    int64
}

func (s *store) read(ctx context.Context, p string, serializable bool) (*view, error) {
	v := &view{p: p}
	keys := append(ancestors(p), p)
	if p == "/" {
		keys = nil
	}
	// The first read fixes the revision; the others read at it.
	for i, k := range keys {
		r, err := s.b.Range(ctx, &pb.RangeRequest{Key: storeKey(k), Serializable: serializable || i > 0, Revision: v.rev})
		if err != nil {
			return nil, err
		}
		if v.rev == 0 {
			v.rev = r.GetHeader().GetRevision()
		}
		var st *stored
		if len(r.Kvs) > 0 {
			st, _ = decode(r.Kvs[0])
		}
		if i == len(keys)-1 {
			v.target = st
		} else {
			v.anc = append(v.anc, st)
		}
	}
	if v.rev == 0 {
		r, err := s.b.Range(ctx, &pb.RangeRequest{Key: storeKey("/"), Serializable: serializable, CountOnly: true})
		if err != nil {
			return nil, err
		}
		v.rev = r.GetHeader().GetRevision()
	}
	return v, nil
}

// pathError is the v2 error for a missing or non-directory ancestor of
// v.p, or nil when all ancestors are directories.
func (v *view) pathError() *Error {
	anc := ancestors(v.p)
	for i, a := range v.anc {
		if a == nil {
			return newError(codeKeyNotFound, anc[i], v.rev)
		}
		if !a.dir {
			return newError(codeNotDir, anc[i], v.rev)
		}
	}
	return nil
}

// children reads the subtree below dir at rev and returns its nodes: the
// direct children, or all descendants nested when recursive. Hidden names
// are left out.
func (s *store) children(ctx context.Context, dir string, rev int64, recursive, sorted bool) ([]*Node, error) {
	prefix := storeKey(strings.TrimSuffix(dir, "/") + "/")
	r, err := s.b.Range(ctx, &pb.RangeRequest{Key: prefix, RangeEnd: prefixEnd(prefix), Revision: rev, Serializable: true})
	if err != nil {
		return nil, err
	}
	byPath := map[string]*Node{}
	var top []*Node
	for _, kv := range r.Kvs { // key order: parents before children
		st, ok := decode(kv)
		if !ok || isHidden(dir, st.path) {
			continue
		}
		parent := path.Dir(st.path)
		if parent != dir && !recursive {
			continue
		}
		n := st.node()
		if st.dir {
			byPath[st.path] = n
		}
		if parent == dir {
			top = append(top, n)
		} else if pn := byPath[parent]; pn != nil {
			pn.Nodes = append(pn.Nodes, n)
		}
	}
	if sorted {
		sortNodes(top)
	}
	return top, nil
}

func sortNodes(ns []*Node) {
	sort.Slice(ns, func(i, j int) bool { return ns[i].Key < ns[j].Key })
	for _, n := range ns {
		sortNodes(n.Nodes)
	}
}

// get answers GET: a file, or a directory with its children.
func (s *store) get(ctx context.Context, p string, recursive, sorted, quorum bool) (*Event, int64, error) {
	v, err := s.read(ctx, p, !quorum)
	if err != nil {
		return nil, 0, err
	}
	if p == "/" {
		nodes, err := s.children(ctx, "/", v.rev, recursive, sorted)
		if err != nil {
			return nil, 0, err
		}
		return &Event{Action: "get", Node: &Node{Dir: true, Nodes: nodes}}, v.rev, nil
	}
	if e := v.pathError(); e != nil {
		return nil, v.rev, e
	}
	if v.target == nil {
		return nil, v.rev, newError(codeKeyNotFound, p, v.rev)
	}
	n := v.target.node()
	if v.target.dir {
		if n.Nodes, err = s.children(ctx, p, v.rev, recursive, sorted); err != nil {
			return nil, 0, err
		}
	}
	return &Event{Action: "get", Node: n}, v.rev, nil
}

// putOptions are PUT's conditions.
type putOptions struct {
	value     string
	dir       bool
	prevExist *bool
	prevValue *string
	prevIndex int64
}

// errRetry means the state changed between the read and the write.
var errRetry = errors.New("v2keys: concurrent change")

// put answers PUT. created reports a new node (HTTP 201).
func (s *store) put(ctx context.Context, p string, o putOptions) (ev *Event, created bool, rev int64, err error) {
	if p == "/" {
		return nil, false, s.b.Rev(), newError(codeRootROnly, "/", s.b.Rev())
	}
	for attempt := 0; ; attempt++ {
		ev, created, rev, err = s.tryPut(ctx, p, o)
		if err != errRetry || attempt > 50 || ctx.Err() != nil {
			if err == errRetry {
				err = newError(codeRaftInternal, "too many concurrent changes", rev)
			}
			return ev, created, rev, err
		}
	}
}

func (s *store) tryPut(ctx context.Context, p string, o putOptions) (*Event, bool, int64, error) {
	v, err := s.read(ctx, p, true)
	if err != nil {
		return nil, false, 0, err
	}
	for i, a := range v.anc {
		if a != nil && !a.dir {
			return nil, false, v.rev, newError(codeNotDir, ancestors(p)[i], v.rev)
		}
	}
	cur := v.target
	act := byte(actSet)
	switch {
	case o.prevExist != nil && !*o.prevExist:
		if cur != nil {
			return nil, false, v.rev, newError(codeNodeExist, p, v.rev)
		}
		act = actCreate
	case o.prevValue != nil || o.prevIndex != 0:
		if cur == nil {
			return nil, false, v.rev, newError(codeKeyNotFound, p, v.rev)
		}
		if cur.dir {
			return nil, false, v.rev, newError(codeNotFile, p, v.rev)
		}
		var bad []string
		if o.prevValue != nil && *o.prevValue != cur.value {
			bad = append(bad, "["+*o.prevValue+" != "+cur.value+"]")
		}
		if o.prevIndex != 0 && o.prevIndex != cur.modified {
			bad = append(bad, "["+itoa(o.prevIndex)+" != "+itoa(cur.modified)+"]")
		}
		if len(bad) > 0 {
			return nil, false, v.rev, newError(codeTestFailed, strings.Join(bad, " "), v.rev)
		}
		act = actCAS
	case o.prevExist != nil && *o.prevExist:
		if cur == nil {
			return nil, false, v.rev, newError(codeKeyNotFound, p, v.rev)
		}
		act = actUpdate
	}
	if cur != nil && cur.dir {
		return nil, false, v.rev, newError(codeNotFile, p, v.rev)
	}
	if cur != nil && o.dir {
		return nil, false, v.rev, newError(codeNotFile, p, v.rev)
	}
	// Compare every ancestor and the node with what was read; create the
	// missing ancestors and write the node.
	anc := ancestors(p)
	var cmps []*pb.Compare
	var ops []*pb.RequestOp
	for i, a := range v.anc {
		var mod int64
		if a != nil {
			mod = a.modified
		} else {
			ops = append(ops, putOp(anc[i], encode(kindDir, actImplDir, ""), false))
		}
		cmps = append(cmps, modCompare(anc[i], mod))
	}
	var curMod int64
	if cur != nil {
		curMod = cur.modified
	}
	cmps = append(cmps, modCompare(p, curMod))
	kind := byte(kindFile)
	if o.dir {
		kind = kindDir
	}
	ops = append(ops, putOp(p, encode(kind, act, o.value), true))
	resp, err := s.b.Txn(ctx, &pb.TxnRequest{Compare: cmps, Success: ops})
	if err != nil {
		return nil, false, 0, err
	}
	rev := resp.GetHeader().GetRevision()
	if !resp.Succeeded {
		return nil, false, rev, errRetry
	}
	st := &stored{path: p, dir: o.dir, act: act, value: o.value, created: rev, modified: rev}
	ev := &Event{Action: actionNames[act]}
	if cur != nil {
		st.created = cur.created
		ev.PrevNode = cur.node()
	}
	ev.Node = st.node()
	return ev, cur == nil, rev, nil
}

// deleteOptions are DELETE's conditions.
type deleteOptions struct {
	dir, recursive bool
	prevValue      *string
	prevIndex      int64
}

func (s *store) delete(ctx context.Context, p string, o deleteOptions) (*Event, int64, error) {
	if p == "/" {
		return nil, s.b.Rev(), newError(codeRootROnly, "/", s.b.Rev())
	}
	for attempt := 0; ; attempt++ {
		ev, rev, err := s.tryDelete(ctx, p, o)
		if err != errRetry || attempt > 50 || ctx.Err() != nil {
			if err == errRetry {
				err = newError(codeRaftInternal, "too many concurrent changes", rev)
			}
			return ev, rev, err
		}
	}
}

func (s *store) tryDelete(ctx context.Context, p string, o deleteOptions) (*Event, int64, error) {
	v, err := s.read(ctx, p, true)
	if err != nil {
		return nil, 0, err
	}
	if e := v.pathError(); e != nil {
		return nil, v.rev, e
	}
	cur := v.target
	if cur == nil {
		return nil, v.rev, newError(codeKeyNotFound, p, v.rev)
	}
	action := "delete"
	if o.prevValue != nil || o.prevIndex != 0 {
		if cur.dir {
			return nil, v.rev, newError(codeNotFile, p, v.rev)
		}
		var bad []string
		if o.prevValue != nil && *o.prevValue != cur.value {
			bad = append(bad, "["+*o.prevValue+" != "+cur.value+"]")
		}
		if o.prevIndex != 0 && o.prevIndex != cur.modified {
			bad = append(bad, "["+itoa(o.prevIndex)+" != "+itoa(cur.modified)+"]")
		}
		if len(bad) > 0 {
			return nil, v.rev, newError(codeTestFailed, strings.Join(bad, " "), v.rev)
		}
		action = "compareAndDelete"
	}
	cmps := []*pb.Compare{modCompare(p, cur.modified)}
	ops := []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: storeKey(p)}}}}
	if cur.dir {
		if !o.dir && !o.recursive {
			return nil, v.rev, newError(codeNotFile, p, v.rev)
		}
		prefix := storeKey(p + "/")
		if !o.recursive {
			r, err := s.b.Range(ctx, &pb.RangeRequest{Key: prefix, RangeEnd: prefixEnd(prefix), Revision: v.rev, CountOnly: true, Serializable: true})
			if err != nil {
				return nil, 0, err
			}
			if r.Count > 0 {
				return nil, v.rev, newError(codeDirNotEmpty, p, v.rev)
			}
		}
		// Nothing may have been written below since the read.
		cmps = append(cmps, &pb.Compare{Key: prefix, RangeEnd: prefixEnd(prefix), Target: pb.Compare_MOD,
			Result: pb.Compare_LESS, TargetUnion: &pb.Compare_ModRevision{ModRevision: v.rev + 1}})
		ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: prefix, RangeEnd: prefixEnd(prefix)}}})
	}
	resp, err := s.b.Txn(ctx, &pb.TxnRequest{Compare: cmps, Success: ops})
	if err != nil {
		return nil, 0, err
	}
	rev := resp.GetHeader().GetRevision()
	if !resp.Succeeded {
		return nil, rev, errRetry
	}
	n := &Node{Key: p, Dir: cur.dir, ModifiedIndex: rev, CreatedIndex: cur.created}
	return &Event{Action: action, Node: n, PrevNode: cur.node()}, rev, nil
}

func putOp(p string, value []byte, prevKV bool) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: storeKey(p), Value: value, PrevKv: prevKV}}}
}

func modCompare(p string, mod int64) *pb.Compare {
	return &pb.Compare{Key: storeKey(p), Target: pb.Compare_MOD, Result: pb.Compare_EQUAL,
		TargetUnion: &pb.Compare_ModRevision{ModRevision: mod}}
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
