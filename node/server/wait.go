package server

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// waitRegistry hands apply results to the goroutines that proposed them.
type waitRegistry struct {
	mu sync.Mutex
	m  map[uint64]chan applyResult
}

func newWaitRegistry() *waitRegistry { return &waitRegistry{m: map[uint64]chan applyResult{}} }

func (w *waitRegistry) register(id uint64) <-chan applyResult {
	ch := make(chan applyResult, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

func (w *waitRegistry) cancel(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

func (w *waitRegistry) trigger(id uint64, r applyResult) {
	w.mu.Lock()
	ch, ok := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ok {
		ch <- r
	}
}

// indexWaiter wakes goroutines once the applied index reaches a value.
type indexWaiter struct {
	mu      sync.Mutex
	applied uint64
	waiters []indexWait // sorted by index
}

type indexWait struct {
	index uint64
	ch    chan struct{}
}

func newIndexWaiter() *indexWaiter { return &indexWaiter{} }

// wait returns a channel closed once index is applied.
func (w *indexWaiter) wait(index uint64) <-chan struct{} {
	ch := make(chan struct{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if index <= w.applied {
		close(ch)
		return ch
	}
	i := sort.Search(len(w.waiters), func(i int) bool { return w.waiters[i].index > index })
	w.waiters = append(w.waiters, indexWait{})
	copy(w.waiters[i+1:], w.waiters[i:])
	w.waiters[i] = indexWait{index: index, ch: ch}
	return ch
}

func (w *indexWaiter) trigger(applied uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if applied > w.applied {
		w.applied = applied
	}
	n := 0
	for n < len(w.waiters) && w.waiters[n].index <= w.applied {
		close(w.waiters[n].ch)
		n++
	}
	w.waiters = w.waiters[n:]
}

// idGenerator makes request IDs unique across members and restarts: the
// member ID's low 16 bits, the start time in ms, then a counter.
type idGenerator struct {
	prefix uint64
	next   atomic.Uint64
}

func newIDGenerator(member uint64, now time.Time) *idGenerator {
	g := &idGenerator{prefix: (member & 0xffff) << 48}
	g.next.Store((uint64(now.UnixMilli()) & 0xffffffffff) << 8)
	return g
}

func (g *idGenerator) id() uint64 {
	return g.prefix | (g.next.Add(1) & 0xffffffffffff)
}
