package peer

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// TestExchange sends interleaved MsgApp and heartbeats across a full mesh
// and checks that each lane of each peer arrives complete and in order.
func TestExchange(t *testing.T) {
	for _, tc := range []struct {
		members int
		perPeer int
	}{
		{members: 2, perPeer: 3000},
		{members: 3, perPeer: 2000},
	} {
		t.Run(fmt.Sprintf("%d-members", tc.members), func(t *testing.T) {
			var nodes []*node
			for i := 1; i <= tc.members; i++ {
				nodes = append(nodes, startNode(t, uint64(i), 0xc1, "127.0.0.1:0"))
			}
			connect(nodes...)
			for _, a := range nodes {
				for _, b := range nodes {
					if a != b {
						waitFor(t, "streams up", func() bool { return !a.tr.ActiveSince(b.id).IsZero() })
					}
				}
			}
			// Send in Ready-sized batches, like the raft loop does, and never
			// more than the queues hold.
			const batch = 64
			for i := 0; i < tc.perPeer; i += batch {
				for _, a := range nodes {
					var msgs []*raftpb.Message
					for _, b := range nodes {
						for j := i; j < i+batch && j < tc.perPeer; j++ {
							if a == b {
								continue
							}
							typ := raftpb.MsgApp
							if j%3 == 0 {
								typ = raftpb.MsgHeartbeat
							}
							msgs = append(msgs, msg(typ, a.id, b.id, uint64(j)))
						}
					}
					a.tr.Send(msgs)
				}
				// Keep well under the queue size so nothing is dropped.
				for _, b := range nodes {
					want := (len(nodes) - 1) * min(i+batch, tc.perPeer)
					if want-len(b.raft.received()) > 2048 {
						waitFor(t, "receiver to catch up", func() bool { return want-len(b.raft.received()) < 1024 })
					}
				}
			}
			for _, b := range nodes {
				want := (len(nodes) - 1) * tc.perPeer
				waitFor(t, fmt.Sprintf("%d messages at %d", want, b.id), func() bool { return len(b.raft.received()) >= want })
				next := map[[2]uint64]int{}
				for _, m := range b.raft.received() {
					if m.GetTo() != b.id {
						t.Fatalf("member %d got a message for %d", b.id, m.GetTo())
					}
					lane := uint64(0)
					if m.GetType() == raftpb.MsgHeartbeat {
						lane = 1
					}
					k := [2]uint64{m.GetFrom(), lane}
					for next[k]%3 == 0 != (lane == 1) {
						next[k]++ // skip indexes that went on the other lane
					}
					if int(m.GetIndex()) != next[k] {
						t.Fatalf("member %d: from %d lane %d got index %d, want %d", b.id, m.GetFrom(), lane, m.GetIndex(), next[k])
					}
					next[k]++
				}
				for _, a := range nodes {
					if n := b.raft.unreachableCount(a.id); n != 0 {
						t.Errorf("member %d reported %d unreachable for %d", b.id, n, a.id)
					}
				}
			}
		})
	}
}

// TestReconnectAfterRestart stops the receiver, checks that the sender
// notices and reports the loss, and that it reconnects to the new process
// on the same address.
func TestReconnectAfterRestart(t *testing.T) {
	a := startNode(t, 1, 7, "127.0.0.1:0")
	b := startNode(t, 2, 7, "127.0.0.1:0")
	connect(a, b)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1)})
	waitFor(t, "first message", func() bool { return len(b.raft.received()) == 1 })

	addr := b.url[len("http://"):]
	b.stop()
	waitFor(t, "peer inactive", func() bool { return a.tr.ActiveSince(2).IsZero() })
	// While the peer is down, sends are dropped and raft hears about it.
	waitFor(t, "unreachable report", func() bool {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 2)})
		return a.raft.unreachableCount(2) > 0
	})

	b2 := startNode(t, 2, 7, addr)
	b2.tr.AddPeer(1, []string{a.url})
	waitFor(t, "message after restart", func() bool {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 3)})
		return len(b2.raft.received()) > 0
	})
	if a.tr.ActiveSince(2).IsZero() {
		t.Fatal("peer delivered messages but is not active")
	}
	// And the other direction works with the restarted member.
	waitFor(t, "reverse direction", func() bool {
		b2.tr.Send([]*raftpb.Message{msg(raftpb.MsgAppResp, 2, 1, 3)})
		for _, m := range a.raft.received() {
			if m.GetType() == raftpb.MsgAppResp {
				return true
			}
		}
		return false
	})
}

// TestQueueFullDrops points a peer at a listener that accepts connections
// but never answers: the lane is stuck in its handshake, the queue fills,
// and Send must drop and report instead of blocking.
func TestQueueFullDrops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	})

	a := startNode(t, 1, 7, "127.0.0.1:0", func(c *Config) {
		c.QueueSize = 8
		c.DialTimeout = time.Minute // the handshake must not give up during the test
	})
	a.tr.AddPeer(2, []string{"http://" + ln.Addr().String()})
	<-accepted // both lanes are now connected and waiting for an answer
	var msgs []*raftpb.Message
	for i := range 100 {
		msgs = append(msgs, msg(raftpb.MsgApp, 1, 2, uint64(i)), msg(raftpb.MsgHeartbeat, 1, 2, uint64(i)))
	}
	done := make(chan struct{})
	go func() {
		a.tr.Send(msgs)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Send blocked on a full queue")
	}
	waitFor(t, "unreachable report", func() bool { return a.raft.unreachableCount(2) > 0 })
	if !a.tr.ActiveSince(2).IsZero() {
		t.Fatal("peer stuck in its handshake reported active")
	}
}

// TestUpdatePeer starts with a URL nobody listens on and switches to the
// right one.
func TestUpdatePeer(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()

	a := startNode(t, 1, 7, "127.0.0.1:0")
	b := startNode(t, 2, 7, "127.0.0.1:0")
	a.tr.AddPeer(2, []string{deadURL, "::bad url"})
	a.tr.AddPeer(3, nil) // no usable URL: must not crash or spin
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 3, 1)})
	waitFor(t, "failed dials", func() bool {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1)})
		return a.raft.unreachableCount(2) > 0
	})
	if len(b.raft.received()) != 0 {
		t.Fatal("message arrived through a dead URL")
	}
	a.tr.UpdatePeer(2, []string{b.url})
	waitFor(t, "message after update", func() bool {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 2)})
		return len(b.raft.received()) > 0
	})
	// Messages to self and unknown peers are ignored, not fatal.
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 1, 1), msg(raftpb.MsgApp, 1, 99, 1), nil})
}

// TestRemovePeerClosesStreams checks that removing a peer stops sending to
// it and drops its inbound streams.
func TestRemovePeerClosesStreams(t *testing.T) {
	a := startNode(t, 1, 7, "127.0.0.1:0")
	b := startNode(t, 2, 7, "127.0.0.1:0")
	connect(a, b)
	waitFor(t, "streams up", func() bool { return !a.tr.ActiveSince(2).IsZero() && !b.tr.ActiveSince(1).IsZero() })
	a.tr.RemovePeer(2)
	if !a.tr.ActiveSince(2).IsZero() {
		t.Fatal("removed peer still reported active")
	}
	// b's streams to a were cut by a; b notices and stops being active
	// until it reconnects.
	b.tr.RemovePeer(1)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1)})
	waitFor(t, "inbound streams closed", func() bool {
		a.tr.mu.RLock()
		defer a.tr.mu.RUnlock()
		return len(a.tr.inbound) == 0
	})
	if len(b.raft.received()) != 0 {
		t.Fatal("message delivered to a removed peer")
	}
}

// TestConcurrentUse calls the API from several goroutines while peers come
// and go, then stops in the middle of it; run with -race.
func TestConcurrentUse(t *testing.T) {
	a := startNode(t, 1, 7, "127.0.0.1:0")
	b := startNode(t, 2, 7, "127.0.0.1:0")
	connect(a, b)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				switch g {
				case 0:
					a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, uint64(i)), msg(raftpb.MsgHeartbeat, 1, 3, uint64(i))})
				case 1:
					a.tr.AddPeer(3, []string{b.url})
					a.tr.UpdatePeer(3, []string{b.url, a.url})
					a.tr.RemovePeer(3)
				case 2:
					a.tr.ActiveSince(2)
					a.tr.SetClusterID(7)
				}
			}
		}()
	}
	waitFor(t, "traffic", func() bool { return len(b.raft.received()) > 100 })
	a.tr.Stop()
	close(done)
	wg.Wait()
}
