package httpapi

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
)

// Unit tests of the in-flight limiter itself, without HTTP. Waits are made
// deterministic by a maxWait of an hour: only a release or a cancelled
// context ends them.

const forever = time.Hour

func mustAcquire(t *testing.T, l *limiter, tenant string) *bucket {
	t.Helper()
	b, err := l.acquire(context.Background(), tenant)
	if err != nil {
		t.Fatalf("acquire %q: %v (state %+v)", tenant, err, l.state())
	}
	return b
}

func mustRefuse(t *testing.T, l *limiter, tenant string, want error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got acquired
	select {
	case got = <-asyncAcquire(ctx, l, tenant):
	case <-time.After(10 * time.Second):
		t.Fatalf("acquire %q waited 10s, want an immediate %v (state %+v)", tenant, want, l.state())
	}
	b, err := got.b, got.err
	if err == nil {
		l.release(b)
		t.Fatalf("acquire %q admitted, want %v (state %+v)", tenant, want, l.state())
	}
	if err != want {
		t.Fatalf("acquire %q: %v, want %v", tenant, err, want)
	}
	if code, _ := errorOf(err); code != api.CodeBackpressure {
		t.Fatalf("refusal code %s, want Backpressure", code)
	}
}

// waitState polls l until cond holds (the only way to know that a goroutine
// is parked in the queue); it fails after a generous 10 s.
func waitState(t *testing.T, l *limiter, what string, cond func(limiterState) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond(l.state()) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s; state %+v", what, l.state())
		}
		time.Sleep(time.Millisecond)
	}
}

func checkEmpty(t *testing.T, l *limiter) {
	t.Helper()
	st := l.state()
	if st.Total != 0 || st.Queued != 0 || st.Active != 0 || st.Unauth != 0 || len(st.Held) != 0 {
		t.Fatalf("limiter not empty after every release: %+v", st)
	}
}

// asyncAcquire starts an acquire that is expected to wait.
func asyncAcquire(ctx context.Context, l *limiter, tenant string) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		b, err := l.acquire(ctx, tenant)
		ch <- acquired{b, err}
	}()
	return ch
}

type acquired struct {
	b   *bucket
	err error
}

func TestLimiterAccounting(t *testing.T) {
	l := newLimiter(4, forever, 4)
	var held []*bucket
	for range 4 {
		held = append(held, mustAcquire(t, l, "a"))
	}
	if st := l.state(); st.Total != 4 || st.Held["a"] != 4 || st.Active != 1 {
		t.Fatalf("after 4 acquires: %+v", st)
	}
	// Alone, a's share is the whole limit, and it is used up.
	mustRefuse(t, l, "a", errShareFull)
	l.release(held[0])
	held = append(held[1:], mustAcquire(t, l, "a"))
	for _, b := range held {
		l.release(b)
	}
	checkEmpty(t, l)
	if p := l.state().Peak; p != 4 {
		t.Fatalf("peak %d, want 4", p)
	}
}

// TestLimiterSharesFollowTenants: shares are ceil(limit/active) and change
// as tenants come and go; a waiting tenant within its share gets the next
// released slot, ahead of tenants over theirs.
func TestLimiterSharesFollowTenants(t *testing.T) {
	l := newLimiter(6, forever, 6)
	var a []*bucket
	for range 6 {
		a = append(a, mustAcquire(t, l, "a")) // alone: share 6
	}
	// b arrives: shares become 3. b is within its share but the server is
	// full, so b waits; a is over its share and is refused.
	bw := asyncAcquire(context.Background(), l, "b")
	waitState(t, l, "b queued", func(s limiterState) bool { return s.Queued == 1 })
	mustRefuse(t, l, "a", errShareFull)
	// a's release goes to b, not back to the pool.
	l.release(a[0])
	a = a[1:]
	got := <-bw
	if got.err != nil {
		t.Fatal(got.err)
	}
	b := []*bucket{got.b}
	if st := l.state(); st.Total != 6 || st.Held["a"] != 5 || st.Held["b"] != 1 {
		t.Fatalf("after hand-over: %+v", st)
	}
	// a drains to its share of 3; its slots go back to the pool; b fills
	// its share.
	for range 2 {
		l.release(a[0])
		a = a[1:]
	}
	for range 2 {
		b = append(b, mustAcquire(t, l, "b"))
	}
	mustRefuse(t, l, "b", errShareFull)
	mustRefuse(t, l, "a", errShareFull)
	// c arrives: shares become 2; c waits, a and b (3 each) are refused.
	cw := asyncAcquire(context.Background(), l, "c")
	waitState(t, l, "c queued", func(s limiterState) bool { return s.Queued == 1 && s.Active == 3 })
	mustRefuse(t, l, "a", errShareFull)
	mustRefuse(t, l, "b", errShareFull)
	l.release(b[0])
	b = b[1:]
	got = <-cw
	if got.err != nil {
		t.Fatal(got.err)
	}
	c := got.b
	// b leaves altogether: shares grow back to 3.
	for _, x := range b {
		l.release(x)
	}
	if st := l.state(); st.Active != 2 || st.Total != 4 {
		t.Fatalf("after b left: %+v", st)
	}
	c2 := mustAcquire(t, l, "c")
	mustRefuse(t, l, "a", errShareFull) // a holds 3 = its share
	l.release(c)
	l.release(c2)
	for _, x := range a {
		l.release(x)
	}
	checkEmpty(t, l)
	if p := l.state().Peak; p != 6 {
		t.Fatalf("peak %d, want 6", p)
	}
}

// TestLimiterUnauthenticatedBucket: requests without a valid token hold at
// most unauthCap slots, are refused at once (never queued) beyond it or
// when the server is full, and neither shrink a tenant's share nor count
// as an active tenant; a slot they give back goes to a waiting tenant.
func TestLimiterUnauthenticatedBucket(t *testing.T) {
	for limit, want := range map[int]int{1: 1, 4: 2, 8: 4, 64: 4, 128: 8, 1024: 64} {
		if got := unauthCap(limit); got != want {
			t.Errorf("unauthCap(%d) = %d, want %d", limit, got, want)
		}
	}
	l := newLimiter(8, forever, 8)
	var u []*bucket
	for range 4 {
		u = append(u, mustAcquire(t, l, unauthBucket))
	}
	mustRefuse(t, l, unauthBucket, errUnauthFull)
	if st := l.state(); st.Unauth != 4 || st.Active != 0 || st.Total != 4 || st.Queued != 0 {
		t.Fatalf("after 4 unauthenticated acquires: %+v", st)
	}
	// a, alone among the tenants, still has the whole limit as its share:
	// it takes the four free slots, then waits for one of u's.
	var a []*bucket
	for range 4 {
		a = append(a, mustAcquire(t, l, "a"))
	}
	aw := asyncAcquire(context.Background(), l, "a")
	waitState(t, l, "a queued", func(s limiterState) bool { return s.Queued == 1 })
	l.release(u[0])
	u = u[1:]
	got := <-aw
	if got.err != nil {
		t.Fatal(got.err)
	}
	a = append(a, got.b)
	if st := l.state(); st.Total != 8 || st.Held["a"] != 5 || st.Unauth != 3 {
		t.Fatalf("after the hand-over: %+v", st)
	}
	// The server is full: an unauthenticated request is refused at once
	// although its bucket is under its cap.
	mustRefuse(t, l, unauthBucket, errServerFull)
	for _, b := range append(u, a...) {
		l.release(b)
	}
	checkEmpty(t, l)
}

// TestLimiterWaiterCancelled: a waiter whose client goes away leaves the
// queue and the tenant table; nothing leaks.
func TestLimiterWaiterCancelled(t *testing.T) {
	l := newLimiter(1, forever, 1)
	a := mustAcquire(t, l, "a")
	ctx, cancel := context.WithCancel(context.Background())
	bw := asyncAcquire(ctx, l, "b")
	waitState(t, l, "b queued", func(s limiterState) bool { return s.Queued == 1 })
	cancel()
	if got := <-bw; got.err != errServerFull {
		t.Fatalf("cancelled waiter: %v, want %v", got.err, errServerFull)
	}
	if st := l.state(); st.Queued != 0 || st.Active != 1 || st.Total != 1 {
		t.Fatalf("after cancel: %+v", st)
	}
	l.release(a)
	checkEmpty(t, l)
}

// TestLimiterWaitBounded: a waiter gives up after maxWait, and a full queue
// refuses at once.
func TestLimiterWaitBounded(t *testing.T) {
	l := newLimiter(1, time.Millisecond, 1)
	a := mustAcquire(t, l, "a")
	if _, err := l.acquire(context.Background(), "b"); err != errServerFull {
		t.Fatalf("after maxWait: %v, want %v", err, errServerFull)
	}
	l.maxWait = forever
	bw := asyncAcquire(context.Background(), l, "b")
	waitState(t, l, "b queued", func(s limiterState) bool { return s.Queued == 1 })
	mustRefuse(t, l, "c", errServerFull) // the queue (1) is full
	l.release(a)
	got := <-bw
	if got.err != nil {
		t.Fatal(got.err)
	}
	l.release(got.b)
	checkEmpty(t, l)
	// A limiter that never queues refuses at once when full.
	l = newLimiter(1, 0, 0)
	a = mustAcquire(t, l, "a")
	mustRefuse(t, l, "b", errServerFull)
	l.release(a)
	checkEmpty(t, l)
}

// TestLimiterStress: many goroutines and tenants acquire, hold, release
// and give up at random; holders never exceed the limit, no tenant holds
// more than the limit, and everything is given back.
func TestLimiterStress(t *testing.T) {
	const limit = 8
	l := newLimiter(limit, forever, limit)
	var holders, peak atomic.Int64
	var admitted, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			tenant := []string{"a", "a", "a", "a", "b", "c", "", unauthBucket}[g%8]
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				ctx, cancel := context.WithCancel(context.Background())
				if r.IntN(4) == 0 {
					cancel() // a client that is already gone
				}
				b, err := l.acquire(ctx, tenant)
				cancel()
				if err != nil {
					if !errors.Is(err, errServerFull) && !errors.Is(err, errShareFull) && !errors.Is(err, errUnauthFull) {
						t.Errorf("acquire: %v", err)
					}
					refused.Add(1)
					continue
				}
				admitted.Add(1)
				n := holders.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				if r.IntN(2) == 0 {
					time.Sleep(time.Duration(r.IntN(50)) * time.Microsecond)
				}
				holders.Add(-1)
				l.release(b)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Errorf("%d holders at once, limit %d", p, limit)
	}
	if p := l.state().Peak; p > limit {
		t.Errorf("limiter peak %d, limit %d", p, limit)
	}
	if admitted.Load() == 0 {
		t.Error("nothing admitted")
	}
	t.Logf("admitted %d, refused %d, peak %d", admitted.Load(), refused.Load(), peak.Load())
	checkEmpty(t, l)
}
