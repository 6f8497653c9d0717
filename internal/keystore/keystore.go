package keystore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
}

// DefaultCacheSize is the default bound of the key cache.
const DefaultCacheSize = 100_000

// Keystore is the key custody core. Safe for concurrent use.
type Keystore struct {
	store    storage.Store
	sealer   seal.Sealer
	now      func() time.Time
	cache    *cache
	counters counters
	revoked  *revocations // revoked token ids (revoke.go)
	stop     context.CancelFunc
	done     chan struct{}
}

// Open checks that the sealer's key-encryption key matches the store (a
// store is bound to its KEK on first open), reads the token revocation list,
// and starts following the store's change feed so that the cache and the
// revocation list stay coherent with other writers.
// ErrWrongKEK means the KEK does not open this store's records.
func Open(ctx context.Context, cfg Config) (*Keystore, error) {
	if cfg.Store == nil || cfg.Sealer == nil {
		return nil, errors.New("keystore: Config needs a Store and a Sealer")
	}
	ks := &Keystore{store: cfg.Store, sealer: cfg.Sealer, now: cfg.Now}
	if ks.now == nil {
		ks.now = time.Now
	}
	size := cfg.CacheSize
	if size <= 0 {
		size = DefaultCacheSize
	}
	ks.cache = newCache(size)
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
	ks.stop, ks.done = cancel, make(chan struct{})
	go ks.follow(wctx, feed)
	return ks, nil
}

// Close stops following the change feed. It does not close the Store.
func (ks *Keystore) Close() {
	ks.stop()
	<-ks.done
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

// Create makes a new key with version 1 from a fresh random seed.
func (ks *Keystore) Create(ctx context.Context, p CreateParams) (*Key, error) {
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
	muts := []storage.Mutation{{Key: keyPath(k.Name), Value: k.encode(), Expect: storage.MustNotExist}}
	if sealed != nil {
		muts = append(muts, storage.Mutation{Key: sealedPath(k.Name, 1), Value: sealed, Expect: storage.MustNotExist})
	}
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

// Rotate adds a new version from a fresh seed and makes it current. Earlier
// versions keep verifying. A concurrent rotation of the same key makes one
// of the two fail with ErrConflict; with OpID set, a replay returns the first
// result.
func (ks *Keystore) Rotate(ctx context.Context, name, opID string) (RotateResult, error) {
	k, err := ks.fetch(ctx, name)
	if err != nil {
		return RotateResult{}, err
	}
	if err := refuseVerifyOnly(k, "rotate"); err != nil {
		return RotateResult{}, err
	}
	sum := sha256.Sum256([]byte("rotate\x00" + name))
	digest := hex.EncodeToString(sum[:])
	var res RotateResult
	if opID != "" {
		if ok, err := ks.replay(ctx, k.Tenant, opID, digest, &res); ok || err != nil {
			return res, err
		}
	}
	sc, err := schemeFor(k.Alg)
	if err != nil {
		return RotateResult{}, err
	}
	n := uint32(len(k.Versions)) + 1
	now := ks.now().UTC().Truncate(time.Second)
	v, sealed, priv, err := ks.newVersion(sc, k.Name, n, now)
	if err != nil {
		return RotateResult{}, err
	}
	prev := k.Current
	nk := k.clone()
	nk.Versions = append(nk.Versions, v)
	nk.Current = n
	res = RotateResult{KID: nk.KID(n), Previous: nk.KID(prev)}
	muts := []storage.Mutation{
		{Key: keyPath(name), Value: nk.encode(), Expect: k.revision},
		{Key: sealedPath(name, n), Value: sealed, Expect: storage.MustNotExist},
	}
	if opID != "" {
		muts = append(muts, opMutation(k.Tenant, opID, "rotate", digest, res))
	}
	rev, err := ks.store.Apply(ctx, muts...)
	if err != nil {
		priv.destroy()
		if !errors.Is(err, storage.ErrConflict) {
			return RotateResult{}, storeErr(err)
		}
		if opID != "" {
			var won RotateResult
			if ok, err := ks.replay(ctx, k.Tenant, opID, digest, &won); ok || err != nil {
				return won, err
			}
		}
		return RotateResult{}, fmt.Errorf("%w: %s was rotated concurrently; retry", ErrConflict, name)
	}
	nk.revision = rev
	ks.cache.put(nk, priv)
	return res, nil
}

// Get returns the key's metadata.
func (ks *Keystore) Get(ctx context.Context, name string) (*Key, error) {
	e, err := ks.entry(ctx, name)
	if err != nil {
		return nil, err
	}
	return e.key, nil
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
func (ks *Keystore) List(ctx context.Context, p ListParams) ([]*Key, string, error) {
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

func storeErr(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err
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
