package tui

import (
	"context"
	"fmt"
	"sync"

	"etcdctl-wizard/plan"
)

// fakeApplier replays scripted events. Apply sends events up to each gate
// and then waits for the test to open it (release), so that tests look at
// a running apply without sleeping.
type fakeApplier struct {
	keys    []HostKey
	keysErr error
	events  []Event
	status  []ClusterStatus

	mu       sync.Mutex
	accepted []HostKey
	applied  int
	gate     chan struct{} // nil: no pause
	pauseAt  int           // events sent before waiting on gate
	// final is closed once the final event was taken: the status follows
	// it, so that flows see the cluster panel change after the apply.
	final chan struct{}

	members fakeMembers
}

func (f *fakeApplier) HostKeys(ctx context.Context, p *plan.Plan) ([]HostKey, error) {
	return f.keys, f.keysErr
}

func (f *fakeApplier) Apply(ctx context.Context, p *plan.Plan, planDir string, accepted []HostKey) <-chan Event {
	f.mu.Lock()
	f.accepted = accepted
	f.applied++
	f.mu.Unlock()
	ch := make(chan Event)
	final := make(chan struct{})
	f.mu.Lock()
	f.final = final
	f.mu.Unlock()
	go func() {
		defer close(ch)
		defer close(final)
		for i, ev := range f.events {
			if f.gate != nil && i == f.pauseAt {
				select {
				case <-f.gate:
				case <-ctx.Done():
					ch <- Event{Final: true, Err: ctx.Err()}
					return
				}
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func (f *fakeApplier) Status(ctx context.Context, p *plan.Plan, planDir string) <-chan ClusterStatus {
	ch := make(chan ClusterStatus)
	final := f.finalChan()
	go func() {
		defer close(ch)
		select {
		case <-final:
		case <-ctx.Done():
			return
		}
		for _, st := range f.status {
			select {
			case ch <- st:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func (f *fakeApplier) acceptedKeys() []HostKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted
}

func (f *fakeApplier) finalChan() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.final == nil {
		f.final = make(chan struct{})
	}
	return f.final
}

// LogTail makes the fake a tui.LogTailer.
func (f *fakeApplier) LogTail(ctx context.Context, p *plan.Plan, planDir, member string, n int) ([]string, error) {
	return []string{`{"level":"info","msg":"` + member + ` serving client requests"}`}, nil
}

// NewDiscoveryURL makes the fake a tui.DiscoveryCreator.
func (f *fakeApplier) NewDiscoveryURL(ctx context.Context, service string, size int) (string, error) {
	return fmt.Sprintf("%s/v2/keys/_etcd/registry/tok%d", service, size), nil
}

// fakeMembers makes the fake a tui.MemberManager: Members sends lists and
// then waits for ctx; a change records its call, calls save with
// savePlan (when set) as the executor does once the cluster changed, and
// sends changeEvents.
type fakeMembers struct {
	lists        []MemberList
	changeEvents []Event
	savePlan     *plan.Plan

	mu       sync.Mutex
	added    []plan.Member
	accepted []HostKey
	removed  []string
	saveErr  error
}

func (f *fakeApplier) Members(ctx context.Context, p *plan.Plan, planDir string) <-chan MemberList {
	ch := make(chan MemberList)
	go func() {
		defer close(ch)
		for _, l := range f.members.lists {
			select {
			case ch <- l:
			case <-ctx.Done():
				return
			}
		}
		<-ctx.Done()
	}()
	return ch
}

func (f *fakeApplier) AddMember(ctx context.Context, p *plan.Plan, planDir string, m plan.Member, accepted []HostKey, save func(*plan.Plan) error) <-chan Event {
	f.members.mu.Lock()
	f.members.added = append(f.members.added, m)
	f.members.accepted = accepted
	f.members.mu.Unlock()
	return f.members.change(ctx, save)
}

func (f *fakeApplier) RemoveMember(ctx context.Context, p *plan.Plan, planDir, name string, save func(*plan.Plan) error) <-chan Event {
	f.members.mu.Lock()
	f.members.removed = append(f.members.removed, name)
	f.members.mu.Unlock()
	return f.members.change(ctx, save)
}

func (f *fakeMembers) change(ctx context.Context, save func(*plan.Plan) error) <-chan Event {
	ch := make(chan Event)
	go func() {
		defer close(ch)
		if f.savePlan != nil {
			err := save(f.savePlan)
			f.mu.Lock()
			f.saveErr = err
			f.mu.Unlock()
		}
		for _, ev := range f.changeEvents {
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}
