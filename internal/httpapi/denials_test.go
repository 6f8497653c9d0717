package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/audit"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

// The audit records of unauthenticated denials (denials.go): over a real
// listener with a real audit log, then the aggregator alone.

// countOf is how many operations r stands for (Count 0 means one).
func countOf(r audit.Record) uint64 { return max(r.Count, 1) }

// unauthenticated reports whether r records the denial of a request
// without a valid token.
func unauthenticated(r audit.Record) bool {
	return r.Result == audit.ResultDenied && r.Code == string(api.CodeUnauthenticated) && r.Actor == ""
}

// readAudit verifies the log in dir and returns its records and raw bytes.
func readAudit(t *testing.T, dir string, pub ed25519.PublicKey) ([]audit.Record, []byte) {
	t.Helper()
	if _, err := audit.Verify(dir, pub); err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	var recs []audit.Record
	err := audit.Tail(context.Background(), dir, -1, false, 0, func(e audit.Entry) error {
		if e.Record != nil {
			recs = append(recs, *e.Record)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	return recs, raw
}

// TestUnauthenticatedDenialsCollapsed: N requests without a valid token
// (none, garbage, forged) flood a server with a real audit log while
// authenticated requests, allowed and denied, are interleaved. Once the
// server is closed, the log verifies; it holds far fewer records of the
// flood than N, whose counts sum to N exactly; and every authenticated
// request, the denied ones included, has its own record. No token is in
// the log.
func TestUnauthenticatedDenialsCollapsed(t *testing.T) {
	const flooders, perFlooder, authed = 6, 50, 20
	dir := t.TempDir()
	l, err := audit.Open(dir, audit.Options{AuditKeySeed: make([]byte, ed25519.SeedSize)})
	if err != nil {
		t.Fatal(err)
	}
	pub := l.PublicKey()
	h := newHarnessAudited(t, nil, l)
	kid := h.createKey(t, "acme", "docs", "ed25519")
	signer := h.mint(t, captoken.Restrictions{Tenant: "acme", Scopes: []captoken.Scope{captoken.ScopeSign}})
	reader := h.mint(t, captoken.Restrictions{Tenant: "acme", Scopes: []captoken.Scope{captoken.ScopeRead}})
	otherRoot := make([]byte, captoken.RootKeySize)
	rand.Read(otherRoot)
	forger, err := captoken.NewAuthority(otherRoot, "ron-kms-test")
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := forger.Mint(captoken.Restrictions{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var failures []string
	authIDs := map[string]int{} // request id → expected status
	fail := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, s)
		}
	}
	var wg sync.WaitGroup
	for i := range flooders {
		tok := []string{"", "garbage", forged}[i%3]
		wg.Go(func() {
			for j := range perFlooder {
				r, err := h.post(context.Background(), "/v1/kms/sign", tok, api.SignRequest{KID: kid, PayloadB3: fmt.Sprintf("%064x", j)})
				if err != nil || r.Status != 401 {
					fail(fmt.Sprintf("flood: %d %s %v", r.Status, r.Raw, err))
				}
			}
		})
	}
	wg.Go(func() {
		for j := range authed {
			tok, want := signer, 200
			if j%2 == 1 {
				tok, want = reader, 403 // authenticated, denied NoCapability
			}
			r, err := h.post(context.Background(), "/v1/kms/sign", tok, api.SignRequest{KID: kid, PayloadB3: fmt.Sprintf("%064x", j)})
			if err != nil || r.Status != want {
				fail(fmt.Sprintf("authenticated: %d %s %v, want %d", r.Status, r.Raw, err, want))
				continue
			}
			mu.Lock()
			authIDs[r.Header.Get("X-Request-Id")] = want
			mu.Unlock()
		}
	})
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("unexpected answers: %q", failures)
	}
	if err := h.API.Close(); err != nil {
		t.Fatalf("closing the API: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	recs, raw := readAudit(t, dir, pub)
	var floodRecs, unnamed int
	var floodSum uint64
	seenAuth := map[string]int{}
	for _, r := range recs {
		switch {
		case unauthenticated(r):
			floodRecs++
			floodSum += countOf(r)
			if !strings.Contains(r.Detail, "from 127.0.0.1") {
				unnamed++
			}
		case authIDs[r.RequestID] != 0:
			seenAuth[r.RequestID]++
			if r.Count != 0 {
				t.Errorf("an authenticated request's record has count %d", r.Count)
			}
			if want := authIDs[r.RequestID]; want == 403 && (r.Result != audit.ResultDenied || r.Code != string(api.CodeNoCapability)) {
				t.Errorf("denied authenticated request: result %q code %q", r.Result, r.Code)
			}
		}
	}
	if unnamed > 0 {
		t.Errorf("%d records of unauthenticated denials do not name their source", unnamed)
	}
	const n = flooders * perFlooder
	if floodSum != n {
		t.Errorf("the flood's records count %d denials, want exactly %d", floodSum, n)
	}
	if floodRecs > n/10 {
		t.Errorf("%d records for %d unauthenticated denials: not collapsed", floodRecs, n)
	}
	if len(authIDs) != authed {
		t.Fatalf("%d authenticated answers, want %d", len(authIDs), authed)
	}
	for id := range authIDs {
		if seenAuth[id] != 1 {
			t.Errorf("authenticated request %s has %d records, want 1", id, seenAuth[id])
		}
	}
	for _, secret := range []string{h.Admin, signer, reader, forged} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Error("the audit log holds a token")
		}
	}
	t.Logf("%d unauthenticated denials in %d records", n, floodRecs)
}

// gatedAuditor is an Auditor whose appends wait until gate is closed, as
// a slow fsync would; it counts the records it was given.
type gatedAuditor struct {
	gate    chan struct{}
	entered chan struct{} // one send per append that waits
	mu      sync.Mutex
	recs    []audit.Record
}

func (g *gatedAuditor) AppendAll(ctx context.Context, rs []audit.Record) error {
	select {
	case <-g.gate:
	default:
		g.entered <- struct{}{}
		<-g.gate
	}
	g.mu.Lock()
	g.recs = append(g.recs, rs...)
	g.mu.Unlock()
	return nil
}

// TestCollapsedDenialDoesNotWaitForTheLog: while the record of a source's
// first unauthenticated denial is still being written, its next denials
// are answered 401 at once: they wait for no write.
func TestCollapsedDenialDoesNotWaitForTheLog(t *testing.T) {
	g := &gatedAuditor{gate: make(chan struct{}), entered: make(chan struct{}, 16)}
	h := newHarnessAudited(t, nil, g)
	var openGate sync.Once
	t.Cleanup(func() { openGate.Do(func() { close(g.gate) }) })
	first := make(chan error, 1)
	go func() {
		r, err := h.post(context.Background(), "/v1/kms/sign", "", struct{}{})
		if err == nil && r.Status != 401 {
			err = fmt.Errorf("first denial: %d %s", r.Status, r.Raw)
		}
		first <- err
	}()
	<-g.entered // the first denial's record is being written
	for range 10 {
		if r := h.do(t, "POST", "/v1/kms/sign", "", struct{}{}); r.Status != 401 {
			t.Fatalf("a later denial: %d %s", r.Status, r.Raw)
		}
	}
	select {
	case err := <-first:
		t.Fatalf("the first denial was answered before its record was written: %v", err)
	default:
	}
	openGate.Do(func() { close(g.gate) })
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := h.API.Close(); err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.recs) != 2 || countOf(g.recs[0]) != 1 || g.recs[1].Count != 10 {
		t.Fatalf("records %+v, want the first denial's and one counting 10", g.recs)
	}
}

// fakeLog collects what an aggregator writes, failing while fail is set.
type fakeLog struct {
	mu    sync.Mutex
	recs  []audit.Record
	fail  bool
	lost  []audit.Record
	wrote chan struct{} // one send per successful write, if not nil
}

func (f *fakeLog) write(_ context.Context, rs []audit.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("injected: no space left on device")
	}
	f.recs = append(f.recs, rs...)
	if f.wrote != nil {
		f.wrote <- struct{}{}
	}
	return nil
}

func (f *fakeLog) onLost(rs []audit.Record, _ error) {
	f.mu.Lock()
	f.lost = append(f.lost, rs...)
	f.mu.Unlock()
}

func (f *fakeLog) take() []audit.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := f.recs
	f.recs = nil
	return rs
}

// deny passes one denial from source through a, returning whether it was
// counted; op names it.
func deny(a *denialAggregator, source, op string) bool {
	rec := audit.Record{Op: op, Result: audit.ResultDenied, Code: string(api.CodeUnauthenticated), RequestID: op}
	return a.collapse(source, &rec)
}

// TestDenialAggregatorWindows: per window, a source's first denial is
// written by the caller and the others counted; the window's end writes
// one record per source with its count and its first counted denial; the
// next window starts afresh. Sources beyond the bound are counted
// together, none written at once. After close nothing is collapsed.
func TestDenialAggregatorWindows(t *testing.T) {
	f := &fakeLog{}
	a := newDenialAggregator(forever, 2, f.write, f.onLost)
	if deny(a, "192.0.2.1", "a1") || deny(a, "192.0.2.2", "b1") {
		t.Fatal("a source's first denial was counted")
	}
	for i := range 3 {
		if !deny(a, "192.0.2.1", fmt.Sprintf("a%d", i+2)) {
			t.Fatal("a source's next denial was not counted")
		}
	}
	// Beyond the bound of 2: counted together at once.
	for _, src := range []string{"192.0.2.3", "192.0.2.4", "192.0.2.3"} {
		if !deny(a, src, "x-"+src) {
			t.Fatalf("a denial of %s, beyond the bound, was not counted", src)
		}
	}
	a.endWindow()
	rs := f.take()
	if len(rs) != 2 {
		t.Fatalf("window's records: %+v, want 2", rs)
	}
	if r := rs[0]; r.Count != 3 || r.RequestID != "a2" || r.Op != "a2" || r.TS.IsZero() || !strings.Contains(r.Detail, "from 192.0.2.1") {
		t.Errorf("192.0.2.1's record: %+v", r)
	}
	if r := rs[1]; r.Count != 3 || r.RequestID != "x-192.0.2.3" || !strings.Contains(r.Detail, "beyond the 2 tracked") {
		t.Errorf("the other sources' record: %+v", r)
	}
	// A new window: the first denial of each source is written again, and
	// a window with nothing counted writes nothing.
	if deny(a, "192.0.2.1", "a5") || deny(a, "192.0.2.3", "c1") {
		t.Fatal("a source's first denial of a new window was counted")
	}
	a.endWindow()
	if rs := f.take(); len(rs) != 0 {
		t.Fatalf("a window without counts wrote %+v", rs)
	}
	if deny(a, "192.0.2.1", "a6") || !deny(a, "192.0.2.1", "a7") {
		t.Fatal("the third window does not start afresh")
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if rs := f.take(); len(rs) != 1 || countOf(rs[0]) != 1 || rs[0].RequestID != "a7" {
		t.Fatalf("close wrote %+v, want the one counted denial", rs)
	}
	if deny(a, "192.0.2.1", "a8") {
		t.Fatal("a denial was counted after close")
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if rs := f.take(); len(rs) != 0 {
		t.Fatalf("a second close wrote %+v", rs)
	}
}

// TestDenialAggregatorTimer: the window's timer writes the counts by
// itself, and a write that fails reports the records lost.
func TestDenialAggregatorTimer(t *testing.T) {
	f := &fakeLog{wrote: make(chan struct{}, 1)}
	a := newDenialAggregator(forever, 4, f.write, f.onLost)
	deny(a, "192.0.2.1", "a1")
	deny(a, "192.0.2.1", "a2")
	deny(a, "192.0.2.1", "a3")
	a.mu.Lock()
	a.timer.Reset(time.Millisecond) // the window ends now
	a.mu.Unlock()
	select {
	case <-f.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("the window's timer wrote nothing in 10s")
	}
	if rs := f.take(); len(rs) != 1 || rs[0].Count != 2 || rs[0].RequestID != "a2" {
		t.Fatalf("timer wrote %+v", rs)
	}
	f.mu.Lock()
	f.fail = true
	f.mu.Unlock()
	deny(a, "192.0.2.1", "b1")
	deny(a, "192.0.2.1", "b2")
	if err := a.close(); err == nil {
		t.Fatal("close: no error from a failed write")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.lost) != 1 || f.lost[0].RequestID != "b2" {
		t.Fatalf("lost %+v", f.lost)
	}
}
