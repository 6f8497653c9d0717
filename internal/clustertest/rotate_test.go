package clustertest

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// createKeys makes n ed25519 keys through node 0 and returns their names.
func createKeys(t *testing.T, c *cluster, purpose string, n int) []string {
	t.Helper()
	cl := c.client(0)
	var names []string
	for range n {
		ctx, cancel := ctxT(t)
		resp, err := cl.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: purpose, Alg: "ed25519"})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimSuffix(resp.KID, "#v1"))
	}
	return names
}

// rotateUntilDone rotates name through cl, retrying while it loses a race
// (409 Conflict), and returns the version it made. stop ends it early.
func rotateUntilDone(t *testing.T, cl *client.Client, name string) (uint32, error) {
	for {
		ctx, cancel := ctxT(t)
		resp, err := cl.RotateKey(ctx, name, "")
		cancel()
		if errors.Is(err, client.ErrConflict) {
			continue
		}
		if err != nil {
			return 0, err
		}
		kid, err := api.ParseKID(resp.KID)
		if err != nil {
			return 0, err
		}
		return kid.Version, nil
	}
}

// waitVersion polls node i until name's current version is want, and
// returns its KeyInfo.
func waitVersion(t *testing.T, c *cluster, i int, name string, want uint32) *api.KeyInfo {
	t.Helper()
	cl := c.client(i)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := ctxT(t)
		info, err := cl.GetKey(ctx, name)
		cancel()
		if err == nil && info.CurrentVersion == want {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: %s at version %v (%v), want %d", i, name, currentOf(info), err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func currentOf(info *api.KeyInfo) any {
	if info == nil {
		return nil
	}
	return info.CurrentVersion
}

// checkContiguous checks that every node sees name with versions 1..want
// and that the versions acknowledged to the rotators are exactly 2..want,
// each once.
func checkContiguous(t *testing.T, c *cluster, name string, acked []uint32, want uint32) {
	t.Helper()
	seen := map[uint32]int{}
	for _, v := range acked {
		seen[v]++
	}
	for v := uint32(2); v <= want; v++ {
		if seen[v] != 1 {
			t.Errorf("%s: version %d acknowledged %d times, want once", name, v, seen[v])
		}
	}
	if len(acked) != int(want-1) {
		t.Errorf("%s: %d rotations acknowledged, current version %d", name, len(acked), want)
	}
	for i := range c.nodes {
		info := waitVersion(t, c, i, name, want)
		if len(info.Versions) != int(want) {
			t.Fatalf("node %d: %s has %d versions, want %d", i, name, len(info.Versions), want)
		}
		for j, v := range info.Versions {
			if v.Version != uint32(j+1) {
				t.Fatalf("node %d: %s versions %v are not 1..%d", i, name, info.Versions, want)
			}
		}
	}
}

// TestConcurrentRotations: every node rotates the same keys at once. The
// versions come out contiguous, none twice, none lost, on every node.
func TestConcurrentRotations(t *testing.T) {
	c := newCluster(t, 3)
	names := createKeys(t, c, "rotations", 3)
	const perNode = 10
	var (
		mu    sync.Mutex
		acked = map[string][]uint32{}
		wg    sync.WaitGroup
	)
	for i := range c.nodes {
		cl := c.client(i)
		wg.Go(func() {
			for range perNode {
				for _, name := range names {
					v, err := rotateUntilDone(t, cl, name)
					if err != nil {
						t.Errorf("node %d: rotate %s: %v", i, name, err)
						return
					}
					mu.Lock()
					acked[name] = append(acked[name], v)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, name := range names {
		checkContiguous(t, c, name, acked[name], uint32(1+len(c.nodes)*perNode))
	}
}

// TestNodeKilledMidRotation: one node is SIGKILLed while all three rotate,
// with rotations of its own in flight (four clients keep it busy, and the
// kill comes from outside them). The other two go on without an error, no
// version is made twice, and the killed node's audit chain verifies after
// it restarts.
func TestNodeKilledMidRotation(t *testing.T) {
	c := newCluster(t, 3)
	names := createKeys(t, c, "kill", 2)
	var (
		mu       sync.Mutex
		acked    = map[string][]uint32{}
		killed   = make(chan struct{})
		trigger  = make(chan struct{})
		inflight atomic.Int64 // node 1's rotations under way
		wg       sync.WaitGroup
	)
	go func() {
		<-trigger
		t.Logf("killing node 1 with %d of its rotations in flight", inflight.Load())
		c.nodes[1].kill()
		close(killed)
	}()
	for i := range c.nodes {
		cl := c.client(i)
		workers := 1
		if i == 1 {
			workers = 4
		}
		for range workers {
			wg.Go(func() {
				for r := 0; r < 15; r++ {
					for _, name := range names {
						if i == 1 {
							inflight.Add(1)
						}
						v, err := rotateUntilDone(t, cl, name)
						if i == 1 {
							inflight.Add(-1)
						}
						if err != nil {
							if i == 1 {
								return // the node that is killed: its errors are expected
							}
							t.Errorf("node %d: rotate %s: %v", i, name, err)
							return
						}
						mu.Lock()
						acked[name] = append(acked[name], v)
						n := len(acked[names[0]])
						mu.Unlock()
						if i == 0 && n >= 8 {
							select {
							case <-trigger:
							default:
								close(trigger)
							}
						}
					}
				}
			})
		}
	}
	wg.Wait()
	select {
	case <-killed:
	default:
		t.Fatal("node 1 was never killed")
	}
	if t.Failed() {
		return
	}
	c.start(1)
	for _, name := range names {
		// A rotation node 1 committed but never acknowledged shows as a
		// version nobody was told of: the current version then exceeds the
		// acknowledged count by that many.
		info := waitVersion(t, c, 0, name, currentAtLeast(t, c, name, uint32(1+len(acked[name]))))
		want := info.CurrentVersion
		seen := map[uint32]bool{}
		for _, v := range acked[name] {
			if seen[v] {
				t.Errorf("%s: version %d acknowledged twice", name, v)
			}
			seen[v] = true
		}
		// At most one per client of node 1 that had a rotation in flight.
		if extra := int(want) - 1 - len(acked[name]); extra < 0 || extra > 4 {
			t.Errorf("%s: current version %d after %d acknowledged rotations", name, want, len(acked[name]))
		}
		for i := range c.nodes {
			waitVersion(t, c, i, name, want)
		}
	}
	c.nodes[1].stop()
	if out, err := auditVerify(t, c.nodes[1].dataDir); err != nil {
		t.Fatalf("audit verify of the killed node: %v\n%s", err, out)
	}
}

// currentAtLeast returns node 0's current version of name once it is at
// least min.
func currentAtLeast(t *testing.T, c *cluster, name string, min uint32) uint32 {
	t.Helper()
	cl := c.client(0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := ctxT(t)
		info, err := cl.GetKey(ctx, name)
		cancel()
		if err == nil && info.CurrentVersion >= min {
			return info.CurrentVersion
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: current version %v (%v), want at least %d", name, currentOf(info), err, min)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
