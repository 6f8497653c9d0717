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
// share of them. The decision is taken in serveLimited, after the bearer
// token is verified (a cache lookup for a token seen before, an HMAC chain
// otherwise) and before the body is read, so a refused request costs no
// body bytes and no work beyond that check. A request is charged to the
// tenant of its verified token; one whose token does not verify (or that
// has none) is charged to no tenant: it takes one of the few slots of the
// unauthenticated bucket, which never waits and never shrinks a tenant's
// share. Probes, scrapes and /version are never limited.

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

	// sharedBucket collects the requests of verified tokens that name no
	// tenant (the admin token, operators' tokens): they may act on every
	// tenant, so no tenant is charged for them.
	sharedBucket = ""

	// unauthBucket collects the requests whose token did not verify, or
	// that carry none. It is not a tenant (the name is no valid tenant
	// label): its holders are capped apart (unauthCap), never queue, and
	// do not count among the active tenants that divide the limit.
	unauthBucket = "(unauthenticated)"
)

var (
	errServerFull = errorf(api.CodeBackpressure, "the server has too many requests in flight; retry after the Retry-After delay")
	errShareFull  = errorf(api.CodeBackpressure, "this tenant has its fair share of the server's in-flight requests; retry after the Retry-After delay")
	errUnauthFull = errorf(api.CodeBackpressure, "the server has too many requests without a valid token in flight; retry after the Retry-After delay")
)

// limited reports whether the route pattern is limited: every API route.
func limited(pattern string) bool {
	_, p, _ := strings.Cut(pattern, " ")
	return strings.HasPrefix(p, "/v1/kms/")
}

// chargedTenant is the bucket a request is charged to once its token was
// checked: grant is nil when it did not verify (unauthBucket). A verified
// token limited to one tenant is charged to that tenant; any other verified
// token (no tenant caveat, or caveats that allow no tenant at all) to the
// shared bucket. The tenant in a /keys/{tenant}/... path is not used: a
// token valid for every tenant would otherwise spend the share of the
// tenant it names, even on requests it is then denied.
func chargedTenant(grant *captoken.Grant) string {
	if grant == nil {
		return unauthBucket
	}
	if t, ok := grant.TenantLimit(); ok && t != "" {
		return t
	}
	return sharedBucket
}

// authKey is the context key under which serveLimited hands the result of
// authenticate to handle, so that a token is verified once per request.
type authKey struct{}

// authResult is what authenticate returned for the request.
type authResult struct {
	grant *captoken.Grant
	err   error
	at    time.Time // when the verification finished (stages.go)
}

// requestAuth is the verified grant of r, or why its token was refused:
// the result serveLimited found, else (a route reached some other way) a
// fresh authenticate.
func (s *Server) requestAuth(r *http.Request) (*captoken.Grant, error) {
	if a, ok := r.Context().Value(authKey{}).(*authResult); ok {
		return a.grant, a.err
	}
	return s.authenticate(r)
}

// serveLimited verifies r's token, then serves r with next if the limiter
// admits it to the bucket of that token (chargedTenant), and answers 429
// Backpressure otherwise. The verification's outcome goes to next through
// r's context (requestAuth); a request refused for its token is still
// served (next audits and answers the denial), from the unauthenticated
// bucket. kms_inflight_requests counts the admitted requests; it is raised
// after a slot is taken and lowered before it is given back, so it never
// exceeds the limit.
func (s *Server) serveLimited(w http.ResponseWriter, r *http.Request, pattern string, next http.Handler) {
	if !limited(pattern) {
		next.ServeHTTP(w, r)
		return
	}
	auth, _ := s.authenticateTimed(r)
	grant := auth.grant
	tenant := chargedTenant(grant)
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
	r = r.WithContext(context.WithValue(r.Context(), authKey{}, auth))
	next.ServeHTTP(w, r)
}

// limiter admits at most limit holders at once, and each tenant at most its
// share: ceil(limit / active tenants), where a tenant is active while it
// holds a slot or waits for one. A request over its tenant's share is
// refused at once. A request within its share finds a free slot, or waits
// (FIFO, at most maxWait, at most maxQueue waiters) for one to be handed to
// it by a release: while anyone waits, every released slot goes to the
// first waiter, so tenants over their share (whose new requests are
// refused) drain to it. The unauthenticated bucket (unauthBucket) is apart:
// it holds at most unauthCap of the limit's slots, is refused at once when
// it has them or the server is full, and is not an active tenant. Every
// operation is O(1) under one mutex held for a map lookup and a few integer
// updates. Safe for concurrent use.
type limiter struct {
	limit     int
	maxWait   time.Duration
	maxQueue  int
	unauthCap int // most slots the unauthenticated bucket holds

	mu     sync.Mutex
	total  int                // slots held; == limit whenever queue is not empty
	active map[string]*bucket // tenants holding or waiting for a slot
	unauth bucket             // requests without a verified token; never in active
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
	return &limiter{limit: limit, maxWait: maxWait, maxQueue: maxQueue, unauthCap: unauthCap(limit),
		active: make(map[string]*bucket), unauth: bucket{tenant: unauthBucket}}
}

// unauthCap is the unauthenticated bucket's cap for an in-flight limit: a
// sixteenth of it, at least 4 (a few clients with a bad token still get
// their 401 and its reason) and at most half the limit (for the tiny limits
// of tests).
func unauthCap(limit int) int {
	return min(max(4, limit/16), max(1, limit/2))
}

// share is the most slots one active tenant may hold or wait for.
func (l *limiter) share() int {
	n := len(l.active)
	return (l.limit + n - 1) / n
}

// acquire takes a slot for tenant, waiting if the server is full and the
// tenant is within its share. It returns the bucket to release, or an
// *httpError with code Backpressure: over the share, no room in the queue,
// waited maxWait, or ctx ended while waiting. The unauthBucket never waits:
// it gets a slot at once or errUnauthFull (or errServerFull).
func (l *limiter) acquire(ctx context.Context, tenant string) (*bucket, error) {
	l.mu.Lock()
	if tenant == unauthBucket {
		defer l.mu.Unlock()
		return l.acquireUnauthLocked()
	}
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

// acquireUnauthLocked takes a slot for the unauthenticated bucket if it is
// under its cap and the server has a free slot.
func (l *limiter) acquireUnauthLocked() (*bucket, error) {
	switch {
	case l.unauth.held >= l.unauthCap:
		return nil, errUnauthFull
	case l.total >= l.limit:
		return nil, errServerFull
	}
	l.total++
	l.peak = max(l.peak, l.total)
	l.unauth.held++
	return &l.unauth, nil
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
// nothing, so that shares grow back as soon as a tenant goes quiet. The
// unauthenticated bucket is never in the table, so it is left alone.
func (l *limiter) forget(b *bucket) {
	if b.held == 0 && b.queued == 0 && l.active[b.tenant] == b {
		delete(l.active, b.tenant)
	}
}

// limiterState is a snapshot for tests. Held is by active tenant; Unauth
// is what the unauthenticated bucket holds.
type limiterState struct {
	Total, Peak, Queued, Active, Unauth int
	Held                                map[string]int
}

func (l *limiter) state() limiterState {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := limiterState{Total: l.total, Peak: l.peak, Queued: l.queue.Len(), Active: len(l.active),
		Unauth: l.unauth.held, Held: map[string]int{}}
	for t, b := range l.active {
		st.Held[t] = b.held
	}
	return st
}
