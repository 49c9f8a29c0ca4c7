package mvcc

import (
	"bytes"
	"slices"
	"sort"
)

// generation is one life of a key: from its creation to its tombstone (the last
// revision of every generation but the newest, which is empty after a delete).
type generation struct {
	ver     int64 // puts in this life, including compacted ones
	created revision
	revs    []revision
}

// keyIndex lists every revision of one key that is still readable.
type keyIndex struct {
	key         []byte
	modified    revision
	generations []generation
}

func (ki *keyIndex) put(r revision) {
	if len(ki.generations) == 0 {
		ki.generations = append(ki.generations, generation{})
	}
	g := &ki.generations[len(ki.generations)-1]
	if len(g.revs) == 0 {
		g.created = r
	}
	g.revs = append(g.revs, r)
	g.ver++
	ki.modified = r
}

// restore starts the index of a key from its oldest surviving revision on disk,
// whose value carries the creation revision and version that compaction removed.
func (ki *keyIndex) restore(created, modified revision, ver int64) {
	ki.modified = modified
	ki.generations = append(ki.generations, generation{ver: ver, created: created, revs: []revision{modified}})
}

// restoreTombstone starts a key whose oldest surviving revision is its deletion
// (kept because it is exactly at the compaction revision).
func (ki *keyIndex) restoreTombstone(r revision) {
	ki.restore(revision{}, r, 1)
	ki.generations = append(ki.generations, generation{})
}

// tombstone ends the current generation; false if the key is already deleted.
func (ki *keyIndex) tombstone(r revision) bool {
	if len(ki.generations) == 0 || len(ki.generations[len(ki.generations)-1].revs) == 0 {
		return false
	}
	ki.put(r)
	ki.generations = append(ki.generations, generation{})
	return true
}

func (ki *keyIndex) isEmpty() bool {
	return len(ki.generations) == 0 || (len(ki.generations) == 1 && len(ki.generations[0].revs) == 0)
}

// findGeneration returns the generation in which the key was alive at rev, or nil.
func (ki *keyIndex) findGeneration(rev int64) *generation {
	last := len(ki.generations) - 1
	for i := last; i >= 0; i-- {
		g := &ki.generations[i]
		if len(g.revs) == 0 {
			continue
		}
		if i != last && g.revs[len(g.revs)-1].main <= rev {
			return nil // deleted at or before rev
		}
		if g.revs[0].main <= rev {
			return g
		}
	}
	return nil
}

// get returns the key's state as of rev: its last modification, creation and version.
func (ki *keyIndex) get(rev int64) (modified, created revision, ver int64, ok bool) {
	g := ki.findGeneration(rev)
	if g == nil {
		return revision{}, revision{}, 0, false
	}
	for n := len(g.revs) - 1; n >= 0; n-- {
		if g.revs[n].main <= rev {
			return g.revs[n], g.created, g.ver - int64(len(g.revs)-n-1), true
		}
	}
	return revision{}, revision{}, 0, false
}

// compactPoint finds what compacting at rev keeps: the generation index gi from
// which generations survive, and in it the index n of the newest revision at or
// below rev (-1 if none), which it records in keep.
func (ki *keyIndex) compactPoint(rev int64, keep map[revision]struct{}) (gi, n int) {
	for gi < len(ki.generations)-1 {
		g := ki.generations[gi]
		if g.revs[len(g.revs)-1].main >= rev {
			break
		}
		gi++
	}
	g := ki.generations[gi]
	for n = len(g.revs) - 1; n >= 0; n-- {
		if g.revs[n].main <= rev {
			keep[g.revs[n]] = struct{}{}
			break
		}
	}
	return gi, n
}

// compact drops revisions not needed to read at rev or later, recording in keep the
// ones at or below rev that stay (the value of a live key as of rev, and a tombstone
// at exactly rev, which etcd 3.7 keeps so watchers resuming at rev see the delete).
func (ki *keyIndex) compact(rev int64, keep map[revision]struct{}) {
	gi, n := ki.compactPoint(rev, keep)
	if n > 0 {
		g := &ki.generations[gi]
		g.revs = g.revs[n:]
	}
	ki.generations = ki.generations[gi:]
}

// keep records what a compaction at rev would keep, without compacting, minus a
// tombstone at exactly rev: etcd's HashKV skips those so that members of versions
// that delete them and of versions that keep them hash alike.
func (ki *keyIndex) keep(rev int64, keep map[revision]struct{}) {
	if ki.isEmpty() {
		return
	}
	gi, n := ki.compactPoint(rev, keep)
	g := ki.generations[gi]
	if n >= 0 && n == len(g.revs)-1 && gi != len(ki.generations)-1 {
		delete(keep, g.revs[n])
	}
}

// chunkMax bounds the chunks of the sorted index: inserts move at most this many
// pointers, and lookups are two binary searches.
const chunkMax = 128

// treeIndex keeps keyIndexes sorted by key in a list of small sorted chunks: a
// two-level B+-tree, enough for millions of keys without a tree library.
type treeIndex struct {
	chunks [][]*keyIndex
	keys   int
}

// locate returns where key is, or where it would be inserted.
func (t *treeIndex) locate(key []byte) (ci, pi int) {
	ci = sort.Search(len(t.chunks), func(i int) bool {
		c := t.chunks[i]
		return bytes.Compare(c[len(c)-1].key, key) >= 0
	})
	if ci == len(t.chunks) {
		if ci == 0 {
			return 0, 0
		}
		return ci - 1, len(t.chunks[ci-1])
	}
	c := t.chunks[ci]
	pi = sort.Search(len(c), func(i int) bool { return bytes.Compare(c[i].key, key) >= 0 })
	return ci, pi
}

func (t *treeIndex) get(key []byte) *keyIndex {
	ci, pi := t.locate(key)
	if ci < len(t.chunks) && pi < len(t.chunks[ci]) && bytes.Equal(t.chunks[ci][pi].key, key) {
		return t.chunks[ci][pi]
	}
	return nil
}

// insert adds a keyIndex whose key is not in the index yet.
func (t *treeIndex) insert(ki *keyIndex) {
	t.keys++
	if len(t.chunks) == 0 {
		t.chunks = [][]*keyIndex{newChunk(ki)}
		return
	}
	ci, pi := t.locate(ki.key)
	c := slices.Insert(t.chunks[ci], pi, ki)
	if len(c) <= chunkMax {
		t.chunks[ci] = c
		return
	}
	half := len(c) / 2
	t.chunks[ci] = newChunk(c[:half]...)
	t.chunks = slices.Insert(t.chunks, ci+1, newChunk(c[half:]...))
}

func newChunk(kis ...*keyIndex) []*keyIndex {
	c := make([]*keyIndex, 0, chunkMax+1)
	return append(c, kis...)
}

// ascend calls fn for each keyIndex with key >= from, in key order, until fn returns false.
func (t *treeIndex) ascend(from []byte, fn func(*keyIndex) bool) {
	ci, pi := t.locate(from)
	for ; ci < len(t.chunks); ci, pi = ci+1, 0 {
		c := t.chunks[ci]
		for ; pi < len(c); pi++ {
			if !fn(c[pi]) {
				return
			}
		}
	}
}

// visit calls fn for the keys of a request range: end nil means key alone, an empty
// end means every key >= key, otherwise [key, end).
func (t *treeIndex) visit(key, end []byte, fn func(*keyIndex) bool) {
	if end == nil {
		if ki := t.get(key); ki != nil {
			fn(ki)
		}
		return
	}
	t.ascend(key, func(ki *keyIndex) bool {
		if len(end) > 0 && bytes.Compare(ki.key, end) >= 0 {
			return false
		}
		return fn(ki)
	})
}

// compact compacts every key at rev, drops keys left empty and returns the
// revisions at or below rev that must stay in the backend.
func (t *treeIndex) compact(rev int64) map[revision]struct{} {
	keep := make(map[revision]struct{})
	out := t.chunks[:0]
	t.keys = 0
	for _, c := range t.chunks {
		kept := c[:0]
		for _, ki := range c {
			ki.compact(rev, keep)
			if !ki.isEmpty() {
				kept = append(kept, ki)
			}
		}
		clear(c[len(kept):])
		t.keys += len(kept)
		switch {
		case len(kept) == 0:
		case len(out) > 0 && len(out[len(out)-1])+len(kept) <= chunkMax/2:
			// Merge small neighbours so deletions do not leave a long list of tiny chunks.
			out[len(out)-1] = append(out[len(out)-1], kept...)
		default:
			out = append(out, kept)
		}
	}
	clear(t.chunks[len(out):])
	t.chunks = out
	return keep
}
