package sig

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// Ed25519 (RFC 8032, pure: no context, no prehash).
//
// Signing uses Go's crypto/ed25519. Verification, single and batch, uses
// curve25519-voi with the ZIP-215 rules (zip215 below): cofactored equation,
// small-order and non-canonical encodings of A and R accepted, S < ℓ
// required. One rule set for both paths means a signature never verifies
// alone and fails in a batch, or the other way round. ZIP-215 accepts some
// signatures that crypto/ed25519.Verify refuses (see the speccheck cases in
// the tests); that is deliberate (SPEC §3).

// zip215 is the only verification option set this file passes to voi.
// It has no context and no prehash, so voi's verify functions cannot panic on it.
var zip215 = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

var errEd25519Context = fmt.Errorf("%w: ed25519 has no signing context", ErrUnsupported)

type ed25519Scheme struct{ a *alg.Alg }

var _ Scheme = (*ed25519Scheme)(nil)

func newEd25519Scheme(a *alg.Alg) *ed25519Scheme {
	if a.SeedSize != ed25519.SeedSize || a.PublicKeySize != ed25519.PublicKeySize || a.OutputSize != ed25519.SignatureSize {
		panic("sig: ed25519 table entry does not match crypto/ed25519 sizes")
	}
	return &ed25519Scheme{a: a}
}

func (s *ed25519Scheme) Alg() *alg.Alg { return s.a }

func (s *ed25519Scheme) GenerateSeed() []byte {
	seed := make([]byte, s.a.SeedSize)
	_, _ = rand.Read(seed) // never fails since Go 1.24
	return seed
}

// NewPrivateKey expands the 32-byte RFC 8032 seed once (SHA-512 and the
// public key A = sB) and keeps crypto/ed25519's 64-byte private key.
func (s *ed25519Scheme) NewPrivateKey(seed []byte) (PrivateKey, error) {
	if len(seed) != s.a.SeedSize {
		return nil, keySizeError(s.a, "seed", len(seed), s.a.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub, err := s.newPublicKey(priv[ed25519.SeedSize:])
	if err != nil {
		// A = sB is always a valid point: this is a bug.
		panic("sig: derived ed25519 public key does not decode: " + err.Error())
	}
	return &ed25519PrivateKey{priv: priv, pub: pub}, nil
}

var _ FormScheme = (*ed25519Scheme)(nil)

// SecretForm returns seed ‖ A (crypto/ed25519's private key encoding).
func (s *ed25519Scheme) SecretForm(k PrivateKey) ([]byte, error) {
	ek, ok := k.(*ed25519PrivateKey)
	if !ok {
		return nil, fmt.Errorf("sig: %T is not an ed25519 private key", k)
	}
	ek.mu.RLock()
	defer ek.mu.RUnlock()
	if ek.priv == nil {
		return nil, ErrKeyDestroyed
	}
	return append([]byte(nil), ek.priv...), nil
}

// NewPrivateKeyFromForm loads seed ‖ A without deriving A: see FormScheme
// for why the form must be authenticated.
func (s *ed25519Scheme) NewPrivateKeyFromForm(form []byte) (PrivateKey, error) {
	if len(form) != ed25519.PrivateKeySize {
		return nil, keySizeError(s.a, "secret form", len(form), ed25519.PrivateKeySize)
	}
	priv := append(ed25519.PrivateKey(nil), form...)
	pub, err := s.newPublicKey(priv[ed25519.SeedSize:])
	if err != nil {
		clear(priv)
		return nil, err
	}
	return &ed25519PrivateKey{priv: priv, pub: pub}, nil
}

// NewPublicKey accepts any 32 bytes. Every encoding that ZIP-215 verification
// accepts as A (including small-order points and non-canonical encodings
// with y ≥ p) is precomputed into voi's expanded form on the first
// verification, once, so later verifications never decompress A again (and
// a key that only signs never pays for it, in time or memory). 32 bytes that are not the encoding of any
// curve point are kept as given: no signature verifies under them, and Bytes
// still returns them. A key from outside is checked first with
// CheckPublicKey, which refuses small-order points and non-points.
func (s *ed25519Scheme) NewPublicKey(pub []byte) (PublicKey, error) {
	if len(pub) != s.a.PublicKeySize {
		return nil, keySizeError(s.a, "public key", len(pub), s.a.PublicKeySize)
	}
	return s.newPublicKey(pub)
}

func (s *ed25519Scheme) newPublicKey(pub []byte) (*ed25519PublicKey, error) {
	k := &ed25519PublicKey{a: s.a}
	copy(k.raw[:], pub)
	return k, nil
}

// ed25519PrivateKey is safe for concurrent use: Sign holds a read lock, so
// Destroy waits for signatures in progress.
type ed25519PrivateKey struct {
	mu   sync.RWMutex
	priv ed25519.PrivateKey // seed ‖ A, secret; nil after Destroy
	pub  *ed25519PublicKey
}

var _ PrivateKey = (*ed25519PrivateKey)(nil)

func (k *ed25519PrivateKey) Public() PublicKey { return k.pub }

// Sign returns the deterministic RFC 8032 signature of message. A non-empty
// opts.Context is refused with ErrUnsupported (that would be Ed25519ctx, a
// different algorithm).
func (k *ed25519PrivateKey) Sign(message []byte, opts *Options) ([]byte, error) {
	if len(opts.context()) != 0 {
		return nil, errEd25519Context
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.priv == nil {
		return nil, ErrKeyDestroyed
	}
	return ed25519.Sign(k.priv, message), nil
}

func (k *ed25519PrivateKey) Destroy() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.priv)
	k.priv = nil
}

// ed25519PublicKey is immutable after construction, but for its expanded
// form, made once (under once) by the first verification.
type ed25519PublicKey struct {
	a        *alg.Alg
	raw      [ed25519.PublicKeySize]byte
	once     sync.Once
	expanded *voi.ExpandedPublicKey // precomputed -A; nil if raw is not a point
}

// exp returns the expanded public key, nil if raw is not a point.
func (k *ed25519PublicKey) exp() *voi.ExpandedPublicKey {
	k.once.Do(func() {
		// NewExpandedPublicKey fails exactly when voi's own ZIP-215 check
		// of A (unpackPublicKey) fails: y does not decode to a point. Such
		// a key is kept raw; voi then rejects every signature under it,
		// single or batch.
		if exp, err := voi.NewExpandedPublicKey(k.raw[:]); err == nil {
			k.expanded = exp
		}
	})
	return k.expanded
}

var (
	_ PublicKey     = (*ed25519PublicKey)(nil)
	_ ed25519Member = (*ed25519PublicKey)(nil)
)

func (k *ed25519PublicKey) Alg() *alg.Alg { return k.a }

func (k *ed25519PublicKey) Bytes() []byte { return append([]byte(nil), k.raw[:]...) }

// Verify checks signature under the ZIP-215 rules. A non-empty opts.Context
// is refused with ErrUnsupported.
func (k *ed25519PublicKey) Verify(message, signature []byte, opts *Options) error {
	if len(opts.context()) != 0 {
		return errEd25519Context
	}
	if !k.verify(message, signature) {
		return ErrInvalidSignature
	}
	return nil
}

func (k *ed25519PublicKey) verify(message, signature []byte) bool {
	if exp := k.exp(); exp != nil {
		return voi.VerifyExpandedWithOptions(exp, message, signature, zip215)
	}
	return voi.VerifyWithOptions(k.raw[:], message, signature, zip215)
}

func (k *ed25519PublicKey) addToBatch(bv *voi.BatchVerifier, message, signature []byte) {
	if exp := k.exp(); exp != nil {
		bv.AddExpandedWithOptions(exp, message, signature, zip215)
		return
	}
	bv.AddWithOptions(k.raw[:], message, signature, zip215)
}
