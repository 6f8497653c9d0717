package keystore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// Store health and degraded mode (SPEC §10, issue #14 part 5).
//
// The keystore is healthy when its change feed of "k/" is open (and the
// cache was re-read since it opened) and the store answers. Whether the
// store answers is learned two ways: a probe every ProbeInterval, bounded
// by ProbeTimeout (a linearizable Get of the KEK check value, one small
// key), and the result of every store call the keystore makes (one that fails with storage.ErrUnavailable makes the
// keystore unhealthy at once; the next probe that succeeds makes it healthy
// again). The probe is the only store traffic of an idle node; the sign
// path never waits for it.
//
// While healthy, the cache is coherent with the store (every change reaches
// it through the feed) and every answer is current. While unhealthy:
//
//   - sign, wrap, unwrap, encrypt, decrypt, create, import, rotate, every
//     version state or configuration change, token revocation, attestation
//     and the scheduler fail closed, at once and without a store call, with
//     ErrUnavailable;
//   - verify and public-key reads are answered from the cache, marked stale
//     with their age (Staleness), until the entry is older than the hard
//     TTL (ErrUnavailable after that). The age of an entry is the time since
//     it was last known current: the later of the last known-good moment of
//     the cache (Health.StaleSince) and the moment the entry itself was read
//     from the store.
//
// The last known-good moment is the start of the last probe that succeeded
// while the feed was up, or of the re-read that followed a new feed. When
// the feed ends, follow keeps the cache, subscribes again (retrying with a
// growing pause up to a second), re-reads every cached key, and only then
// marks the cache fresh.

// Defaults of the health probe and of the verify cache.
const (
	// DefaultProbeInterval is how often the store is probed.
	DefaultProbeInterval = 500 * time.Millisecond
	// DefaultProbeTimeout bounds one probe. It is longer than etcdstore's
	// own bound on a call (1.5 s, retried inside across leader elections),
	// so that a probe fails only when the store itself gave up.
	DefaultProbeTimeout = 2 * time.Second
	// DefaultVerifyCacheSoftTTL is the soft TTL of --verify-cache-ttl; the
	// hard TTL is twice the soft one unless given.
	DefaultVerifyCacheSoftTTL = 5 * time.Minute
	// MaxVerifyCacheTTL bounds both TTLs: a week.
	MaxVerifyCacheTTL = 7 * 24 * time.Hour
)

// CacheTTL bounds how long verify and public-key reads are answered from the
// cache while the store is unavailable. Past Soft the answers still come,
// but the keystore's health says so (and it is logged once per outage);
// past Hard they stop (ErrUnavailable).
type CacheTTL struct {
	Soft, Hard time.Duration
}

// DefaultCacheTTL is 5 minutes soft, 10 minutes hard.
var DefaultCacheTTL = CacheTTL{Soft: DefaultVerifyCacheSoftTTL, Hard: 2 * DefaultVerifyCacheSoftTTL}

// ErrCacheTTL: a --verify-cache-ttl value that does not parse or is out of
// range.
var ErrCacheTTL = errors.New("keystore: bad verify cache TTL")

// ParseCacheTTL parses the value of --verify-cache-ttl: "SOFT" or
// "SOFT,HARD", each a Go duration ("5m", "90s", "1h30m"). Without HARD, the
// hard TTL is twice the soft one. Both are at least one second and at most
// MaxVerifyCacheTTL, and HARD is at least SOFT. Errors wrap ErrCacheTTL.
// A parsed value's String parses back to the same value.
func ParseCacheTTL(s string) (CacheTTL, error) {
	softS, hardS, both := strings.Cut(s, ",")
	soft, err := parseTTL("soft", softS)
	if err != nil {
		return CacheTTL{}, err
	}
	hard := 2 * soft
	if both {
		if hard, err = parseTTL("hard", hardS); err != nil {
			return CacheTTL{}, err
		}
	}
	t := CacheTTL{Soft: soft, Hard: min(hard, MaxVerifyCacheTTL)}
	if both && t.Hard < t.Soft {
		return CacheTTL{}, fmt.Errorf("%w: the hard TTL %v is shorter than the soft TTL %v", ErrCacheTTL, t.Hard, t.Soft)
	}
	return t, nil
}

func parseTTL(which, s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%w: %s TTL: want a duration such as 5m or 5m,10m", ErrCacheTTL, which)
	}
	if d < time.Second || d > MaxVerifyCacheTTL {
		return 0, fmt.Errorf("%w: %s TTL %v: must be 1s to %v", ErrCacheTTL, which, d, MaxVerifyCacheTTL)
	}
	return d, nil
}

// String returns the TTL as ParseCacheTTL reads it: "SOFT,HARD".
func (t CacheTTL) String() string { return t.Soft.String() + "," + t.Hard.String() }

// Check reports whether t is a TTL ParseCacheTTL could have returned: both
// 1s to MaxVerifyCacheTTL, Hard at least Soft. Errors wrap ErrCacheTTL.
func (t CacheTTL) Check() error {
	for _, d := range []time.Duration{t.Soft, t.Hard} {
		if d < time.Second || d > MaxVerifyCacheTTL {
			return fmt.Errorf("%w: %v: each TTL must be 1s to %v", ErrCacheTTL, d, MaxVerifyCacheTTL)
		}
	}
	if t.Hard < t.Soft {
		return fmt.Errorf("%w: the hard TTL %v is shorter than the soft TTL %v", ErrCacheTTL, t.Hard, t.Soft)
	}
	return nil
}

// Health is the keystore's view of its store.
type Health struct {
	// Healthy: the change feed is up and the store answers. Every answer
	// is current; nothing is served stale.
	Healthy bool
	// Reason says why the keystore is not healthy ("" when it is). It
	// names the store's error, never a key or a secret.
	Reason string
	// StaleSince is the last moment the cache was known current; zero when
	// healthy.
	StaleSince time.Time
	// CacheAge is how long ago StaleSince was; zero when healthy.
	CacheAge time.Duration
	// TTL is the verify cache's TTL.
	TTL CacheTTL

	storeOK bool // the store answers (only the feed may be down)
}

// PastSoftTTL reports whether the cache is older than the soft TTL: verify
// is still answered, but the node is degraded beyond what it was tuned for.
func (h Health) PastSoftTTL() bool { return !h.Healthy && h.CacheAge > h.TTL.Soft }

// PastHardTTL reports whether the cache is older than the hard TTL: nothing
// cached before StaleSince is served any more.
func (h Health) PastHardTTL() bool { return !h.Healthy && h.CacheAge > h.TTL.Hard }

// Staleness describes an answer that may come from the cache while the store
// is unavailable.
type Staleness struct {
	// Stale: the answer came from the cache while the keystore was not
	// healthy; Age says how old it is.
	Stale bool
	// Age is how long ago the cached entry was last known current (zero
	// when not Stale; it may be zero when Stale, too, for an outage a
	// millisecond old).
	Age time.Duration
}

// older returns the staler of s and o: callers that merge several answers
// (a batch) report the oldest.
func (s Staleness) older(o Staleness) Staleness {
	if !o.Stale || (s.Stale && s.Age >= o.Age) {
		return s
	}
	return o
}

// health tracks whether the store is usable. Its methods are safe for
// concurrent use; ok is one atomic load, for the sign path.
type health struct {
	now func() time.Time
	log *slog.Logger
	ttl CacheTTL

	healthy atomic.Bool

	mu         sync.Mutex
	feedUp     bool      // the change feed is open and the cache re-read since
	storeOK    bool      // the last probe or store call answered
	storeErr   string    // why not storeOK
	lastGood   time.Time // the last moment both held
	softLogged bool      // the soft TTL was logged in this outage
}

func newHealth(now func() time.Time, log *slog.Logger, ttl CacheTTL) *health {
	t := now()
	h := &health{now: now, log: log, ttl: ttl, feedUp: true, storeOK: true, lastGood: t}
	h.healthy.Store(true)
	return h
}

func (h *health) ok() bool { return h.healthy.Load() }

// storeAnswers reports whether the store answered the last probe or call
// (the feed may be down).
func (h *health) storeAnswers() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.storeOK
}

// update recomputes the healthy flag and logs a change; h.mu is held.
func (h *health) update() {
	now := h.feedUp && h.storeOK
	was := h.healthy.Swap(now)
	switch {
	case was && !now:
		h.log.Warn("the key store is unavailable: writes and private-key operations fail closed, verify is answered from the cache",
			slog.String("reason", h.reasonLocked()), slog.Time("stale_since", h.lastGood))
	case !was && now:
		h.log.Info("the key store is available again; the cache is current",
			slog.Duration("outage", h.now().Sub(h.lastGood).Round(time.Millisecond)))
		h.softLogged = false
	}
}

// reasonLocked says why the keystore is unhealthy; h.mu is held.
func (h *health) reasonLocked() string {
	var r []string
	if !h.storeOK {
		r = append(r, "the store does not answer: "+h.storeErr)
	}
	if !h.feedUp {
		r = append(r, "the store's change feed is down (subscribing again, then re-reading the cache)")
	}
	return strings.Join(r, "; ")
}

// probed records the outcome of a store call that started at start.
func (h *health) probed(start time.Time, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.storeOK, h.storeErr = false, err.Error()
	} else {
		h.storeOK, h.storeErr = true, ""
		if h.feedUp && start.After(h.lastGood) {
			h.lastGood = start
		}
	}
	h.update()
	if !h.healthy.Load() && !h.softLogged && h.now().Sub(h.lastGood) > h.ttl.Soft {
		h.softLogged = true
		h.log.Warn("the key store has been unavailable longer than the verify cache's soft TTL; verify answers are older than it",
			slog.Duration("soft_ttl", h.ttl.Soft), slog.Duration("hard_ttl", h.ttl.Hard), slog.Time("stale_since", h.lastGood))
	}
}

// feed records that the change feed went down, or came up with the cache
// re-read from a read that started at start.
func (h *health) feed(up bool, start time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.feedUp = up
	if up {
		// The re-read answered: so did the store.
		h.storeOK, h.storeErr = true, ""
		if start.After(h.lastGood) {
			h.lastGood = start
		}
	}
	h.update()
}

// snapshot returns the current Health.
func (h *health) snapshot() Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := Health{Healthy: h.healthy.Load(), TTL: h.ttl, storeOK: h.storeOK}
	if !out.Healthy {
		out.Reason = h.reasonLocked()
		out.StaleSince = h.lastGood
		out.CacheAge = max(h.now().Sub(h.lastGood), 0)
	}
	return out
}

// Health returns the keystore's view of its store; see health.go for what
// healthy means. Safe for concurrent use.
func (ks *Keystore) Health() Health { return ks.health.snapshot() }

// CacheAge is Health().CacheAge: how old the cache may be, zero when the
// store is healthy.
func (ks *Keystore) CacheAge() time.Duration { return ks.health.snapshot().CacheAge }

// requireHealthy fails closed while the store is unavailable: op (a verb
// phrase for the message) is refused with ErrUnavailable, without a store
// call.
func (ks *Keystore) requireHealthy(op string) error {
	if ks.health.ok() {
		return nil
	}
	h := ks.health.snapshot()
	if h.Healthy {
		return nil // recovered meanwhile
	}
	return fmt.Errorf("%w: cannot %s while the store is unavailable (%s; since %s)",
		ErrUnavailable, op, h.Reason, h.StaleSince.UTC().Format(time.RFC3339))
}

// failed records a store call that failed with err: only ErrUnavailable
// counts as the store failing (a caller's own deadline or a conflict does
// not), and successes are left to the probe.
func (h *health) failed(err error) {
	if err != nil && errors.Is(err, storage.ErrUnavailable) {
		h.probed(time.Time{}, err)
	}
}

// observedStore is the keystore's view of its Store: every call that fails
// with ErrUnavailable makes the keystore unhealthy at once.
type observedStore struct {
	storage.Store
	h *health
}

func (o observedStore) Get(ctx context.Context, key string) (storage.Item, error) {
	it, err := o.Store.Get(ctx, key)
	o.h.failed(err)
	return it, err
}

func (o observedStore) List(ctx context.Context, prefix, startAfter string, limit int) ([]storage.Item, error) {
	items, err := o.Store.List(ctx, prefix, startAfter, limit)
	o.h.failed(err)
	return items, err
}

func (o observedStore) Apply(ctx context.Context, muts ...storage.Mutation) (int64, error) {
	rev, err := o.Store.Apply(ctx, muts...)
	o.h.failed(err)
	return rev, err
}

func (o observedStore) Revision(ctx context.Context) (int64, error) {
	rev, err := o.Store.Revision(ctx)
	o.h.failed(err)
	return rev, err
}

func (o observedStore) Watch(ctx context.Context, prefix string) (<-chan storage.Event, error) {
	ch, err := o.Store.Watch(ctx, prefix)
	o.h.failed(err)
	return ch, err
}

// probeKey is the key the probe reads: the KEK check value (secrets.go).
const probeKey = "meta/" + kekCheckSecret

// probe checks every interval that the store answers, until ctx ends.
func (ks *Keystore) probe(ctx context.Context, interval, timeout time.Duration) {
	defer close(ks.probeDone)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ks.probeOnce(ctx, timeout)
	}
}

// probeOnce runs one probe.
func (ks *Keystore) probeOnce(ctx context.Context, timeout time.Duration) {
	start := ks.health.now()
	pctx, cancel := context.WithTimeout(ctx, timeout)
	// One linearizable read of one small key that every store of a
	// keystore holds: cheaper for etcd than Revision, which counts the
	// keys under the prefix. Not found still means the store answered.
	_, err := ks.raw.Get(pctx, probeKey)
	cancel()
	if ctx.Err() != nil {
		return // stopping
	}
	if errors.Is(err, storage.ErrNotFound) {
		err = nil
	}
	if err != nil && !errors.Is(err, storage.ErrUnavailable) {
		err = fmt.Errorf("%w: %v", storage.ErrUnavailable, err) // our own timeout
	}
	ks.health.probed(start, err)
}

// cachedEntry answers a read from the cache while the keystore is not
// healthy: the entry, and how stale it is. A key not in the cache is looked
// up in the store only if the store answers; one older than the hard TTL is
// ErrUnavailable.
func (ks *Keystore) cachedEntry(ctx context.Context, name string, h Health) (*entry, Staleness, error) {
	e := ks.cache.get(name)
	if e == nil {
		if h.storeOK {
			// Only the feed is down: the store can say.
			if e, err := ks.loadEntry(ctx, name); err == nil || !errors.Is(err, ErrUnavailable) {
				return e, Staleness{}, err
			}
		}
		return nil, Staleness{}, fmt.Errorf("%w: %s is not in this node's cache and the store is unavailable (%s)", ErrUnavailable, name, h.Reason)
	}
	known := maxTime(h.StaleSince, e.fetchedAt())
	age := max(ks.health.now().Sub(known), 0)
	if age > h.TTL.Hard {
		return nil, Staleness{}, fmt.Errorf("%w: the store is unavailable (%s) and the cached %s is %v old, past the verify cache's hard TTL %v",
			ErrUnavailable, h.Reason, name, age.Round(time.Second), h.TTL.Hard)
	}
	return e, Staleness{Stale: true, Age: age}, nil
}

// maxTime returns the later of a and b.
func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
