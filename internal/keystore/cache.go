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
}

type pubHolder struct{ pub any }

type privHolder struct{ priv secretKey }

func newEntry(k *Key) *entry {
	return &entry{
		key:   k,
		pubs:  make([]atomic.Pointer[pubHolder], len(k.Versions)),
		privs: make([]atomic.Pointer[privHolder], len(k.Versions)),
	}
}

// cache maps key names to entries. It never goes back in time: an entry is
// replaced only by one of a newer store revision. It is bounded; when full,
// an arbitrary entry is evicted (its secrets are left to the garbage
// collector, because a concurrent request may still be using them).
type cache struct {
	mu  sync.RWMutex
	m   map[string]*entry
	max int
}

func newCache(max int) *cache { return &cache{m: make(map[string]*entry), max: max} }

func (c *cache) get(name string) *entry {
	c.mu.RLock()
	e := c.m[name]
	c.mu.RUnlock()
	return e
}

// put installs k (and optionally the unsealed key of its current version)
// unless the cache already holds a newer revision. It returns the entry that
// is current afterwards.
func (c *cache) put(k *Key, priv secretKey) *entry {
	e := newEntry(k)
	if priv != nil {
		e.privs[k.Current-1].Store(&privHolder{priv: priv})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k.Name]; ok {
		if old.key.revision > k.revision {
			return old
		}
		if old.key.revision == k.revision {
			if priv != nil && old.privs[k.Current-1].Load() == nil {
				old.privs[k.Current-1].Store(&privHolder{priv: priv})
			}
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
	if old, ok := c.m[name]; ok && old.key.revision < rev {
		delete(c.m, name)
	}
	c.mu.Unlock()
}

func (c *cache) reset() {
	c.mu.Lock()
	c.m = make(map[string]*entry)
	c.mu.Unlock()
}

// entry returns the cached state of a key, loading it on a miss.
func (ks *Keystore) entry(ctx context.Context, name string) (*entry, error) {
	if e := ks.cache.get(name); e != nil {
		return e, nil
	}
	k, err := ks.fetch(ctx, name)
	if err != nil {
		return nil, err
	}
	return ks.cache.put(k, nil), nil
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

// unseal opens the sealed seed of version n and loads it.
func (ks *Keystore) unseal(ctx context.Context, k *Key, n uint32) (secretKey, error) {
	it, err := ks.store.Get(ctx, sealedPath(k.Name, n))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: no private material for %s", ErrNotFound, k.KID(n))
	}
	if err != nil {
		return nil, storeErr(err)
	}
	seed, err := ks.sealer.Open(seal.Binding{Name: k.Name, Version: n, Alg: k.Alg}, it.Value)
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
// other nodes (or other processes) are seen. If the feed breaks, the cache
// is emptied and the feed re-opened.
func (ks *Keystore) follow(ctx context.Context, ch <-chan storage.Event) {
	defer close(ks.done)
	for {
		for ev := range ch {
			name := strings.TrimPrefix(ev.Key, "k/")
			if ev.Deleted {
				ks.cache.remove(name, ev.Revision)
				continue
			}
			k, err := decodeKey(ev.Value, ev.Revision)
			if err != nil {
				ks.cache.remove(name, ev.Revision)
				continue
			}
			// Refresh only keys already cached; others load on demand.
			if ks.cache.get(name) != nil {
				ks.cache.put(k, nil)
			}
		}
		// The feed ended: either we are stopping, or we fell behind. Forget
		// everything and subscribe again, retrying while the store is
		// unreachable; entries cached before the new subscription took hold
		// may have missed a change, so they are dropped once more after it.
		ks.cache.reset()
		for {
			if ctx.Err() != nil {
				return
			}
			var err error
			if ch, err = ks.store.Watch(ctx, "k/"); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		ks.cache.reset()
	}
}
