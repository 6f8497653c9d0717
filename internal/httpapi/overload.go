package httpapi

import (
	"container/list"
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

// Overload protection (DECISIONS.md, "Overload"): at most Options.MaxInflight
// API requests are served at once, and each active tenant at most its fair
// share of them. The decision is taken in ServeHTTP before the token is
// verified and before the body is read, so a refused request costs no
// cryptography and no body bytes. Probes, scrapes and /version are never
// limited.

// DefaultMaxInflight is the in-flight limit used when Options.MaxInflight is
// 0: 16 × GOMAXPROCS, at least 128. Signing is CPU-bound, so GOMAXPROCS
// requests saturate the processors; the factor 16 keeps them busy while the
// other requests wait on the store, fsync or the audit group commit (which
// batches better with more writers waiting), and the floor of 128 keeps a
// one- or two-core container from refusing an ordinary pool of 64
// keep-alive clients (128 bodies at the 1 MiB cap is 128 MiB). Beyond
// that, more requests in flight only add latency and memory (each may hold
// a body of up to the body cap) without adding throughput.
func DefaultMaxInflight() int { return max(128, 16*runtime.GOMAXPROCS(0)) }

const (
	// maxQueueWait bounds how long a request within its tenant's share waits
	// for a slot held by tenants over theirs. It equals the Retry-After the
	// 429 would carry: waiting here is never worse for the caller than
	// being refused and retrying.
	maxQueueWait = time.Second

	// sharedBucket collects the requests whose tenant is not known before
	// authentication (no tenant caveat, no tenant in the path).
	sharedBucket = ""
)

var (
	errServerFull = errorf(api.CodeBackpressure, "the server has too many requests in flight; retry after the Retry-After delay")
	errShareFull  = errorf(api.CodeBackpressure, "this tenant has its fair share of the server's in-flight requests; retry after the Retry-After delay")
)

// limited reports whether the route pattern is limited: every API route.
func limited(pattern string) bool {
	_, p, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(p, "/v1/kms/")
}

// requestTenant is the tenant r is charged to, found without cryptography
// or reading the body: the tenant caveat of the bearer token (unverified: a
// forged hint is charged to the named tenant only until its token fails
// verification, microseconds later, before the body is read), else the
// tenant segment of a /keys/{tenant}/... path, else the shared bucket.
func requestTenant(auth *captoken.Authority, r *http.Request, pattern string) string {
	if tok, ok := bearerToken(r); ok {
		if t := auth.TenantHint(tok); t != "" {
			return t
		}
	}
	if strings.Contains(pattern, "/keys/{tenant}/") {
		rest, _ := strings.CutPrefix(r.URL.Path, "/v1/kms/keys/")
		t, _, _ := strings.Cut(rest, "/")
		if api.CheckLabel("tenant", t) == nil {
			return t
		}
	}
	return sharedBucket
}

// serveLimited serves r with next if the limiter admits it, and answers 429
// Backpressure otherwise. kms_inflight_requests counts the admitted
// requests; it is raised after a slot is taken and lowered before it is
// given back, so it never exceeds the limit.
func (s *Server) serveLimited(w http.ResponseWriter, r *http.Request, pattern string, next http.Handler) {
	if !limited(pattern) {
		next.ServeHTTP(w, r)
		return
	}
	tenant := requestTenant(s.auth, r, pattern)
	b, err := s.limiter.acquire(r.Context(), tenant)
	if err != nil {
		s.metrics.Rejected.WithLabelValues(string(api.CodeBackpressure)).Inc()
		s.writeError(w, r, err)
		return
	}
	s.metrics.Inflight.Inc()
	// Deferred, so that a panicking handler (recovered by net/http) gives
	// its slot back too.
	defer func() {
		s.metrics.Inflight.Dec()
		s.limiter.release(b)
	}()
	if h := s.testHookServe; h != nil {
		h(tenant, 1)
		defer h(tenant, -1)
	}
	next.ServeHTTP(w, r)
}

// limiter admits at most limit holders at once, and each tenant at most its
// share: ceil(limit / active tenants), where a tenant is active while it
// holds a slot or waits for one. A request over its tenant's share is
// refused at once. A request within its share finds a free slot, or waits
// (FIFO, at most maxWait, at most maxQueue waiters) for one to be handed to
// it by a release: while anyone waits, every released slot goes to the
// first waiter, so tenants over their share (whose new requests are
// refused) drain to it. Every operation is O(1) under one mutex held for a
// map lookup and a few integer updates. Safe for concurrent use.
type limiter struct {
	limit    int
	maxWait  time.Duration
	maxQueue int

	mu     sync.Mutex
	total  int                // slots held; == limit whenever queue is not empty
	active map[string]*bucket // tenants holding or waiting for a slot
	queue  list.List          // of *waiter, oldest first
	peak   int                // the most slots ever held at once (tests)
}

// bucket is one active tenant's account.
type bucket struct {
	tenant string
	held   int
	queued int
}

// waiter is a request waiting for a slot.
type waiter struct {
	b     *bucket
	elem  *list.Element
	ready chan struct{} // closed once the slot is handed over
}

func newLimiter(limit int, maxWait time.Duration, maxQueue int) *limiter {
	return &limiter{limit: limit, maxWait: maxWait, maxQueue: maxQueue, active: make(map[string]*bucket)}
}

// share is the most slots one active tenant may hold or wait for.
func (l *limiter) share() int {
	n := len(l.active)
	return (l.limit + n - 1) / n
}

// acquire takes a slot for tenant, waiting if the server is full and the
// tenant is within its share. It returns the bucket to release, or an
// *httpError with code Backpressure: over the share, no room in the queue,
// waited maxWait, or ctx ended while waiting.
func (l *limiter) acquire(ctx context.Context, tenant string) (*bucket, error) {
	l.mu.Lock()
	b := l.active[tenant]
	if b == nil {
		b = &bucket{tenant: tenant}
		l.active[tenant] = b
	}
	if b.held+b.queued >= l.share() {
		l.forget(b)
		l.mu.Unlock()
		return nil, errShareFull
	}
	if l.total < l.limit {
		l.total++
		l.peak = max(l.peak, l.total)
		b.held++
		l.mu.Unlock()
		return b, nil
	}
	if l.queue.Len() >= l.maxQueue || l.maxWait <= 0 {
		l.forget(b)
		l.mu.Unlock()
		return nil, errServerFull
	}
	w := &waiter{b: b, ready: make(chan struct{})}
	w.elem = l.queue.PushBack(w)
	b.queued++
	l.mu.Unlock()

	t := time.NewTimer(l.maxWait)
	defer t.Stop()
	select {
	case <-w.ready:
		return b, nil
	case <-ctx.Done():
	case <-t.C:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-w.ready:
		// Handed a slot just as we gave up: pass it on.
		l.releaseLocked(b)
	default:
		l.queue.Remove(w.elem)
		b.queued--
		l.forget(b)
	}
	return nil, errServerFull
}

// release gives back a slot taken by acquire.
func (l *limiter) release(b *bucket) {
	l.mu.Lock()
	l.releaseLocked(b)
	l.mu.Unlock()
}

func (l *limiter) releaseLocked(b *bucket) {
	b.held--
	if front := l.queue.Front(); front != nil {
		// The slot changes hands; total stays at limit.
		w := l.queue.Remove(front).(*waiter)
		w.b.queued--
		w.b.held++
		close(w.ready)
	} else {
		l.total--
	}
	l.forget(b)
}

// forget drops b from the active tenants once it holds and waits for
// nothing, so that shares grow back as soon as a tenant goes quiet.
func (l *limiter) forget(b *bucket) {
	if b.held == 0 && b.queued == 0 && l.active[b.tenant] == b {
		delete(l.active, b.tenant)
	}
}

// limiterState is a snapshot for tests.
type limiterState struct {
	Total, Peak, Queued, Active int
	Held                        map[string]int
}

func (l *limiter) state() limiterState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := limiterState{Total: l.total, Peak: l.peak, Queued: l.queue.Len(), Active: len(l.active), Held: map[string]int{}}
	for t, b := range l.active {
		st.Held[t] = b.held
	}
	return st
}
