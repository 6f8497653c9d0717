package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/etcdtest"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
)

// etcdNodes starts n API servers (each with its own etcd client, keystore
// and loopback listener) on one prefix of the etcd cluster cl: n nodes of
// one deployment, sharing the KEK and the token root key.
func etcdNodes(t *testing.T, cl *etcdtest.Cluster, prefix string, n int) []*harness {
	t.Helper()
	var nodes []*harness
	for i := range n {
		st, err := etcdstore.Open(etcdstore.Options{Endpoints: cl.Endpoints(), Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		var h *harness
		if i == 0 {
			h = newHarnessOn(t, st, nil, nil, keystore.Config{}, nil)
		} else {
			h = newHarnessOn(t, st, nodes[0].sealer, nodes[0].root, keystore.Config{}, nil)
		}
		nodes = append(nodes, h)
	}
	return nodes
}

// timed runs one request and returns its answer and how long it took.
func timed(t *testing.T, h *harness, method, path string, body any) (response, time.Duration) {
	t.Helper()
	start := time.Now()
	r := h.do(t, method, path, h.Admin, body)
	return r, time.Since(start)
}

// failFastBound is the bound on a refused write without quorum.
const failFastBound = 2 * time.Second

// TestEtcdQuorumLoss runs two API nodes on a real three-member etcd
// cluster. With one member killed, no request fails while both nodes sign
// and rotate. With a second member killed (no quorum), sign answers 503
// StoreUnavailable with Retry-After, each answer within 2 s (every answer
// is timed, and the time from the kill to the first 503 is logged), and so
// do rotate and create; verify and key reads answer 200 from the cache with
// cache_age_ms and X-KMS-Cache-Age, and /readyz stays ready with the store
// under degraded. With the members back, both nodes serve normally within
// 10 s without a restart, and a rotation on one reaches the other through
// the watch.
func TestEtcdQuorumLoss(t *testing.T) {
	cl := etcdtest.New(t, 3)
	nodes := etcdNodes(t, cl, "quorum-loss/", 2)
	a, b := nodes[0], nodes[1]
	kid := a.createKey(t, "acme", "pay", "ed25519")
	name := strings.TrimSuffix(kid, "#v1")
	payload := strings.Repeat("ab", 32)
	var sig api.SignResponse
	for _, h := range nodes {
		sig = h.signPayload(t, kid, payload) // warm both caches
	}
	verifyReq := api.VerifyRequest{KID: sig.KID, PayloadB3: payload, Sigs: sig.Sigs}
	for _, h := range nodes {
		if r := h.do(t, "GET", "/v1/kms/keys/"+name, h.Admin, nil); r.Status != http.StatusOK {
			t.Fatalf("get: %d %s", r.Status, r.Raw)
		}
	}

	// One member down: not one request fails, on either node, while
	// both sign and rotate.
	if err := cl.Kill(0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var requests, failures atomic.Int64
	stop := time.Now().Add(3 * time.Second)
	for i, h := range nodes {
		for w := range 2 {
			wg.Go(func() {
				for n := 0; time.Now().Before(stop); n++ {
					path, body := "/v1/kms/sign", any(api.SignRequest{KID: name, PayloadB3: payload})
					if w == 0 && n%4 == 0 {
						path, body = "/v1/kms/keys/"+name+"/rotate", map[string]any{}
					}
					r, err := h.post(t.Context(), path, h.Admin, body)
					requests.Add(1)
					if err != nil || r.Status != http.StatusOK {
						failures.Add(1)
						t.Logf("node %d, one member down: %s: %v %d %s", i, path, err, r.Status, r.Raw)
					}
				}
			})
		}
	}
	wg.Wait()
	t.Logf("one etcd member down: %d requests, %d failed", requests.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Errorf("one etcd member down: %d of %d requests failed, want 0", failures.Load(), requests.Load())
	}
	sig = a.signPayload(t, name, payload)
	verifyReq = api.VerifyRequest{KID: sig.KID, PayloadB3: payload, Sigs: sig.Sigs}
	b.do(t, "POST", "/v1/kms/verify", b.Admin, verifyReq) // b's cache holds the newest version too

	// A second member down: no quorum.
	if err := cl.Kill(1); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for i, h := range nodes {
		var first503 time.Duration
		for n := 0; ; n++ {
			r, took := timed(t, h, "POST", "/v1/kms/sign", api.SignRequest{KID: name, PayloadB3: payload})
			if took >= failFastBound {
				t.Errorf("node %d: sign %d without quorum took %v (%d), want < %v", i, n, took, r.Status, failFastBound)
			}
			if r.Status == http.StatusServiceUnavailable {
				storeUnavailable(t, "sign", r)
				first503 = time.Since(killed)
				if n == 0 {
					t.Logf("node %d: sign refused from the first try, %v after the kill, answered in %v", i, first503.Round(time.Millisecond), took.Round(time.Millisecond))
				} else {
					t.Logf("node %d: first 503 from sign %v after the kill (after %d signatures), answered in %v", i, first503.Round(time.Millisecond), n, took.Round(time.Millisecond))
				}
				break
			}
			if r.Status != http.StatusOK {
				t.Fatalf("node %d: sign without quorum: %d %s", i, r.Status, r.Raw)
			}
			if time.Since(killed) > 15*time.Second {
				t.Fatalf("node %d: sign still answers 200 15 s after quorum was lost", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, c := range []struct {
			what, path string
			body       any
		}{
			{"sign", "/v1/kms/sign", api.SignRequest{KID: name, PayloadB3: payload}},
			{"rotate", "/v1/kms/keys/" + name + "/rotate", map[string]any{}},
			{"create", "/v1/kms/keys", api.CreateKeyRequest{Tenant: "acme", Purpose: "pay", Alg: "ed25519"}},
		} {
			r, took := timed(t, h, "POST", c.path, c.body)
			t.Logf("node %d: %s without quorum: %d in %v", i, c.what, r.Status, took.Round(time.Microsecond))
			storeUnavailable(t, c.what, r)
			if took >= failFastBound {
				t.Errorf("node %d: %s without quorum took %v, want < %v", i, c.what, took, failFastBound)
			}
		}
		v, took := timed(t, h, "POST", "/v1/kms/verify", verifyReq)
		if v.Status != http.StatusOK || v.JSON["ok"] != true {
			t.Fatalf("node %d: verify without quorum: %d %s", i, v.Status, v.Raw)
		}
		age := cacheAgeOf(t, "verify", v)
		t.Logf("node %d: verify without quorum: 200 in %v, cache_age_ms %d", i, took.Round(time.Microsecond), age)
		g := h.do(t, "GET", "/v1/kms/keys/"+name, h.Admin, nil)
		if g.Status != http.StatusOK {
			t.Fatalf("node %d: get without quorum: %d %s", i, g.Status, g.Raw)
		}
		cacheAgeOf(t, "get", g)
		r, rz := h.readiness(t)
		if r.Status != http.StatusOK || !rz.Ready || len(rz.Degraded) != 1 || rz.Degraded[0].Component != "store" {
			t.Fatalf("node %d: /readyz without quorum: %d %s", i, r.Status, r.Raw)
		}
		t.Logf("node %d: /readyz without quorum: %s", i, r.Raw)
		if r := h.do(t, "GET", "/livez", "", nil); r.Status != http.StatusOK {
			t.Fatalf("node %d: /livez without quorum: %d", i, r.Status)
		}
	}

	// Member 0 back is quorum back (Restart returns once a linearizable
	// read through it succeeds); the time ron-kms takes from there is what
	// the 10 s bound is about. The member's own start is logged apart.
	restarting := time.Now()
	if err := cl.Restart(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	t.Logf("etcd member 0 restarted and quorum back in %v", back.Sub(restarting).Round(time.Millisecond))
	for i, h := range nodes {
		for {
			r := h.do(t, "POST", "/v1/kms/sign", h.Admin, api.SignRequest{KID: name, PayloadB3: payload})
			if r.Status == http.StatusOK {
				break
			}
			if time.Since(back) > 30*time.Second {
				t.Fatalf("node %d: sign still %d %s 30 s after quorum returned", i, r.Status, r.Raw)
			}
			time.Sleep(20 * time.Millisecond)
		}
		took := time.Since(back)
		t.Logf("node %d: signs again %v after quorum was back (%v after the restart began)", i, took.Round(time.Millisecond), time.Since(restarting).Round(time.Millisecond))
		if took > 10*time.Second {
			t.Errorf("node %d: normal service %v after quorum returned, want within 10 s", i, took)
		}
		if _, rz := h.readiness(t); len(rz.Degraded) != 0 {
			t.Errorf("node %d: /readyz after the outage: %+v", i, rz)
		}
		notFromCache(t, "verify", h.do(t, "POST", "/v1/kms/verify", h.Admin, verifyReq))
	}
	if err := cl.Restart(t.Context(), 1); err != nil {
		t.Fatal(err)
	}

	// The watch is back: a rotation on b reaches a's sign path.
	rotated := time.Now()
	newKID := b.rotate(t, name)
	for {
		s := a.signPayload(t, name, payload)
		if s.KID == newKID {
			break
		}
		if time.Since(rotated) > 10*time.Second {
			t.Fatalf("node a still signs with %s 10 s after node b rotated to %s", s.KID, newKID)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("a rotation on b reached a's sign path in %v", time.Since(rotated).Round(time.Millisecond))
}

// TestEtcdConcurrentRotations: two API nodes on one etcd prefix, three
// rotators each, all on one key. Every rotation succeeds (a lost race is
// retried on top of the winner), the versions are contiguous from 1, each
// answer names a distinct version, and both nodes agree. The same op_id
// sent to both nodes at once has one effect and one answer.
func TestEtcdConcurrentRotations(t *testing.T) {
	cl := etcdtest.New(t, 3)
	nodes := etcdNodes(t, cl, "rotations/", 2)
	kid := nodes[0].createKey(t, "acme", "rot", "ed25519")
	name := strings.TrimSuffix(kid, "#v1")
	const perRotator, rotators = 10, 3
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]int{}
	)
	rotate := func(h *harness, opID string) (api.RotateResponse, bool) {
		r, err := h.post(t.Context(), "/v1/kms/keys/"+name+"/rotate", h.Admin, api.RotateRequest{OpID: opID})
		var out api.RotateResponse
		if err != nil || r.Status != http.StatusOK || json.Unmarshal(r.Raw, &out) != nil {
			t.Errorf("rotate: %v %d %s", err, r.Status, r.Raw)
			return out, false
		}
		return out, true
	}
	start := time.Now()
	for _, h := range nodes {
		for range rotators {
			wg.Go(func() {
				for range perRotator {
					if out, ok := rotate(h, ""); ok {
						mu.Lock()
						seen[out.KID]++
						mu.Unlock()
					}
				}
			})
		}
	}
	wg.Wait()
	total := len(nodes) * rotators * perRotator
	t.Logf("%d concurrent rotations from %d nodes in %v", total, len(nodes), time.Since(start).Round(time.Millisecond))
	for kid, n := range seen {
		if n != 1 {
			t.Errorf("%s answered %d rotations", kid, n)
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct versions answered, want %d", len(seen), total)
	}
	for i, h := range nodes {
		info := h.getKeyInfo(t, name)
		if info.CurrentVersion != uint32(1+total) || len(info.Versions) != 1+total {
			t.Fatalf("node %d: current v%d, %d versions; want v%d", i, info.CurrentVersion, len(info.Versions), 1+total)
		}
		for j, v := range info.Versions {
			if v.Version != uint32(j+1) {
				t.Fatalf("node %d: version %d is numbered %d", i, j+1, v.Version)
			}
		}
	}

	answers := make(chan api.RotateResponse, 6)
	for i := range 6 {
		wg.Go(func() {
			if out, ok := rotate(nodes[i%2], "one-op"); ok {
				answers <- out
			}
		})
	}
	wg.Wait()
	close(answers)
	first := <-answers
	for a := range answers {
		if a != first {
			t.Fatalf("one op_id answered %+v and %+v", first, a)
		}
	}
	for i, h := range nodes {
		if info := h.getKeyInfo(t, name); info.CurrentVersion != uint32(2+total) {
			t.Fatalf("node %d: one op_id from two nodes left v%d, want v%d (one effect)", i, info.CurrentVersion, 2+total)
		}
	}
}
