package keystore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"strings"
	"time"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/symm"
)

// Config is what a Keystore is built from.
type Config struct {
	// Store holds metadata and sealed records. Required.
	Store storage.Store
	// Sealer seals private seeds at rest. Required.
	Sealer seal.Sealer
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// CacheSize bounds the number of keys whose metadata, parsed public keys
	// and unsealed signing key are kept in memory. DefaultCacheSize when 0.
	CacheSize int
	// VerifyCacheTTL bounds how long verify and public-key reads are
	// answered from the cache while the store is unavailable (health.go);
	// DefaultCacheTTL when zero. It must pass CacheTTL.Check.
	VerifyCacheTTL CacheTTL
	// ProbeInterval is how often the store is probed (DefaultProbeInterval
	// when 0), and ProbeTimeout bounds one probe (DefaultProbeTimeout when
	// 0).
	ProbeInterval, ProbeTimeout time.Duration
	// Log receives the changes of the store's health (warn when it becomes
	// unavailable, info when it is back, warn once when an outage passes
	// the soft TTL); nothing when nil. No key or secret is ever logged.
	Log *slog.Logger

	// clock is the health clock (cache ages, TTLs); time.Now when nil. Set
	// by this package's tests.
	clock func() time.Time
}

// DefaultCacheSize is the default bound of the key cache.
const DefaultCacheSize = 100_000

// Keystore is the key custody core. Safe for concurrent use.
type Keystore struct {
	store     storage.Store // raw, seen through observedStore (health.go)
	raw       storage.Store // as configured: for the probe and capabilities
	sealer    seal.Sealer
	now       func() time.Time
	cache     *cache
	health    *health
	counters  counters
	revoked   *revocations // revoked token ids (revoke.go)
	stop      context.CancelFunc
	done      chan struct{} // closed when follow returns
	probeDone chan struct{} // closed when probe returns
}

// Open checks that the sealer's key-encryption key matches the store (a
// store is bound to its KEK on first open), reads the token revocation list,
// starts following the store's change feed so that the cache and the
// revocation list stay coherent with other writers, and starts probing the
// store's health (health.go).
// ErrWrongKEK means the KEK does not open this store's records.
func Open(ctx context.Context, cfg Config) (*Keystore, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("keystore: Config needs a Store and a Sealer")
	}
	if cfg.VerifyCacheTTL == (CacheTTL{}) {
		cfg.VerifyCacheTTL = DefaultCacheTTL
	}
	if err := cfg.VerifyCacheTTL.Check(); err != nil {
		return nil, err
	}
	if cfg.ProbeInterval <= 0 {
		cfg.ProbeInterval = DefaultProbeInterval
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.clock == nil {
		cfg.clock = time.Now
	}
	ks := &Keystore{raw: cfg.Store, sealer: cfg.Sealer, now: cfg.Now}
	if ks.now == nil {
		ks.now = time.Now
	}
	ks.health = newHealth(cfg.clock, cfg.Log, cfg.VerifyCacheTTL)
	ks.store = observedStore{Store: cfg.Store, h: ks.health}
	size := cfg.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	ks.cache = newCache(size, cfg.clock)
	ks.counters = counters{m: make(map[string]*counter), block: counterBlock, limit: symm.MaxEncryptions}
	if err := ks.checkKEK(ctx); err != nil {
		return nil, err
	}
	// Subscribe before anything is cached, so that no change made after a
	// cache fill can be missed.
	wctx, cancel := context.WithCancel(context.Background())
	feed, err := ks.store.Watch(wctx, "k/")
	if err != nil {
		cancel()
		return nil, storeErr(err)
	}
	if ks.revoked, err = openRevocations(ctx, wctx, ks.store); err != nil {
		cancel()
		return nil, err
	}
	ks.stop, ks.done, ks.probeDone = cancel, make(chan struct{}), make(chan struct{})
	go ks.follow(wctx, feed)
	go ks.probe(wctx, cfg.ProbeInterval, cfg.ProbeTimeout)
	return ks, nil
}

// Close stops following the change feed and probing the store. It does not
// close the Store.
func (ks *Keystore) Close() {
	ks.stop()
	<-ks.done
	<-ks.probeDone
	<-ks.revoked.done
}

// CreateParams are the inputs of Create. Tenant and Purpose are expected to
// have been checked against the key-id syntax by the caller.
type CreateParams struct {
	Tenant, Purpose, Alg string
	Labels               map[string]string
	// OpID, when set, makes the call idempotent: the same OpID with the same
	// parameters returns the first result; with other parameters, ErrConflict.
	OpID string
}

func (p CreateParams) digest() string {
	h := sha256.New()
	b, _ := json.Marshal(struct {
		Op, T, P, A string
		L           map[string]string
	}{"create", p.Tenant, p.Purpose, p.Alg, p.Labels})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// Create makes a new key with version 1 from a fresh random seed. While the
// store is unavailable it fails at once with ErrUnavailable.
func (ks *Keystore) Create(ctx context.Context, p CreateParams) (*Key, error) {
	if err := ks.requireHealthy("create a key"); err != nil {
		return nil, err
	}
	if err := checkSegment("tenant", p.Tenant); err != nil {
		return nil, err
	}
	if err := checkSegment("purpose", p.Purpose); err != nil {
		return nil, err
	}
	if err := checkLabels(p.Labels); err != nil {
		return nil, err
	}
	sc, err := schemeFor(p.Alg)
	if err != nil {
		return nil, err
	}
	digest := p.digest()
	if p.OpID != "" {
		var k Key
		if ok, err := ks.replay(ctx, p.Tenant, p.OpID, digest, &k); ok || err != nil {
			return &k, err
		}
	}
	k, now := ks.skeleton(p.Tenant, p.Purpose, p.Alg)
	k.Labels = p.Labels
	v, sealed, priv, err := ks.newVersion(sc, k.Name, 1, now)
	if err != nil {
		return nil, err
	}
	k.Versions = []Version{v}
	return ks.commitNew(ctx, k, sealed, priv, p.OpID, "create", digest)
}

// skeleton starts the metadata of a new key: a fresh UUIDv7, version 1
// current, created now (the returned time, to the second).
func (ks *Keystore) skeleton(tenant, purpose, alg string) (*Key, time.Time) {
	now := ks.now().UTC().Truncate(time.Second)
	k := &Key{
		Tenant: tenant, Purpose: purpose, Alg: alg, UUID: newUUIDv7(ks.now()),
		CreatedAt: now, Current: 1, MinVerify: 1,
	}
	k.Name = k.Tenant + "/" + k.Purpose + "/" + k.Alg + "/" + k.UUID
	return k, now
}

// commitNew writes a new key (with the sealed seed of version 1, unless it
// is verify-only) and its op_id result in one atomic write, then caches it.
// Losing a race with the same op_id answers as the winner did.
func (ks *Keystore) commitNew(ctx context.Context, k *Key, sealed []byte, priv secretKey, opID, kind, digest string) (*Key, error) {
	k.sealed = [][]byte{sealed} // nil for a verify-only key
	b, err := k.encode()
	if err != nil {
		if priv != nil {
			priv.destroy()
		}
		return nil, err
	}
	muts := []storage.Mutation{{Key: keyPath(k.Name), Value: b, Expect: storage.MustNotExist}}
	if opID != "" {
		muts = append(muts, opMutation(k.Tenant, opID, kind, digest, k))
	}
	rev, err := ks.store.Apply(ctx, muts...)
	if err != nil {
		if priv != nil {
			priv.destroy()
		}
		if errors.Is(err, storage.ErrConflict) && opID != "" {
			var won Key
			if ok, err := ks.replay(ctx, k.Tenant, opID, digest, &won); ok || err != nil {
				return &won, err
			}
		}
		return nil, storeErr(err)
	}
	k.revision = rev
	ks.cache.put(k, priv)
	return k, nil
}

// RotateResult names the new current version and the one before it.
type RotateResult struct {
	KID, Previous string
}

// maxCASAttempts bounds how often a compare-and-swap write (rotate, a state
// or configuration change, an encryption counter) is re-read and tried
// again when the record changed underneath it: another node's write won
// the race, and the operation is simply redone on top of it.
const maxCASAttempts = 16

// casBackoff waits before attempt (2, 3, ...) of a compare-and-swap that
// lost a race: a random pause of up to attempt-1 milliseconds (at most
// 120 ms over all attempts), so that writers racing for one key spread out
// instead of colliding again in lockstep. It reports false when ctx ended.
func casBackoff(ctx context.Context, attempt int) bool {
	return pause(ctx, time.Duration(mathrand.Int64N(int64(attempt-1)*int64(time.Millisecond)+1)))
}

// Rotate adds a new version from a fresh seed and makes it current. Earlier
// versions keep verifying. It is linearizable: a rotation that loses a race
// with another (on this node or any other on the same store) re-reads the
// key and adds the next version on top, with fresh key material each time
// (the unused one is destroyed), so concurrent rotations produce
// consecutive versions, never two of the same number and none lost. Only a
// key that keeps changing for maxCASAttempts attempts gives ErrConflict.
// With OpID set, the same OpID for the same key answers the first result,
// whichever node ran it (the op record is written in the same atomic write
// as the version), and for another key ErrConflict. While the store is
// unavailable it fails at once with ErrUnavailable.
func (ks *Keystore) Rotate(ctx context.Context, name, opID string) (RotateResult, error) {
	if err := ks.requireHealthy("rotate"); err != nil {
		return RotateResult{}, err
	}
	sum := sha256.Sum256([]byte("rotate\x00" + name))
	digest := hex.EncodeToString(sum[:])
	for attempt := 1; ; attempt++ {
		res, done, err := ks.rotateOnce(ctx, name, opID, digest)
		if done || err != nil {
			return res, err
		}
		if attempt == maxCASAttempts {
			return RotateResult{}, fmt.Errorf("%w: %s was rotated concurrently %d times in a row; retry", ErrConflict, name, maxCASAttempts)
		}
		if !casBackoff(ctx, attempt+1) {
			return RotateResult{}, ctx.Err()
		}
	}
}

// rotateOnce is one attempt of Rotate: done is false when the key changed
// underneath it (nothing was written; try again).
func (ks *Keystore) rotateOnce(ctx context.Context, name, opID, digest string) (res RotateResult, done bool, err error) {
	k, err := ks.fetchForWrite(ctx, name)
	if err != nil {
		return RotateResult{}, false, err
	}
	if err := refuseVerifyOnly(k, "rotate"); err != nil {
		return RotateResult{}, false, err
	}
	if opID != "" {
		if ok, err := ks.replay(ctx, k.Tenant, opID, digest, &res); ok || err != nil {
			return res, true, err
		}
	}
	sc, err := schemeFor(k.Alg)
	if err != nil {
		return RotateResult{}, false, err
	}
	n := uint32(len(k.Versions)) + 1
	now := ks.now().UTC().Truncate(time.Second)
	v, sealed, priv, err := ks.newVersion(sc, k.Name, n, now)
	if err != nil {
		return RotateResult{}, false, err
	}
	prev := k.Current
	nk := k.clone()
	nk.Versions = append(nk.Versions, v)
	nk.sealed = append(nk.sealed, sealed)
	nk.Current = n
	res = RotateResult{KID: nk.KID(n), Previous: nk.KID(prev)}
	muts, err := keyWrite(k, nk)
	if err != nil {
		priv.destroy()
		return RotateResult{}, false, err
	}
	if opID != "" {
		muts = append(muts, opMutation(k.Tenant, opID, "rotate", digest, res))
	}
	rev, err := ks.store.Apply(ctx, muts...)
	if err != nil {
		priv.destroy()
		if !errors.Is(err, storage.ErrConflict) {
			return RotateResult{}, false, storeErr(err)
		}
		if opID != "" {
			// The same op_id may have won on another node.
			var won RotateResult
			if ok, err := ks.replay(ctx, k.Tenant, opID, digest, &won); ok || err != nil {
				return won, true, err
			}
		}
		return RotateResult{}, false, nil
	}
	nk.revision = rev
	ks.cache.put(nk, priv)
	return res, true, nil
}

// Get returns the key's metadata. While the store answers it is
// linearizable: it reads the store (and refreshes the cache with what it
// read), so it sees every write acknowledged before it was called, on any
// node. While the store is unavailable it answers from the cache, as
// GetCached says.
func (ks *Keystore) Get(ctx context.Context, name string) (*Key, error) {
	k, _, err := ks.GetCached(ctx, name)
	return k, err
}

// GetCached is Get, and says whether the answer came from the cache while
// the store was unavailable, and how old it is. A stale answer is given
// until the entry passes the verify cache's hard TTL; after that, or for a
// key not in the cache, the answer is ErrUnavailable.
func (ks *Keystore) GetCached(ctx context.Context, name string) (*Key, Staleness, error) {
	if ks.health.ok() || ks.health.storeAnswers() {
		e, err := ks.loadEntry(ctx, name)
		if err == nil || !errors.Is(err, ErrUnavailable) {
			if err != nil {
				return nil, Staleness{}, err
			}
			return e.key, Staleness{}, nil
		}
	}
	e, st, err := ks.readEntry(ctx, name)
	if err != nil {
		return nil, Staleness{}, err
	}
	return e.key, st, nil
}

// ListParams select a page of keys.
type ListParams struct {
	// Prefix restricts the listing to names starting with it, such as
	// "tenant/" or "tenant/purpose/".
	Prefix string
	// After is the last name of the previous page ("" for the first).
	After string
	// Limit is the page size; required, > 0.
	Limit int
	// Visible, when set, drops keys the caller may not see.
	Visible func(*Key) bool
}

// List returns up to Limit keys in name order after p.After, and the name to
// pass as After for the next page ("" when this is the last page).
//
// It reads the store; while the store is unavailable it fails at once with
// ErrUnavailable (the cache holds only some keys, so it cannot list).
func (ks *Keystore) List(ctx context.Context, p ListParams) ([]*Key, string, error) {
	if err := ks.requireHealthy("list keys"); err != nil {
		return nil, "", err
	}
	if p.Limit <= 0 {
		return nil, "", fmt.Errorf("%w: list limit must be positive", ErrInvalidArgument)
	}
	var out []*Key
	after := p.After
	if after != "" {
		after = keyPath(after)
	}
	for {
		items, err := ks.store.List(ctx, keyPath(p.Prefix), after, p.Limit+1)
		if err != nil {
			return nil, "", storeErr(err)
		}
		for _, it := range items {
			k, err := decodeKey(it.Value, it.Revision)
			if err != nil {
				return nil, "", err
			}
			if p.Visible != nil && !p.Visible(k) {
				continue
			}
			if len(out) == p.Limit {
				// One more visible key exists: this page is full.
				return out, out[len(out)-1].Name, nil
			}
			out = append(out, k)
		}
		if len(items) <= p.Limit {
			return out, "", nil
		}
		after = items[len(items)-1].Key
	}
}

// newVersion generates a seed, derives the public key and seals the seed.
// The returned private key is for the cache; the seed is cleared.
func (ks *Keystore) newVersion(sc scheme, name string, n uint32, now time.Time) (Version, []byte, secretKey, error) {
	seed := sc.generate()
	defer clear(seed)
	return ks.versionFromSeed(sc, name, n, now, seed, OriginGenerated)
}

// fetch reads a key from the store, bypassing the cache (for
// compare-and-swap updates).
func (ks *Keystore) fetch(ctx context.Context, name string) (*Key, error) {
	it, err := ks.store.Get(ctx, keyPath(name))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: key %s", ErrNotFound, name)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	return decodeKey(it.Value, it.Revision)
}

// fetchForWrite is fetch for a write of the key: a key read from a version
// 1 record gets its sealed seeds read too (from sealedPath), so that the
// version 2 record written in its place holds them (see keyWrite).
func (ks *Keystore) fetchForWrite(ctx context.Context, name string) (*Key, error) {
	k, err := ks.fetch(ctx, name)
	if err != nil || !k.legacy {
		return k, err
	}
	return k, ks.readLegacySeeds(ctx, k)
}

// readLegacySeeds fills k.sealed from the separate records of a version 1
// key; a version without one (destroyed, verify-only) has none.
func (ks *Keystore) readLegacySeeds(ctx context.Context, k *Key) error {
	sealed := make([][]byte, len(k.Versions))
	for i := range k.Versions {
		it, err := ks.store.Get(ctx, sealedPath(k.Name, uint32(i+1)))
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return storeErr(err)
		}
		sealed[i] = it.Value
	}
	k.sealed = sealed
	return nil
}

// keyWrite returns the mutations that replace old, as read from the store,
// with nk: nk's version 2 record, written only if old is still the stored
// revision, and, when old was a version 1 record, the deletion of its
// separate sealed seeds (their copies are in nk's record) in the same
// atomic write. A record too large is ErrUnsupported (MaxKeyRecordSize).
func keyWrite(old, nk *Key) ([]storage.Mutation, error) {
	b, err := nk.encode()
	if err != nil {
		return nil, err
	}
	muts := []storage.Mutation{{Key: keyPath(nk.Name), Value: b, Expect: old.revision}}
	if old.legacy {
		for i := range old.Versions {
			muts = append(muts, storage.Mutation{Key: sealedPath(old.Name, uint32(i+1)), Expect: storage.AnyRevision})
		}
	}
	nk.legacy = false
	return muts, nil
}

func storeErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, storage.ErrInvalid) {
		// Refused as such (etcd: a request too large), not an outage.
		return fmt.Errorf("keystore: the store refused the request: %w", err)
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func checkSegment(what, s string) error {
	if s == "" || strings.ContainsAny(s, "/#") {
		return fmt.Errorf("%w: bad %s", ErrInvalidArgument, what)
	}
	return nil
}

// Label limits.
const (
	maxLabels   = 64
	maxLabelLen = 128
)

func checkLabels(l map[string]string) error {
	if len(l) > maxLabels {
		return fmt.Errorf("%w: at most %d labels", ErrInvalidArgument, maxLabels)
	}
	for a, b := range l {
		if a == "" || len(a) > maxLabelLen || len(b) > maxLabelLen {
			return fmt.Errorf("%w: label names are 1 to %d bytes and values at most %d", ErrInvalidArgument, maxLabelLen, maxLabelLen)
		}
	}
	return nil
}

// newUUIDv7 returns an RFC 9562 version 7 UUID: time-ordered, so keys of one
// tenant, purpose and alg list in creation order, with 74 random bits.
func newUUIDv7(now time.Time) string {
	var b [16]byte
	rand.Read(b[6:])
	ms := uint64(now.UnixMilli())
	for i := 0; i < 6; i++ {
		b[i] = byte(ms >> (40 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
