package clustertest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// opInput is one operation of the history: create, rotate or get of key.
type opInput struct {
	op  string // "create", "rotate", "get"
	key string // key name; for create, the name it returned
}

// opOutput is what the operation answered. unknown marks an operation that
// failed in a way that does not say whether it took effect (a timeout, a
// 503): the model lets it have happened or not.
type opOutput struct {
	version  uint32 // create: 1; rotate: the new version; get: current_version
	conflict bool   // rotate lost a race (409): no effect
	unknown  bool
}

// keyModel is the specification of one key: its current version (0 while
// it does not exist). Create makes version 1; a rotate that succeeds makes
// exactly the next version; a lost race changes nothing; a get sees the
// current version. Keys are independent, so the history is partitioned by
// key.
var keyModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			k := op.Input.(opInput).key
			if _, ok := byKey[k]; !ok {
				order = append(order, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var parts [][]porcupine.Operation
		for _, k := range order {
			parts = append(parts, byKey[k])
		}
		return parts
	},
	Init: func() []any { return []any{uint32(0)} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(uint32), input.(opInput), output.(opOutput)
		switch in.op {
		case "create":
			if s == 0 && out.version == 1 {
				return []any{uint32(1)}
			}
		case "rotate":
			switch {
			case s == 0:
			case out.unknown:
				return []any{s, s + 1}
			case out.conflict:
				return []any{s}
			case out.version == s+1:
				return []any{s + 1}
			}
		case "get":
			if s != 0 && out.version == s {
				return []any{s}
			}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(opInput), output.(opOutput)
		switch {
		case out.unknown:
			return fmt.Sprintf("%s(%s) -> ?", in.op, in.key[len(in.key)-6:])
		case out.conflict:
			return fmt.Sprintf("%s(%s) -> conflict", in.op, in.key[len(in.key)-6:])
		}
		return fmt.Sprintf("%s(%s) -> v%d", in.op, in.key[len(in.key)-6:], out.version)
	},
}

// history collects operations from many goroutines.
type history struct {
	mu  sync.Mutex
	ops []porcupine.Operation
}

func (h *history) add(client int, in opInput, call int64, out opOutput) {
	ret := time.Now().UnixNano()
	if out.unknown {
		ret = math.MaxInt64 // it may take effect at any later time
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	h.mu.Unlock()
}

// TestLinearizable runs concurrent creates, rotations and reads of keys
// from two clients on each of three nodes, kills an etcd member in the
// middle and restarts it, and checks the whole history with porcupine.
func TestLinearizable(t *testing.T) {
	c := newCluster(t, 3)
	var (
		h    history
		pool struct {
			sync.Mutex
			names []string
		}
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	pick := func(r *rand.Rand) string {
		pool.Lock()
		defer pool.Unlock()
		if len(pool.names) == 0 {
			return ""
		}
		return pool.names[r.IntN(len(pool.names))]
	}
	const clients = 6
	for id := range clients {
		cl := c.client(id % len(c.nodes))
		r := rand.New(rand.NewPCG(uint64(id), 7))
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				name := pick(r)
				switch x := r.IntN(10); {
				case name == "" || x == 0:
					runCreate(t, cl, id, &h, func(name string) {
						pool.Lock()
						pool.names = append(pool.names, name)
						pool.Unlock()
					})
				case x < 5:
					runRotate(t, cl, id, &h, name)
				default:
					runGet(t, cl, id, &h, name)
				}
			}
		})
	}
	// The history runs for a while on the healthy cluster, then through
	// the loss and return of one etcd member.
	time.Sleep(3 * time.Second)
	if err := c.etcd.Kill(1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := c.etcd.Restart(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	close(done)
	wg.Wait()

	kinds := map[string]int{}
	unknown := 0
	for _, op := range h.ops {
		kinds[op.Input.(opInput).op]++
		if op.Output.(opOutput).unknown {
			unknown++
		}
	}
	t.Logf("history: %d operations (%v), %d of unknown outcome, %d keys", len(h.ops), kinds, unknown, len(pool.names))
	if kinds["rotate"] < 50 || kinds["get"] < 50 || kinds["create"] < 3 {
		t.Fatalf("history too short to say anything: %v", kinds)
	}
	res, info := porcupine.CheckOperationsVerbose(keyModel.ToModel(), h.ops, time.Minute)
	if res != porcupine.Ok {
		// Keep the visualisation of the failing history for a person.
		path := t.TempDir() + "/history.html"
		porcupine.VisualizePath(keyModel.ToModel(), info, path)
		t.Fatalf("the history is not linearizable (%v); porcupine's view: %s", res, path)
	}
}

func runCreate(t *testing.T, cl *client.Client, id int, h *history, added func(string)) {
	call := time.Now().UnixNano()
	ctx, cancel := ctxT(t)
	resp, err := cl.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "linear", Alg: "ed25519"})
	cancel()
	if err != nil {
		// A create whose name we never learnt can be referred to by no
		// later operation: it is left out of the history.
		checkAllowed(t, "create", err)
		return
	}
	name := strings.TrimSuffix(resp.KID, "#v1")
	h.add(id, opInput{op: "create", key: name}, call, opOutput{version: 1})
	added(name)
}

func runRotate(t *testing.T, cl *client.Client, id int, h *history, name string) {
	call := time.Now().UnixNano()
	ctx, cancel := ctxT(t)
	resp, err := cl.RotateKey(ctx, name, "")
	cancel()
	in := opInput{op: "rotate", key: name}
	switch {
	case errors.Is(err, client.ErrConflict):
		h.add(id, in, call, opOutput{conflict: true})
	case err != nil:
		checkAllowed(t, "rotate", err)
		h.add(id, in, call, opOutput{unknown: true})
	default:
		kid, perr := api.ParseKID(resp.KID)
		if perr != nil {
			t.Errorf("rotate answered kid %q: %v", resp.KID, perr)
			return
		}
		h.add(id, in, call, opOutput{version: kid.Version})
	}
}

func runGet(t *testing.T, cl *client.Client, id int, h *history, name string) {
	call := time.Now().UnixNano()
	ctx, cancel := ctxT(t)
	info, err := cl.GetKey(ctx, name)
	cancel()
	if err != nil {
		checkAllowed(t, "get", err) // a failed read has no effect: left out
		return
	}
	h.add(id, opInput{op: "get", key: name}, call, opOutput{version: info.CurrentVersion})
}

// checkAllowed fails the test for an error a healthy or one-member-down
// cluster must never give; store outages and timeouts are allowed (they are
// recorded as unknown outcomes).
func checkAllowed(t *testing.T, what string, err error) {
	if errors.Is(err, client.ErrStoreUnavailable) || errors.Is(err, client.ErrTimeout) || errors.Is(err, client.ErrBackpressure) {
		t.Logf("%s: %v (allowed during the member's loss)", what, err)
		return
	}
	if strings.Contains(err.Error(), "client: ") && !strings.Contains(err.Error(), "ron-kms:") {
		t.Logf("%s: %v (transport)", what, err)
		return
	}
	t.Errorf("%s: %v", what, err)
}
