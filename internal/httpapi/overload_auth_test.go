package httpapi

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

// Requests without a valid token and the in-flight limiter, over a real
// loopback listener: such requests are charged to no tenant.

// TestUnauthenticatedFloodSparesTenants: clients without a token, and
// clients whose forged token names tenant acme, flood the server while the
// genuine clients of acme and of bob sign, each tenant within its fair
// share. No genuine request is refused: the flood is charged to the
// unauthenticated bucket, which holds at most its few slots, and neither
// to acme nor to the set of tenants that divide the limit. (When the
// tenant was read from the unverified token, or the flood counted as a
// tenant, acme's genuine signs got 429.)
func TestUnauthenticatedFloodSparesTenants(t *testing.T) {
	const limit, genuine, perClient, flooders = 16, 4, 40, 16
	var mu sync.Mutex
	inside, peak := map[string]int{}, map[string]int{}
	ls := newLimitedServer(t, limit, func(s *Server) {
		s.testHookServe = func(tenant string, delta int) {
			mu.Lock()
			inside[tenant] += delta
			peak[tenant] = max(peak[tenant], inside[tenant])
			mu.Unlock()
			if delta > 0 {
				// Every request holds its slot a while, as the audit
				// fsync of a denial does.
				time.Sleep(2 * time.Millisecond)
			}
		}
	})
	kidAcme := ls.createKey(t, "acme", "load", "ed25519")
	kidBob := ls.createKey(t, "bob", "load", "ed25519")
	sign := []captoken.Scope{captoken.ScopeSign}
	tokAcme := ls.mint(t, captoken.Restrictions{Tenant: "acme", Scopes: sign})
	tokBob := ls.mint(t, captoken.Restrictions{Tenant: "bob", Scopes: sign})
	// A token naming acme under another root key: it parses, carries the
	// tenant caveat acme, and fails verification.
	otherRoot := make([]byte, captoken.RootKeySize)
	rand.Read(otherRoot)
	forger, err := captoken.NewAuthority(otherRoot, "ron-kms-test")
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := forger.Mint(captoken.Restrictions{Tenant: "acme", Scopes: sign})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := captoken.Inspect(forged); err != nil || !slices.Contains(info.Caveats, "tenant = acme") {
		t.Fatalf("the forged token does not name acme: %+v, %v", info, err)
	}

	var (
		flood401, flood429 atomic.Int64
		failMu             sync.Mutex
		failures           []string
	)
	fail := func(format string, args ...any) {
		failMu.Lock()
		defer failMu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	stopFlood := make(chan struct{})
	var floodWG sync.WaitGroup
	for i := range flooders {
		tok := []string{"", forged}[i%2]
		floodWG.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stopFlood:
					return
				default:
				}
				r, err := ls.post(context.Background(), "/v1/kms/sign", tok, api.SignRequest{KID: kidAcme, PayloadB3: fmt.Sprintf("%064x", n)})
				switch {
				case err == nil && r.Status == 401:
					flood401.Add(1)
				case err == nil && r.Status == 429:
					flood429.Add(1)
				default:
					fail("flood: %d %s %v", r.Status, r.Raw, err)
				}
			}
		})
	}
	// The genuine clients start once the flood is under way.
	deadline := time.Now().Add(10 * time.Second)
	for flood401.Load()+flood429.Load() < flooders && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}

	type tally struct{ ok, shed atomic.Int64 }
	var acme, bob tally
	var genuineWG sync.WaitGroup
	for i := range 2 * genuine {
		tenant, tok, kid, tl := "acme", tokAcme, kidAcme, &acme
		if i%2 == 1 {
			tenant, tok, kid, tl = "bob", tokBob, kidBob, &bob
		}
		genuineWG.Go(func() {
			for j := range perClient {
				r, err := ls.post(context.Background(), "/v1/kms/sign", tok, api.SignRequest{KID: kid, PayloadB3: fmt.Sprintf("%064x", i*perClient+j)})
				switch {
				case err == nil && r.Status == 200:
					tl.ok.Add(1)
				case err == nil && r.Status == 429:
					tl.shed.Add(1)
				default:
					fail("%s: %d %s %v", tenant, r.Status, r.Raw, err)
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { genuineWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Error("the genuine clients did not finish within 60s")
	}
	close(stopFlood)
	floodWG.Wait()
	<-done

	if len(failures) > 0 {
		t.Errorf("unexpected answers: %q", failures)
	}
	if n := acme.shed.Load(); n != 0 {
		t.Errorf("acme: %d of its genuine signs got 429 from the flood, want 0", n)
	}
	if n := bob.shed.Load(); n != 0 {
		t.Errorf("bob: %d of its genuine signs got 429 from the flood, want 0", n)
	}
	if a, b := acme.ok.Load(), bob.ok.Load(); a != genuine*perClient || b != genuine*perClient {
		t.Errorf("genuine signs that succeeded: acme %d, bob %d, want %d each", a, b, genuine*perClient)
	}
	if flood401.Load() == 0 {
		t.Error("no flood request was answered 401")
	}
	mu.Lock()
	unauthPeak := peak[unauthBucket]
	mu.Unlock()
	if c := ls.s.limiter.unauthCap; unauthPeak > c {
		t.Errorf("the unauthenticated bucket held %d slots at once, cap %d", unauthPeak, c)
	}
	if st := ls.s.limiter.state(); st.Total != 0 || st.Active != 0 || st.Unauth != 0 || st.Peak > limit {
		t.Errorf("limiter after the run: %+v", st)
	}
	t.Logf("acme %d ok, bob %d ok; flood %d × 401, %d × 429; unauthenticated peak %d",
		acme.ok.Load(), bob.ok.Load(), flood401.Load(), flood429.Load(), unauthPeak)
}
