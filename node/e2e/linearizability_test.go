package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"

	"etcdctl-wizard/node/nodetest"
)

// kvInput and kvOutput are one operation on one key of the history.
type kvInput struct {
	key   string
	put   bool
	value string
}

type kvOutput struct {
	value   string
	unknown bool // the put's outcome is unknown (error or timeout)
}

// registerModel is a map of registers, partitioned by key: puts write, gets
// read the latest write. A put with an unknown outcome may or may not have
// happened, which porcupine handles because its return time is "never".
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(kvInput), output.(kvOutput)
		if in.put {
			return true, in.value
		}
		return out.value == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		if in.put {
			return fmt.Sprintf("put(%s, %s)", in.key, in.value)
		}
		return fmt.Sprintf("get(%s) -> %s", in.key, out.value)
	},
}

// TestLinearizableUnderFailures records a history of puts and linearizable
// gets from concurrent clients on all members while a follower and then the
// leader are killed and restarted, and checks it with porcupine, the checker
// etcd's own robustness tests use.
func TestLinearizableUnderFailures(t *testing.T) {
	c := nodetest.StartCluster(t, nodetest.ClusterOptions{Binary: nodetest.BuildNode(t)})
	start := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const clients = 8
	for i := 0; i < clients; i++ {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.Endpoints()[i%3]}, DialTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(id int, cli *clientv3.Client) {
			defer wg.Done()
			defer cli.Close()
			rng := rand.New(rand.NewSource(int64(id)))
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				in := kvInput{key: fmt.Sprintf("k%d", rng.Intn(3)), put: rng.Intn(2) == 0, value: fmt.Sprintf("c%d-%d", id, seq)}
				call := time.Since(start).Nanoseconds()
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				var out kvOutput
				var err error
				if in.put {
					_, err = cli.Put(ctx, in.key, in.value)
				} else {
					var resp *clientv3.GetResponse
					if resp, err = cli.Get(ctx, in.key); err == nil && len(resp.Kvs) > 0 {
						out.value = string(resp.Kvs[0].Value)
					}
				}
				cancel()
				ret := time.Since(start).Nanoseconds()
				if err != nil {
					if !in.put {
						continue // a failed read observed nothing
					}
					out.unknown, ret = true, math.MaxInt64
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: id, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}(i, cli)
	}
	recorded := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(history)
	}
	killFollowerThenLeader(t, c, "history", recorded, [4]int{300, 700, 1100, 1500})
	close(stop)
	wg.Wait()

	res, info := porcupine.CheckOperationsVerbose(registerModel, history, 60*time.Second)
	if res != porcupine.Ok {
		path := t.TempDir() + "/history.html"
		_ = porcupine.VisualizePath(registerModel, info, path)
		t.Fatalf("history of %d operations is %s (visualization: %s)", len(history), res, path)
	}
	t.Logf("%d operations linearizable", len(history))
}

// TestRegisterModelRejectsStaleRead makes sure the checker above can fail:
// a read that returns an overwritten value after the overwrite completed.
func TestRegisterModelRejectsStaleRead(t *testing.T) {
	h := []porcupine.Operation{
		{ClientId: 0, Input: kvInput{key: "k", put: true, value: "a"}, Call: 0, Output: kvOutput{}, Return: 10},
		{ClientId: 0, Input: kvInput{key: "k", put: true, value: "b"}, Call: 20, Output: kvOutput{}, Return: 30},
		{ClientId: 1, Input: kvInput{key: "k"}, Call: 40, Output: kvOutput{value: "a"}, Return: 50},
	}
	if porcupine.CheckOperations(registerModel, h) {
		t.Fatal("a stale read was accepted as linearizable")
	}
	h[2].Output = kvOutput{value: "b"}
	if !porcupine.CheckOperations(registerModel, h) {
		t.Fatal("a correct history was rejected")
	}
}
