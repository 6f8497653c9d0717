package sig

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/cloudflare/circl/sign/slhdsa"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// SLH-DSA (FIPS 205), pure (no pre-hash), with an optional context string of
// at most 255 bytes, from github.com/cloudflare/circl (sign/slhdsa), in
// FIPS 140-3 mode too: the standard library has no SLH-DSA.
//
// A private key is stored as the three n-byte inputs of slh_keygen_internal
// (FIPS 205 Algorithm 18) concatenated: SK.seed ‖ SK.prf ‖ PK.seed, 48 bytes
// for the 128-bit parameter sets. That is what NIST's ACVP keyGen vectors
// give, so another FIPS 205 implementation derives the same key from it.
// (circl's own DeriveKey is different: it stretches a seed of another size
// with MGF1 or SHAKE first; it is not used.)
//
// Sign is hedged, FIPS 205's default variant: opt_rand comes from
// crypto/rand. The deterministic variant (opt_rand = PK.seed) and signing
// with a given opt_rand are reached only through the unexported
// slhdsaPrivateKey.sign, for known-answer tests.
//
// SLH-DSA-SHA2-128s is slow to sign (about 0.4 s here; see the benchmarks)
// and quick to verify (about 0.4 ms); its signatures are 7856 bytes.

type slhdsaScheme struct {
	a  *alg.Alg
	id slhdsa.ID
	n  int // the security parameter n of FIPS 205 Table 2, in bytes
}

var _ Scheme = (*slhdsaScheme)(nil)

// newSLHDSAScheme returns the scheme of table entry a, the parameter set id.
// It panics if the sizes of the entry and of circl disagree.
func newSLHDSAScheme(a *alg.Alg, id slhdsa.ID) *slhdsaScheme {
	s := &slhdsaScheme{a: a, id: id, n: a.PublicKeySize / 2}
	sch := id.Scheme()
	if a.PublicKeySize != sch.PublicKeySize() || a.OutputSize != sch.SignatureSize() ||
		a.SeedSize != 3*s.n || sch.PrivateKeySize() != 4*s.n {
		panic("sig: " + a.Name + " table entry does not match circl " + id.String() + " sizes")
	}
	return s
}

func (s *slhdsaScheme) Alg() *alg.Alg { return s.a }

func (s *slhdsaScheme) GenerateSeed() []byte {
	seed := make([]byte, s.a.SeedSize)
	_, _ = rand.Read(seed) // never fails since Go 1.24
	return seed
}

// NewPrivateKey runs slh_keygen_internal(SK.seed, SK.prf, PK.seed) (FIPS 205
// Algorithm 18) on the three thirds of seed, once: for SLH-DSA-SHA2-128s
// that computes the root of the top XMSS tree, tens of milliseconds.
func (s *slhdsaScheme) NewPrivateKey(seed []byte) (PrivateKey, error) {
	if len(seed) != s.a.SeedSize {
		return nil, keySizeError(s.a, "seed", len(seed), s.a.SeedSize)
	}
	// slhdsa.GenerateKey reads SK.seed, SK.prf and PK.seed, in that order
	// (FIPS 205 Algorithm 21), each into a buffer of its own that becomes
	// part of the key; seedReader remembers those buffers so that Destroy
	// can clear them.
	r := &seedReader{rest: seed}
	_, priv, err := slhdsa.GenerateKey(r, s.id)
	if err != nil || len(r.rest) != 0 {
		r.clear()
		// The length is checked above, so this is a change in circl.
		return nil, fmt.Errorf("sig: %s: key generation read %d of %d seed bytes: %v", s.a.Name, len(seed)-len(r.rest), len(seed), err)
	}
	pubBytes, err := priv.PublicKey().MarshalBinary()
	if err != nil {
		r.clear()
		return nil, fmt.Errorf("sig: %s: %w", s.a.Name, err)
	}
	pub, err := s.newPublicKey(pubBytes)
	if err != nil {
		r.clear()
		return nil, err
	}
	return &slhdsaPrivateKey{priv: &priv, filled: r.filled, pub: pub}, nil
}

// NewPublicKey parses PK.seed ‖ PK.root (FIPS 205 §9.1). Every string of
// Alg().PublicKeySize bytes is a public key, so only the length is checked.
func (s *slhdsaScheme) NewPublicKey(pub []byte) (PublicKey, error) {
	if len(pub) != s.a.PublicKeySize {
		return nil, keySizeError(s.a, "public key", len(pub), s.a.PublicKeySize)
	}
	return s.newPublicKey(pub)
}

func (s *slhdsaScheme) newPublicKey(pub []byte) (*slhdsaPublicKey, error) {
	k := &slhdsaPublicKey{a: s.a, raw: append([]byte(nil), pub...), pk: slhdsa.PublicKey{ID: s.id}}
	if err := k.pk.UnmarshalBinary(pub); err != nil { // copies pub
		return nil, fmt.Errorf("sig: %s public key: %w", s.a.Name, err)
	}
	return k, nil
}

// seedReader hands a seed to slhdsa.GenerateKey and records the buffers it
// filled.
type seedReader struct {
	rest   []byte
	filled [][]byte
}

func (r *seedReader) Read(p []byte) (int, error) {
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	r.filled = append(r.filled, p[:n])
	return n, nil
}

func (r *seedReader) clear() {
	for _, b := range r.filled {
		clear(b)
	}
}

// slhdsaPrivateKey is safe for concurrent use: Sign holds a read lock, so
// Destroy waits for signatures in progress.
type slhdsaPrivateKey struct {
	mu     sync.RWMutex
	priv   *slhdsa.PrivateKey // secret; nil after Destroy
	filled [][]byte           // SK.seed, SK.prf and PK.seed as priv holds them
	pub    *slhdsaPublicKey
}

var _ PrivateKey = (*slhdsaPrivateKey)(nil)

func (k *slhdsaPrivateKey) Public() PublicKey { return k.pub }

// Sign returns a hedged SLH-DSA signature (FIPS 205 Algorithm 22, pure, with
// fresh opt_rand from crypto/rand) of message under opts.Context (empty by
// default). A context longer than 255 bytes is refused with an error
// wrapping ErrUnsupported.
func (k *slhdsaPrivateKey) Sign(message []byte, opts *Options) ([]byte, error) {
	return k.sign(message, opts, nil)
}

// sign is Sign with opt_rand = addRand (n bytes) if addRand is not nil:
// PK.seed gives the deterministic variant of FIPS 205. Only the tests pass
// one, to check known answers.
func (k *slhdsaPrivateKey) sign(message []byte, opts *Options, addRand []byte) ([]byte, error) {
	ctx, err := boundedContext(opts)
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.priv == nil {
		return nil, ErrKeyDestroyed
	}
	random := rand.Reader
	if addRand != nil {
		random = bytes.NewReader(addRand)
	}
	sig, err := slhdsa.SignRandomized(k.priv, random, slhdsa.NewMessage(message), ctx)
	if err != nil {
		return nil, fmt.Errorf("sig: %s: %w", k.pub.a.Name, err)
	}
	return sig, nil
}

// Destroy overwrites SK.seed and SK.prf (and PK.seed) inside circl's key,
// best effort.
func (k *slhdsaPrivateKey) Destroy() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, b := range k.filled {
		clear(b)
	}
	k.filled = nil
	k.priv = nil
}

// slhdsaPublicKey is immutable after construction.
type slhdsaPublicKey struct {
	a   *alg.Alg
	raw []byte
	pk  slhdsa.PublicKey
}

var _ PublicKey = (*slhdsaPublicKey)(nil)

func (k *slhdsaPublicKey) Alg() *alg.Alg { return k.a }

func (k *slhdsaPublicKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

// Verify checks a pure FIPS 205 signature (Algorithm 24) of message under
// opts.Context. A context longer than 255 bytes is refused with an error
// wrapping ErrUnsupported.
func (k *slhdsaPublicKey) Verify(message, signature []byte, opts *Options) error {
	ctx, err := boundedContext(opts)
	if err != nil {
		return err
	}
	if len(signature) != k.a.OutputSize || !slhdsa.Verify(&k.pk, slhdsa.NewMessage(message), signature, ctx) {
		return ErrInvalidSignature
	}
	return nil
}
