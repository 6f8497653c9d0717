package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/metrics"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

// Overload protection over a real loopback listener (overload.go). Nothing
// here asserts on timing beyond "within 10 s".

// limitedServer is a harness whose Server is at hand, with a small
// in-flight limit and, optionally, test routes registered before serving.
type limitedServer struct {
	*harness
	s *Server
}

func newLimitedServer(t *testing.T, maxInflight int, setup func(s *Server)) *limitedServer {
	t.Helper()
	st := memstore.New()
	kek := make([]byte, seal.KEKSize)
	rand.Read(kek)
	sealer, err := seal.NewAESGCM(kek)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.Open(context.Background(), keystore.Config{Store: st, Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	root := make([]byte, captoken.RootKeySize)
	rand.Read(root)
	auth, err := captoken.NewAuthority(root, "ron-kms-test")
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := auth.Mint(captoken.Restrictions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(ks, auth, metrics.New(), slog.New(slog.DiscardHandler), Options{MaxInflight: maxInflight})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	srv := httptest.NewUnstartedServer(s)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the panic test's panic
	srv.Start()
	t.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return &limitedServer{
		harness: &harness{URL: srv.URL, Admin: admin, Auth: auth, Store: st, KS: ks, client: client},
		s:       s,
	}
}

// post sends one POST from any goroutine (do is for the test goroutine
// only) and reads the whole answer. An empty token sends no Authorization
// header.
func (h *harness) post(ctx context.Context, path, token string, body any) (response, error) {
	enc, err := json.Marshal(body)
	if err != nil {
		return response{}, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", h.URL+path, bytes.NewReader(enc))
	if err != nil {
		return response{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}, nil
}

// metric scrapes /metrics and returns the value of the sample named
// exactly name (with its labels), or -1 when it is absent.
func (ls *limitedServer) metric(name string) (float64, error) {
	resp, err := ls.client.Get(ls.URL + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("/metrics: %d", resp.StatusCode)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return -1, nil
}

// concurrency counts the requests inside the limited region, as seen by
// the test hook, and their peak.
type concurrency struct {
	now, peak atomic.Int64
}

func (c *concurrency) hook(_ string, delta int) {
	n := c.now.Add(int64(delta))
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
}

// sampleGauge scrapes kms_inflight_requests until stop is closed and
// returns the largest value seen.
func (ls *limitedServer) sampleGauge(stop <-chan struct{}) <-chan float64 {
	out := make(chan float64, 1)
	go func() {
		most := 0.0
		for {
			select {
			case <-stop:
				out <- most
				return
			default:
			}
			if v, err := ls.metric("kms_inflight_requests"); err == nil {
				most = max(most, v)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return out
}

func heapInuse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// waitGoroutines waits (10 s at most) for the goroutine count to come back
// to baseline plus a little slack.
func waitGoroutines(t *testing.T, baseline int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline+5 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines 10s after the run, baseline %d:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkBackpressure checks a 429 answer: status, Retry-After, envelope.
func checkBackpressure(t *testing.T, r response) {
	t.Helper()
	if r.Status != http.StatusTooManyRequests {
		t.Errorf("status %d, want 429: %s", r.Status, r.Raw)
	}
	if ra := r.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After = %q, want 1", ra)
	}
	checkEnvelope(t, r, api.CodeBackpressure)
}

// TestOverload: 64 clients sign in a loop against a limit of 4. While the
// four admitted requests are held inside the server, the others are
// refused at once with 429 (so refusal never waits for capacity); then the
// run goes on freely. Every answer is 200 or a well-formed 429, at most 4
// requests are ever inside, the metrics agree, and memory and goroutines
// come back.
func TestOverload(t *testing.T) {
	const limit, clients, perClient = 4, 64, 20
	var inside concurrency
	var hold atomic.Bool        // hold admitted requests until gate closes
	gate := make(chan struct{}) // closed at the first 429
	var closeGate sync.Once
	ls := newLimitedServer(t, limit, func(s *Server) {
		s.testHookServe = func(tenant string, delta int) {
			inside.hook(tenant, delta)
			if delta > 0 && hold.Load() {
				<-gate
			}
		}
	})
	kid := ls.createKey(t, "acme", "load", "ed25519")
	// Warm up (connections, caches) one request at a time, then measure the
	// baseline without the client's idle connections.
	for range 8 {
		ls.signPayload(t, kid, strings.Repeat("ab", 32))
	}
	ls.client.Transport.(*http.Transport).CloseIdleConnections()
	baseHeap, baseG := heapInuse(), runtime.NumGoroutine()
	hold.Store(true)

	stopSampling := make(chan struct{})
	gaugePeak := ls.sampleGauge(stopSampling)
	var (
		mu        sync.Mutex
		ok, shed  int
		refused   []response // kept for envelope checks (first 32)
		otherErrs []string
		whileFull atomic.Bool // a 429 arrived while all slots were held
	)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for j := range perClient {
				r, err := ls.post(context.Background(), "/v1/kms/sign", ls.Admin,
					api.SignRequest{KID: kid, PayloadB3: fmt.Sprintf("%064x", i*perClient+j)})
				mu.Lock()
				switch {
				case err != nil:
					otherErrs = append(otherErrs, err.Error())
				case r.Status == 200:
					ok++
				case r.Status == 429:
					shed++
					if inside.now.Load() == limit {
						whileFull.Store(true)
					}
					if len(refused) < 32 {
						refused = append(refused, r)
					}
					closeGate.Do(func() { close(gate) })
				default:
					otherErrs = append(otherErrs, fmt.Sprintf("%d %s", r.Status, r.Raw))
				}
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		closeGate.Do(func() { close(gate) })
		t.Fatal("the overload run did not finish within 60s")
	}
	close(stopSampling)

	if len(otherErrs) > 0 {
		t.Fatalf("%d answers neither 200 nor 429, e.g. %s", len(otherErrs), otherErrs[0])
	}
	if ok+shed != clients*perClient || ok == 0 || shed == 0 {
		t.Fatalf("ok %d, 429 %d of %d", ok, shed, clients*perClient)
	}
	if !whileFull.Load() {
		t.Error("no 429 arrived while every slot was held: refusal waited for capacity")
	}
	for _, r := range refused {
		checkBackpressure(t, r)
	}
	if p := inside.peak.Load(); p > limit {
		t.Errorf("%d requests inside at once, limit %d", p, limit)
	}
	if p := ls.s.limiter.state().Peak; p > limit {
		t.Errorf("limiter peak %d, limit %d", p, limit)
	}
	if g := <-gaugePeak; g > limit {
		t.Errorf("kms_inflight_requests reached %v, limit %d", g, limit)
	}
	if v, err := ls.metric(`kms_rejected_total{reason="Backpressure"}`); err != nil || int(v) != shed {
		t.Errorf(`kms_rejected_total{reason="Backpressure"} = %v (%v), want %d`, v, err, shed)
	}
	if v, err := ls.metric("kms_inflight_requests"); err != nil || v != 0 {
		t.Errorf("kms_inflight_requests = %v (%v) after the run, want 0", v, err)
	}
	if st := ls.s.limiter.state(); st.Total != 0 || st.Queued != 0 || st.Active != 0 {
		t.Errorf("limiter after the run: %+v", st)
	}
	ls.client.Transport.(*http.Transport).CloseIdleConnections()
	waitGoroutines(t, baseG)
	if h := heapInuse(); h > baseHeap+64<<20 {
		t.Errorf("heap in use grew from %d to %d bytes", baseHeap, h)
	}
	t.Logf("ok %d, 429 %d", ok, shed)
}

// TestNoisyNeighbour: tenant a at ten times tenant b's concurrency (40
// clients against 4, limit 8). Every one of b's requests succeeds: b stays
// within its fair share (4 of 8) and a's excess is what is refused.
func TestNoisyNeighbour(t *testing.T) {
	const limit, aClients, bClients, bPerClient = 8, 40, 4, 50
	var inside concurrency
	ls := newLimitedServer(t, limit, func(s *Server) {
		s.testHookServe = func(tenant string, delta int) {
			inside.hook(tenant, delta)
			if delta > 0 {
				// Every request holds its slot a little longer, as if the
				// store were slow, so that the server and not the clients
				// (which share this machine's CPUs) is the bottleneck.
				time.Sleep(5 * time.Millisecond)
			}
		}
	})
	kidA := ls.createKey(t, "a", "load", "ed25519")
	kidB := ls.createKey(t, "b", "load", "ed25519")
	sign := []captoken.Scope{captoken.ScopeSign}
	tokA := ls.mint(t, captoken.Restrictions{Tenant: "a", Scopes: sign})
	tokB := ls.mint(t, captoken.Restrictions{Tenant: "b", Scopes: sign})

	var aOK, aShed, bOK atomic.Int64
	var mu sync.Mutex
	var failures []string
	fail := func(who string, r response, err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf("%s: %d %s %v", who, r.Status, r.Raw, err))
		}
	}
	stopA := make(chan struct{})
	var aWG, bWG sync.WaitGroup
	for range aClients {
		aWG.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stopA:
					return
				default:
				}
				r, err := ls.post(context.Background(), "/v1/kms/sign", tokA, api.SignRequest{KID: kidA, PayloadB3: fmt.Sprintf("%064x", n)})
				switch {
				case err == nil && r.Status == 200:
					aOK.Add(1)
				case err == nil && r.Status == 429:
					aShed.Add(1)
				default:
					fail("a", r, err)
				}
			}
		})
	}
	for i := range bClients {
		bWG.Go(func() {
			for j := range bPerClient {
				r, err := ls.post(context.Background(), "/v1/kms/sign", tokB, api.SignRequest{KID: kidB, PayloadB3: fmt.Sprintf("%064x", i*bPerClient+j)})
				if err == nil && r.Status == 200 {
					bOK.Add(1)
				} else {
					fail("b", r, err)
				}
			}
		})
	}
	bDone := make(chan struct{})
	go func() { bWG.Wait(); close(bDone) }()
	deadline := time.After(60 * time.Second)
	select {
	case <-bDone:
	case <-deadline:
		t.Error("b's clients did not finish within 60s")
	}
	// Let a run until it has been refused at least once (it is at ten times
	// b's load; without refusals the test proves nothing).
	for aShed.Load() == 0 {
		select {
		case <-deadline:
			t.Error("a was never refused")
		case <-time.After(time.Millisecond):
			continue
		}
		break
	}
	close(stopA)
	aWG.Wait()

	if len(failures) > 0 {
		t.Errorf("unexpected answers: %q", failures)
	}
	if got := bOK.Load(); got != bClients*bPerClient {
		t.Errorf("b: %d of %d requests succeeded; b's error rate must be zero", got, bClients*bPerClient)
	}
	if aOK.Load() == 0 || aShed.Load() == 0 {
		t.Errorf("a: %d ok, %d refused; want both", aOK.Load(), aShed.Load())
	}
	if p := inside.peak.Load(); p > limit {
		t.Errorf("%d requests inside at once, limit %d", p, limit)
	}
	if st := ls.s.limiter.state(); st.Total != 0 || st.Active != 0 {
		t.Errorf("limiter after the run: %+v", st)
	}
	t.Logf("a: %d ok, %d refused; b: %d ok", aOK.Load(), aShed.Load(), bOK.Load())
}

// TestLimiterNoLeakOnPanicOrDisconnect: a handler that panics, a client
// that goes away mid-request and a client that goes away while queued all
// give their slot (or place) back.
func TestLimiterNoLeakOnPanicOrDisconnect(t *testing.T) {
	entered := make(chan struct{}, 1)
	ls := newLimitedServer(t, 1, func(s *Server) {
		s.limiter.maxWait = forever // only a disconnect ends a wait
		s.mux.HandleFunc("POST /v1/kms/test/panic", func(http.ResponseWriter, *http.Request) {
			panic("test: handler panic")
		})
		s.mux.HandleFunc("POST /v1/kms/test/block", func(_ http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // the body is read: the disconnect is seen
			entered <- struct{}{}
			<-r.Context().Done()
		})
	})
	empty := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := ls.s.limiter.state()
			g, err := ls.metric("kms_inflight_requests")
			if st.Total == 0 && st.Queued == 0 && st.Active == 0 && err == nil && g == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: limiter %+v, gauge %v (%v) after 10s", what, st, g, err)
			}
			time.Sleep(time.Millisecond)
		}
	}

	if _, err := ls.post(context.Background(), "/v1/kms/test/panic", ls.Admin, struct{}{}); err == nil {
		t.Fatal("a panicking handler answered")
	}
	empty("after a panic")

	// A client that disconnects while its request is being served.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := ls.post(ctx, "/v1/kms/test/block", ls.Admin, struct{}{})
		errc <- err
	}()
	<-entered
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked request: %v", err)
	}
	empty("after a disconnect while served")

	// A client that disconnects while queued: tenant a holds the only slot,
	// tenant b (within its share of 1) waits for it and goes away.
	tokA := ls.mint(t, captoken.Restrictions{Tenant: "a"})
	tokB := ls.mint(t, captoken.Restrictions{Tenant: "b"})
	ctxA, cancelA := context.WithCancel(context.Background())
	go func() {
		_, err := ls.post(ctxA, "/v1/kms/test/block", tokA, struct{}{})
		errc <- err
	}()
	<-entered
	ctxB, cancelB := context.WithCancel(context.Background())
	errcB := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctxB, "GET", ls.URL+"/v1/kms/audit/key", nil)
		req.Header.Set("Authorization", "Bearer "+tokB)
		resp, err := ls.client.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		errcB <- err
	}()
	waitState(t, ls.s.limiter, "b queued", func(s limiterState) bool { return s.Queued == 1 })
	cancelB()
	if err := <-errcB; !errors.Is(err, context.Canceled) {
		t.Fatalf("queued request: %v", err)
	}
	waitState(t, ls.s.limiter, "b gone from the queue", func(s limiterState) bool { return s.Queued == 0 && s.Active == 1 })
	cancelA()
	<-errc
	empty("after a disconnect while queued")

	// And the server still serves.
	if r := ls.do(t, "GET", "/v1/kms/audit/key", ls.Admin, nil); r.Status != 200 {
		t.Fatalf("after all that: %d %s", r.Status, r.Raw)
	}
}

// TestProbesNeverLimited: with every slot held, health, readiness, metrics
// and version still answer, and unknown routes still get their 404.
func TestProbesNeverLimited(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	ls := newLimitedServer(t, 1, func(s *Server) {
		s.mux.HandleFunc("POST /v1/kms/test/block", func(http.ResponseWriter, *http.Request) {
			entered <- struct{}{}
			<-release
		})
	})
	errc := make(chan error, 1)
	go func() {
		_, err := ls.post(context.Background(), "/v1/kms/test/block", ls.Admin, struct{}{})
		errc <- err
	}()
	<-entered
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/version"} {
		if r := ls.do(t, "GET", p, "", nil); r.Status != 200 {
			t.Errorf("GET %s with every slot held: %d %s", p, r.Status, r.Raw)
		}
	}
	if r := ls.do(t, "GET", "/nowhere", "", nil); r.Status != 404 {
		t.Errorf("GET /nowhere: %d", r.Status)
	}
	r := ls.do(t, "GET", "/v1/kms/audit/key", ls.Admin, nil)
	checkBackpressure(t, r)
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestChargedTenant: a request is charged to the tenant of its verified
// token, else (a verified token for every tenant, or one allowing none) to
// the shared bucket, else (no valid token) to the unauthenticated bucket;
// never to a tenant that an unverified token or the path names.
func TestChargedTenant(t *testing.T) {
	var mu sync.Mutex
	var charged []string
	ls := newLimitedServer(t, 8, func(s *Server) {
		s.testHookServe = func(tenant string, delta int) {
			if delta > 0 {
				mu.Lock()
				charged = append(charged, tenant)
				mu.Unlock()
			}
		}
	})
	other, err := captoken.NewAuthority(bytes.Repeat([]byte{1}, captoken.RootKeySize), "ron-kms-test")
	if err != nil {
		t.Fatal(err)
	}
	tokA := ls.mint(t, captoken.Restrictions{Tenant: "a"})
	forgedA, _, err := other.Mint(captoken.Restrictions{Tenant: "a"})
	if err != nil {
		t.Fatal(err)
	}
	conflict, err := captoken.Attenuate(tokA, captoken.Restrictions{Tenant: "b"})
	if err != nil {
		t.Fatal(err)
	}
	const keyB = "/v1/kms/keys/b/p/ed25519/01890a5d-ac96-774b-bcce-b302099a8057"
	const keyA = "/v1/kms/keys/a/p/ed25519/01890a5d-ac96-774b-bcce-b302099a8057"
	for _, tc := range []struct {
		what, path, token, want string
	}{
		{"tenant token", "/v1/kms/audit/key", tokA, "a"},
		{"tenant token, other tenant's path", keyB, tokA, "a"},
		{"admin token", "/v1/kms/audit/key", ls.Admin, sharedBucket},
		{"admin token, tenant path", keyB, ls.Admin, sharedBucket},
		{"token allowing no tenant", "/v1/kms/audit/key", conflict, sharedBucket},
		{"forged tenant token", "/v1/kms/audit/key", forgedA, unauthBucket},
		{"forged tenant token, its tenant's path", keyA, forgedA, unauthBucket},
		{"garbage", "/v1/kms/audit/key", "garbage", unauthBucket},
		{"no token, tenant path", keyA, "", unauthBucket},
	} {
		// Twice: the second time a verified token comes from the
		// authority's cache.
		for range 2 {
			mu.Lock()
			charged = nil
			mu.Unlock()
			ls.do(t, "GET", tc.path, tc.token, nil)
			mu.Lock()
			got := charged
			mu.Unlock()
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("%s: charged to %q, want [%q]", tc.what, got, tc.want)
			}
		}
	}
	for pattern, want := range map[string]bool{
		"POST /v1/kms/sign": true, "GET " + keyPath: true, "GET /healthz": false,
		"GET /readyz": false, "GET /metrics": false, "GET /version": false,
	} {
		if limited(pattern) != want {
			t.Errorf("limited(%q) = %v", pattern, !want)
		}
	}
}

// TestFairShareReservesRoom: deterministic, nothing is released until the
// end. Tenant b has one request inside; tenant a then sends 40 at once.
// a gets exactly its share (4 of 8) and the rest of its requests are
// refused at once, which leaves room: b's next three requests are admitted
// while all of a's are still held. (Without the fair share a would take
// all seven free slots and b would have to queue.)
func TestFairShareReservesRoom(t *testing.T) {
	const limit, aClients = 8, 40
	var mu sync.Mutex
	insideBy := map[string]int{}
	release := make(chan struct{})
	var park atomic.Bool // hold admitted requests until release
	ls := newLimitedServer(t, limit, func(s *Server) {
		s.testHookServe = func(tenant string, delta int) {
			mu.Lock()
			insideBy[tenant] += delta
			mu.Unlock()
			if delta > 0 && park.Load() {
				<-release
			}
		}
	})
	var releaseOnce sync.Once
	unpark := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unpark) // before the server's Close, which waits for handlers
	kidA := ls.createKey(t, "a", "load", "ed25519")
	kidB := ls.createKey(t, "b", "load", "ed25519")
	sign := []captoken.Scope{captoken.ScopeSign}
	tokA := ls.mint(t, captoken.Restrictions{Tenant: "a", Scopes: sign})
	tokB := ls.mint(t, captoken.Restrictions{Tenant: "b", Scopes: sign})
	inside := func(tenant string) int {
		mu.Lock()
		defer mu.Unlock()
		return insideBy[tenant]
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 10s for %s: a inside %d, b inside %d, limiter %+v", what, inside("a"), inside("b"), ls.s.limiter.state())
			}
			time.Sleep(time.Millisecond)
		}
	}
	type result struct {
		tenant string
		r      response
		err    error
	}
	results := make(chan result, aClients+4)
	send := func(tenant, tok, kid string, n int) {
		go func() {
			r, err := ls.post(context.Background(), "/v1/kms/sign", tok, api.SignRequest{KID: kid, PayloadB3: fmt.Sprintf("%064x", n)})
			results <- result{tenant, r, err}
		}()
	}
	park.Store(true)
	send("b", tokB, kidB, 0)
	waitFor("b's first request inside", func() bool { return inside("b") == 1 })
	for i := range aClients {
		send("a", tokA, kidA, i)
	}
	var aRefused []response
	for len(aRefused) < aClients-limit/2 {
		select {
		case res := <-results:
			if res.err != nil || res.tenant != "a" {
				t.Fatalf("while everything is held: %s answered %v %d %s", res.tenant, res.err, res.r.Status, res.r.Raw)
			}
			checkBackpressure(t, res.r)
			aRefused = append(aRefused, res.r)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of a's requests refused after 10s; a inside %d, limiter %+v", len(aRefused), inside("a"), ls.s.limiter.state())
		}
	}
	waitFor("a's share inside", func() bool { return inside("a") == limit/2 })
	if st := ls.s.limiter.state(); st.Queued != 0 || st.Held["a"] != limit/2 {
		t.Fatalf("a over its share: %+v", st)
	}
	for i := 1; i <= 3; i++ {
		send("b", tokB, kidB, i)
	}
	waitFor("b's three more requests inside while a's are held", func() bool { return inside("b") == 4 })
	if st := ls.s.limiter.state(); st.Total != limit || st.Queued != 0 {
		t.Fatalf("limiter %+v", st)
	}
	unpark()
	for range limit {
		res := <-results
		if res.err != nil || res.r.Status != 200 {
			t.Errorf("%s after release: %v %d %s", res.tenant, res.err, res.r.Status, res.r.Raw)
		}
	}
}
