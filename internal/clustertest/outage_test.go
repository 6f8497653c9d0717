package clustertest

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
)

// signReq and verifyReq build the bodies of /sign and /verify for name.
func signReq(kid, payload string) api.SignRequest {
	return api.SignRequest{KID: kid, PayloadB3: payload}
}

func randomPayload() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// TestEtcdOutage takes etcd members away under load. One member down: not
// one request fails. Two down (no quorum): sign and rotate answer 503
// StoreUnavailable with Retry-After, fast; verify answers from the cache
// with its age. Both back: every acknowledged rotation is there and the
// nodes serve normally again, without a restart.
func TestEtcdOutage(t *testing.T) {
	c := newCluster(t, 3)
	names := createKeys(t, c, "outage", 2)
	payload := randomPayload()
	// A signature per key, to verify during the outage; every node signs
	// once so that its cache is warm.
	sigs := map[string]api.SignResponse{}
	for _, name := range names {
		for i := range c.nodes {
			ctx, cancel := ctxT(t)
			resp, err := c.client(i).Sign(ctx, signReq(name, payload))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			sigs[name] = *resp
		}
	}

	// Phase 1: one member down, load from every node.
	if err := c.etcd.Kill(0); err != nil {
		t.Fatal(err)
	}
	var (
		failures atomic.Int64
		requests atomic.Int64
		mu       sync.Mutex
		acked    = map[string][]uint32{}
		wg       sync.WaitGroup
	)
	stop := time.Now().Add(4 * time.Second)
	for i := range c.nodes {
		cl := c.client(i)
		wg.Go(func() {
			for n := 0; time.Now().Before(stop); n++ {
				name := names[n%len(names)]
				ctx, cancel := ctxT(t)
				var err error
				if n%5 == 0 {
					var resp *api.RotateResponse
					resp, err = cl.RotateKey(ctx, name, "")
					if err == nil {
						kid, _ := api.ParseKID(resp.KID)
						mu.Lock()
						acked[name] = append(acked[name], kid.Version)
						mu.Unlock()
					}
				} else {
					_, err = cl.Sign(ctx, signReq(name, randomPayload()))
				}
				cancel()
				requests.Add(1)
				// Every error counts, a conflict too: concurrent rotations
				// retry their compare-and-swap inside the node.
				if err != nil {
					failures.Add(1)
					t.Logf("node %d, one member down: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("one etcd member down: %d requests, %d failed", requests.Load(), failures.Load())
	if failures.Load() != 0 {
		t.Errorf("one etcd member down: %d of %d requests failed, want 0", failures.Load(), requests.Load())
	}

	// Phase 2: a second member down, no quorum.
	if err := c.etcd.Kill(1); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	var first503 time.Duration
	for i := range c.nodes {
		name := names[0]
		// Sign fails closed: 503 with Retry-After, each answer bounded.
		deadline := time.Now().Add(15 * time.Second)
		for {
			a := c.post(t, i, "/v1/kms/sign", signReq(name, randomPayload()))
			if a.status == http.StatusServiceUnavailable {
				if a.errorCode() != string(api.CodeStoreUnavailable) || a.header.Get("Retry-After") == "" {
					t.Fatalf("node %d: sign without quorum = %d %s, Retry-After %q", i, a.status, a.body, a.header.Get("Retry-After"))
				}
				if first503 == 0 {
					first503 = time.Since(lost)
				}
				t.Logf("node %d: sign without quorum answered 503 in %v", i, a.elapsed.Round(time.Millisecond))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: sign still answers %d %s 15 s after quorum was lost", i, a.status, a.body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		a := c.post(t, i, "/v1/kms/keys/"+names[1]+"/rotate", map[string]any{})
		if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
			t.Errorf("node %d: rotate without quorum = %d %s", i, a.status, a.body)
		}
		t.Logf("node %d: rotate without quorum answered %d in %v", i, a.status, a.elapsed.Round(time.Millisecond))

		// Verify fails open, from the cache, saying how old it is.
		s := sigs[name]
		v := c.post(t, i, "/v1/kms/verify", api.VerifyRequest{KID: s.KID, PayloadB3: payload, Sigs: s.Sigs})
		if v.status != http.StatusOK || v.field(t, "ok") != true {
			t.Fatalf("node %d: verify without quorum = %d %s", i, v.status, v.body)
		}
		age, ok := v.field(t, "cache_age_ms").(float64)
		hdr, err := strconv.ParseInt(v.header.Get("X-KMS-Cache-Age"), 10, 64)
		if !ok || err != nil || age < 0 || hdr < 0 {
			t.Fatalf("node %d: verify without quorum lacks its cache age: body %s, X-KMS-Cache-Age %q", i, v.body, v.header.Get("X-KMS-Cache-Age"))
		}
		// Readiness names the store as degraded and stays ready.
		resp, err := http.Get(c.nodes[i].addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var rz struct {
			Ready    bool  `json:"ready"`
			Degraded []any `json:"degraded"`
		}
		decodeJSON(t, resp, &rz)
		if !rz.Ready || len(rz.Degraded) == 0 {
			t.Errorf("node %d: /readyz without quorum = ready %v, degraded %v", i, rz.Ready, rz.Degraded)
		}
	}
	t.Logf("quorum lost: first 503 from sign after %v", first503.Round(time.Millisecond))

	// Phase 3: both members back.
	restarting := time.Now()
	for _, m := range []int{0, 1} {
		if err := c.etcd.Restart(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	back := time.Now()
	for i := range c.nodes {
		deadline := time.Now().Add(30 * time.Second)
		for {
			a := c.post(t, i, "/v1/kms/sign", signReq(names[0], randomPayload()))
			if a.status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d: sign still %d %s 30 s after quorum returned", i, a.status, a.body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("quorum back: every node signs again %v after the members restarted, %v after their restart began",
		time.Since(back).Round(time.Millisecond), time.Since(restarting).Round(time.Millisecond))
	for _, name := range names {
		want := uint32(1 + len(acked[name]))
		for i := range c.nodes {
			info := waitVersion(t, c, i, name, currentAtLeast(t, c, name, want))
			if info.CurrentVersion != want {
				t.Errorf("node %d: %s at v%d after %d acknowledged rotations", i, name, info.CurrentVersion, len(acked[name]))
			}
		}
	}
}
