package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
)

// entry is the in-memory state of one key: an immutable metadata snapshot,
// and per version the parsed public key and the unsealed private key, each
// filled on first use.
type entry struct {
	key   *Key
	pubs  []atomic.Pointer[pubHolder]  // index = version-1
	privs []atomic.Pointer[privHolder] // index = version-1
	fill  sync.Mutex                   // serialises unsealing
	// fetched is when key was last known current from a store read, a
	// write or the change feed (UnixNano of the health clock), for the
	// age of a stale answer (health.go).
	fetched atomic.Int64
}

type pubHolder struct{ pub any }

type privHolder struct{ priv secretKey }

func newEntry(k *Key, at time.Time) *entry {
	e := &entry{
		key:   k,
		pubs:  make([]atomic.Pointer[pubHolder], len(k.Versions)),
		privs: make([]atomic.Pointer[privHolder], len(k.Versions)),
	}
	e.fetched.Store(at.UnixNano())
	return e
}

// fetchedAt is when the entry was last known current.
func (e *entry) fetchedAt() time.Time { return time.Unix(0, e.fetched.Load()) }

// seen records that the entry was known current at t.
func (e *entry) seen(t time.Time) {
	n := t.UnixNano()
	for {
		old := e.fetched.Load()
		if old >= n || e.fetched.CompareAndSwap(old, n) {
			return
		}
	}
}

// cache maps key names to entries. It never goes back in time: an entry is
// replaced only by one of a newer store revision. It is bounded; when full,
// an arbitrary entry is evicted (its secrets are left to the garbage
// collector, because a concurrent request may still be using them).
//
// A key being loaded on a miss is tracked (loading) so that a change the
// feed delivers between the store read and the install is not lost: the
// feed's newer version is installed at once (the load's older one then
// loses to it), and a deletion makes the load install nothing.
type cache struct {
	mu      sync.RWMutex
	m       map[string]*entry
	loading map[string]*load
	max     int
	now     func() time.Time // the health clock, for entry.fetched
}

// load is a key's loads in flight and the newest deletion seen meanwhile.
type load struct {
	n         int
	deletedAt int64
}

func newCache(max int, now func() time.Time) *cache {
	return &cache{m: make(map[string]*entry), loading: make(map[string]*load), max: max, now: now}
}

// beginLoad marks name as being read from the store for the cache.
func (c *cache) beginLoad(name string) {
	c.mu.Lock()
	l := c.loading[name]
	if l == nil {
		l = &load{}
		c.loading[name] = l
	}
	l.n++
	c.mu.Unlock()
}

// endLoad ends a load begun by beginLoad and installs k, what it read (nil
// when the read failed). It returns the entry current afterwards, or nil
// when the key was deleted after k was read.
func (c *cache) endLoad(name string, k *Key) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.loading[name]
	if l.n--; l.n == 0 {
		delete(c.loading, name)
	}
	if k == nil || l.deletedAt > k.revision {
		return nil
	}
	return c.putLocked(k, nil)
}

// apply installs k, a change from the feed, if k's key is cached or being
// loaded; other keys load on demand.
func (c *cache) apply(k *Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k.Name]; ok || c.loading[k.Name] != nil {
		c.putLocked(k, nil)
	}
}

func (c *cache) get(name string) *entry {
	c.mu.RLock()
	e := c.m[name]
	c.mu.RUnlock()
	return e
}

// put installs k (and optionally the unsealed key of its current version)
// unless the cache already holds a newer revision. It returns the entry that
// is current afterwards.
//
// k must have just been read from the store or written to it (or come from
// the change feed): the entry is marked current as of now.
func (c *cache) put(k *Key, priv secretKey) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.putLocked(k, priv)
}

// putLocked is put with c.mu held.
func (c *cache) putLocked(k *Key, priv secretKey) *entry {
	at := c.now()
	e := newEntry(k, at)
	if priv != nil {
		e.privs[k.Current-1].Store(&privHolder{priv: priv})
	}
	if old, ok := c.m[k.Name]; ok {
		if old.key.revision > k.revision {
			return old
		}
		if old.key.revision == k.revision {
			if priv != nil && old.privs[k.Current-1].Load() == nil {
				old.privs[k.Current-1].Store(&privHolder{priv: priv})
			}
			old.seen(at)
			return old
		}
	} else if len(c.m) >= c.max {
		for n := range c.m {
			delete(c.m, n)
			break
		}
	}
	c.m[k.Name] = e
	return e
}

func (c *cache) remove(name string, rev int64) {
	c.mu.Lock()
	if l := c.loading[name]; l != nil && rev > l.deletedAt {
		l.deletedAt = rev
	}
	if old, ok := c.m[name]; ok && old.key.revision < rev {
		delete(c.m, name)
	}
	c.mu.Unlock()
}

// names lists the cached key names.
func (c *cache) names() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]string, 0, len(c.m))
	for n := range c.m {
		out = append(out, n)
	}
	return out
}

// entry returns the cached state of a key, loading it on a miss. The cache
// is trusted as it is: callers that may be called while the keystore is not
// healthy check requireHealthy first, or use readEntry.
func (ks *Keystore) entry(ctx context.Context, name string) (*entry, error) {
	if e := ks.cache.get(name); e != nil {
		return e, nil
	}
	return ks.loadEntry(ctx, name)
}

// loadEntry reads a key from the store into the cache.
func (ks *Keystore) loadEntry(ctx context.Context, name string) (*entry, error) {
	ks.cache.beginLoad(name)
	k, err := ks.fetch(ctx, name)
	e := ks.cache.endLoad(name, k)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, fmt.Errorf("%w: key %s", ErrNotFound, name)
	}
	return e, nil
}

// readEntry is entry for the reads that stay open while the store is
// unavailable (verify, public keys): while healthy it is entry and the
// answer is current; otherwise the cached entry is served with its age
// (cachedEntry), until the hard TTL.
func (ks *Keystore) readEntry(ctx context.Context, name string) (*entry, Staleness, error) {
	if ks.health.ok() {
		e, err := ks.entry(ctx, name)
		if err == nil || !errors.Is(err, ErrUnavailable) {
			return e, Staleness{}, err
		}
		// The store failed on a miss just now (and observe made the
		// keystore unhealthy): fall through to the cache.
	}
	h := ks.health.snapshot()
	if h.Healthy {
		return ks.entryOrErr(ctx, name)
	}
	return ks.cachedEntry(ctx, name, h)
}

// entryOrErr is entry with a zero Staleness.
func (ks *Keystore) entryOrErr(ctx context.Context, name string) (*entry, Staleness, error) {
	e, err := ks.entry(ctx, name)
	return e, Staleness{}, err
}

// publicKey returns the parsed public key of version n (a sig.PublicKey or
// a wrap.PublicKey, by the key's kind).
func (e *entry) publicKey(n uint32) (any, error) {
	v, ok := e.key.Version(n)
	if !ok {
		return nil, fmt.Errorf("%w: %s has no version %d", ErrNotFound, e.key.Name, n)
	}
	if h := e.pubs[n-1].Load(); h != nil {
		return h.pub, nil
	}
	sc, err := schemeFor(e.key.Alg)
	if err != nil {
		return nil, err
	}
	pub, err := sc.parsePub(v.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("keystore: stored public key of %s: %w", e.key.KID(n), err)
	}
	e.pubs[n-1].Store(&pubHolder{pub: pub})
	return pub, nil
}

// privateKey returns the unsealed private key of version n, unsealing it
// once.
func (ks *Keystore) privateKey(ctx context.Context, e *entry, n uint32) (secretKey, error) {
	if _, ok := e.key.Version(n); !ok {
		return nil, fmt.Errorf("%w: %s has no version %d", ErrNotFound, e.key.Name, n)
	}
	if h := e.privs[n-1].Load(); h != nil {
		return h.priv, nil
	}
	e.fill.Lock()
	defer e.fill.Unlock()
	if h := e.privs[n-1].Load(); h != nil {
		return h.priv, nil
	}
	priv, err := ks.unseal(ctx, e.key, n)
	if err != nil {
		return nil, err
	}
	e.privs[n-1].Store(&privHolder{priv: priv})
	return priv, nil
}

// unseal opens the sealed seed of version n and loads it. The seed is in
// k's record (version 2), read with it; only a key still in a version 1
// record reads it from the store, apart.
func (ks *Keystore) unseal(ctx context.Context, k *Key, n uint32) (secretKey, error) {
	sealed, inRecord := k.sealedSeed(n)
	if !inRecord {
		it, err := ks.store.Get(ctx, sealedPath(k.Name, n))
		switch {
		case errors.Is(err, storage.ErrNotFound):
			// The key may have been rewritten as version 2 since k was
			// read (by a write or a migration, here or on another node),
			// its seeds moved into the record: read that.
			if nk, err := ks.fetch(ctx, k.Name); err == nil && !nk.legacy && nk.Alg == k.Alg {
				sealed, _ = nk.sealedSeed(n)
			}
		case err != nil:
			return nil, storeErr(err)
		default:
			sealed = it.Value
		}
	}
	if len(sealed) == 0 {
		return nil, fmt.Errorf("%w: no private material for %s", ErrNotFound, k.KID(n))
	}
	seed, err := ks.sealer.Open(seal.Binding{Name: k.Name, Version: n, Alg: k.Alg}, sealed)
	if err != nil {
		return nil, fmt.Errorf("keystore: unsealing %s: %w", k.KID(n), err)
	}
	defer clear(seed)
	sc, err := schemeFor(k.Alg)
	if err != nil {
		return nil, err
	}
	return sc.loadSealed(seed)
}

// follow applies the store's change feed to the cache, so that writes by
// other nodes (or other processes) are seen. When the feed ends (the store
// closed it, became unreachable, or this node fell behind), the cache is
// kept, and the keystore is unhealthy from then on (health.go): follow
// subscribes again, retrying with a growing pause while the store does not
// answer, re-reads every cached key, and only then marks the cache fresh.
// Between the new subscription and the re-read nothing can be missed: the
// feed holds every change after it was opened, and an entry is only ever
// replaced by a newer revision.
func (ks *Keystore) follow(ctx context.Context, ch <-chan storage.Event) {
	defer close(ks.done)
	end := func() {} // ends the current feed (the first one ends with ctx)
	for {
		for ev := range ch {
			ks.applyEvent(ev)
		}
		end()
		if ctx.Err() != nil {
			return
		}
		ks.health.feed(false, time.Time{})
		if ch, end = ks.resubscribe(ctx); ch == nil {
			return
		}
	}
}

// applyEvent applies one change of "k/" to the cache.
func (ks *Keystore) applyEvent(ev storage.Event) {
	name := strings.TrimPrefix(ev.Key, "k/")
	if ev.Deleted {
		ks.cache.remove(name, ev.Revision)
		return
	}
	k, err := decodeKey(ev.Value, ev.Revision)
	if err != nil {
		ks.cache.remove(name, ev.Revision)
		return
	}
	ks.cache.apply(k)
}

// Pauses between attempts to subscribe again.
const (
	resubscribeFirst = 100 * time.Millisecond
	resubscribeMax   = time.Second
)

// resubscribe opens a new feed of "k/", re-reads the cache, and marks the
// keystore's feed up again. It returns the feed and the function that ends
// it, or a nil feed when ctx ended first.
func (ks *Keystore) resubscribe(ctx context.Context) (<-chan storage.Event, context.CancelFunc) {
	pauseFor := resubscribeFirst
	for {
		wctx, cancel := context.WithCancel(ctx)
		start := ks.health.now()
		ch, err := ks.store.Watch(wctx, "k/")
		if err == nil {
			if err = ks.resync(ctx); err == nil {
				ks.health.feed(true, start)
				return ch, cancel
			}
		}
		cancel() // a feed whose re-read failed is opened anew
		if !pause(ctx, pauseFor) {
			return nil, func() {}
		}
		pauseFor = min(2*pauseFor, resubscribeMax)
	}
}

// resyncGetMax is the most cached keys resync re-reads one by one; with more
// it lists "k/".
const resyncGetMax = 128

// resync re-reads every cached key from the store, after a new feed was
// opened: an entry that changed while no feed was open is replaced, one
// deleted is dropped, and every one is marked current.
func (ks *Keystore) resync(ctx context.Context) error {
	names := ks.cache.names()
	if len(names) == 0 {
		return nil
	}
	// A key deleted before this revision and still cached is dropped; one
	// written after it (by this node, meanwhile) is kept.
	rev, err := ks.store.Revision(ctx)
	if err != nil {
		return err
	}
	if len(names) <= resyncGetMax {
		for _, name := range names {
			_, err := ks.loadEntry(ctx, name)
			switch {
			case errors.Is(err, ErrNotFound):
				ks.cache.remove(name, rev+1)
			case err != nil:
				return err
			}
		}
		return nil
	}
	cached := make(map[string]bool, len(names))
	for _, n := range names {
		cached[n] = false
	}
	after := ""
	for {
		items, err := ks.store.List(ctx, "k/", after, resyncPage)
		if err != nil {
			return storeErr(err)
		}
		for _, it := range items {
			name := strings.TrimPrefix(it.Key, "k/")
			if _, ok := cached[name]; !ok {
				continue
			}
			cached[name] = true
			k, err := decodeKey(it.Value, it.Revision)
			if err != nil {
				ks.cache.remove(name, it.Revision+1)
				continue
			}
			ks.cache.put(k, nil)
		}
		if len(items) < resyncPage {
			break
		}
		after = items[len(items)-1].Key
	}
	for name, seen := range cached {
		if !seen {
			ks.cache.remove(name, rev+1)
		}
	}
	return nil
}

// resyncPage is how many keys one List of resync reads.
const resyncPage = 512
