package sig

import (
	"crypto/fips140"
	"crypto/mldsa"
	"crypto/rand"
	"fmt"
	"sync"

	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// ML-DSA (FIPS 204): ML-DSA-44, ML-DSA-65 and ML-DSA-87, pure (no pre-hash,
// no external μ), with an optional context string of at most 255 bytes.
//
// A private key is stored as the 32-byte seed ξ of ML-DSA.KeyGen_internal
// (FIPS 204 Algorithm 6), so any key loads in either of the two
// implementations:
//
//   - github.com/cloudflare/circl (sign/mldsa/mldsa44, mldsa65, mldsa87), the
//     default: several times faster than the standard library, and a public
//     key keeps its expanded matrix Â so Verify does not recompute it;
//   - Go's crypto/mldsa, used for every key built while the process runs in
//     FIPS 140-3 mode (crypto/fips140.Enabled, GODEBUG=fips140=on).
//
// Both derive byte-identical keys and byte-identical deterministic
// signatures from the same seed (the tests hold them to it). Sign is hedged,
// as FIPS 204 §3.4 recommends: the 32-byte rnd comes from crypto/rand, so two
// signatures of one message differ. The deterministic variant (rnd = 0³²)
// is reached only through the unexported mldsaPrivateKey.sign, for
// known-answer and differential tests.
//
// Timing: both libraries are written not to branch on or index by secret
// data (their authors' claim, not checked here); the number of
// rejection-loop iterations of signing varies with the key, message and rnd
// and is not secret.

// maxContextSize is the longest context string FIPS 204 and FIPS 205 allow.
const maxContextSize = 255

// errContextTooLong is returned by Sign and Verify of ML-DSA and SLH-DSA
// keys when opts.Context is longer than maxContextSize.
var errContextTooLong = fmt.Errorf("%w: signing context longer than %d bytes", ErrUnsupported, maxContextSize)

// boundedContext returns opts.Context, or errContextTooLong.
func boundedContext(opts *Options) ([]byte, error) {
	ctx := opts.context()
	if len(ctx) > maxContextSize {
		return nil, errContextTooLong
	}
	return ctx, nil
}

// mldsaImpl is one implementation of one ML-DSA parameter set. Its methods
// are called with inputs of the right sizes only.
type mldsaImpl interface {
	// name says which library this is, for errors and tests.
	name() string
	// sizes returns the public key and signature sizes in bytes.
	sizes() (pub, sig int)
	// newSigner expands a 32-byte seed.
	newSigner(seed []byte) (mldsaSigner, error)
	// newVerifier parses an encoded public key.
	newVerifier(pub []byte) (mldsaVerifier, error)
}

// mldsaSigner is an expanded private key of one implementation.
type mldsaSigner interface {
	// publicKey returns the encoded public key.
	publicKey() []byte
	// sign returns a signature of message under context ctx (≤ 255 bytes),
	// hedged, or deterministic (rnd = 0³²) if deterministic is set.
	sign(message, ctx []byte, deterministic bool) ([]byte, error)
	// destroy overwrites the expanded key. The signer is unusable after.
	destroy()
}

// mldsaVerifier is a parsed public key of one implementation.
type mldsaVerifier interface {
	// verify reports whether signature (of the right size) is valid for
	// message under context ctx (≤ 255 bytes).
	verify(message, signature, ctx []byte) bool
}

// mldsaImpls are the two implementations of one parameter set.
type mldsaImpls struct {
	circl, std mldsaImpl
}

var (
	mldsa44Impls = mldsaImpls{
		circl: &circlMLDSA[mldsa44.PublicKey, mldsa44.PrivateKey]{
			params: "ML-DSA-44", pubSize: mldsa44.PublicKeySize, sigSize: mldsa44.SignatureSize,
			newKeyFromSeed: mldsa44.NewKeyFromSeed, signTo: mldsa44.SignTo, verifyFn: mldsa44.Verify,
			unmarshal: (*mldsa44.PublicKey).UnmarshalBinary, bytes: (*mldsa44.PublicKey).Bytes,
		},
		std: stdMLDSA{mldsa.MLDSA44()},
	}
	mldsa65Impls = mldsaImpls{
		circl: &circlMLDSA[mldsa65.PublicKey, mldsa65.PrivateKey]{
			params: "ML-DSA-65", pubSize: mldsa65.PublicKeySize, sigSize: mldsa65.SignatureSize,
			newKeyFromSeed: mldsa65.NewKeyFromSeed, signTo: mldsa65.SignTo, verifyFn: mldsa65.Verify,
			unmarshal: (*mldsa65.PublicKey).UnmarshalBinary, bytes: (*mldsa65.PublicKey).Bytes,
		},
		std: stdMLDSA{mldsa.MLDSA65()},
	}
	mldsa87Impls = mldsaImpls{
		circl: &circlMLDSA[mldsa87.PublicKey, mldsa87.PrivateKey]{
			params: "ML-DSA-87", pubSize: mldsa87.PublicKeySize, sigSize: mldsa87.SignatureSize,
			newKeyFromSeed: mldsa87.NewKeyFromSeed, signTo: mldsa87.SignTo, verifyFn: mldsa87.Verify,
			unmarshal: (*mldsa87.PublicKey).UnmarshalBinary, bytes: (*mldsa87.PublicKey).Bytes,
		},
		std: stdMLDSA{mldsa.MLDSA87()},
	}
)

type mldsaScheme struct {
	a     *alg.Alg
	impls mldsaImpls
}

var _ Scheme = (*mldsaScheme)(nil)

// newMLDSAScheme returns the scheme of table entry a. It panics if the sizes
// of the entry and of either implementation disagree.
func newMLDSAScheme(a *alg.Alg, impls mldsaImpls) *mldsaScheme {
	for _, impl := range []mldsaImpl{impls.circl, impls.std} {
		pub, sig := impl.sizes()
		if a.SeedSize != mldsa.PrivateKeySize || a.PublicKeySize != pub || a.OutputSize != sig {
			panic("sig: " + a.Name + " table entry does not match " + impl.name() + " sizes")
		}
	}
	return &mldsaScheme{a: a, impls: impls}
}

func (s *mldsaScheme) Alg() *alg.Alg { return s.a }

func (s *mldsaScheme) GenerateSeed() []byte {
	seed := make([]byte, s.a.SeedSize)
	_, _ = rand.Read(seed) // never fails since Go 1.24
	return seed
}

// impl returns the implementation new keys use: crypto/mldsa in FIPS 140-3
// mode, circl otherwise.
func (s *mldsaScheme) impl() mldsaImpl {
	if fips140.Enabled() {
		return s.impls.std
	}
	return s.impls.circl
}

// NewPrivateKey expands the 32-byte seed ξ once (FIPS 204 Algorithm 6) and
// keeps the expanded key, not the seed.
func (s *mldsaScheme) NewPrivateKey(seed []byte) (PrivateKey, error) {
	return s.newPrivateKey(s.impl(), seed)
}

// NewPublicKey parses an encoded public key (pkEncode, FIPS 204 Algorithm
// 22) of Alg().PublicKeySize bytes. Every string of that length decodes to
// a public key, so only the length is checked; CheckPublicKey refuses the
// weak ones (t1 = 0).
func (s *mldsaScheme) NewPublicKey(pub []byte) (PublicKey, error) {
	return s.newPublicKey(s.impl(), pub)
}

func (s *mldsaScheme) newPrivateKey(impl mldsaImpl, seed []byte) (*mldsaPrivateKey, error) {
	if len(seed) != s.a.SeedSize {
		return nil, keySizeError(s.a, "seed", len(seed), s.a.SeedSize)
	}
	signer, err := impl.newSigner(seed)
	if err != nil {
		return nil, fmt.Errorf("sig: %s (%s): %w", s.a.Name, impl.name(), err)
	}
	// The public key is parsed again from its encoding rather than taken
	// from the expansion: circl's shares Â with the private key, which
	// Destroy clears.
	pub, err := s.newPublicKey(impl, signer.publicKey())
	if err != nil {
		signer.destroy()
		return nil, err
	}
	return &mldsaPrivateKey{signer: signer, pub: pub}, nil
}

func (s *mldsaScheme) newPublicKey(impl mldsaImpl, pub []byte) (*mldsaPublicKey, error) {
	if len(pub) != s.a.PublicKeySize {
		return nil, keySizeError(s.a, "public key", len(pub), s.a.PublicKeySize)
	}
	v, err := impl.newVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("sig: %s (%s) public key: %w", s.a.Name, impl.name(), err)
	}
	return &mldsaPublicKey{a: s.a, raw: append([]byte(nil), pub...), v: v}, nil
}

// mldsaPrivateKey is safe for concurrent use: Sign holds a read lock, so
// Destroy waits for signatures in progress.
type mldsaPrivateKey struct {
	mu     sync.RWMutex
	signer mldsaSigner // expanded key, secret; nil after Destroy
	pub    *mldsaPublicKey
}

var _ PrivateKey = (*mldsaPrivateKey)(nil)

func (k *mldsaPrivateKey) Public() PublicKey { return k.pub }

// Sign returns a hedged ML-DSA signature (FIPS 204 Algorithm 2, with fresh
// rnd from crypto/rand) of message under opts.Context (empty by default). A
// context longer than 255 bytes is refused with an error wrapping
// ErrUnsupported.
func (k *mldsaPrivateKey) Sign(message []byte, opts *Options) ([]byte, error) {
	return k.sign(message, opts, false)
}

// sign is Sign, or with deterministic set the deterministic variant of FIPS
// 204 (rnd = 0³²). The service never signs deterministically; the tests do,
// to compare implementations and to check known answers.
func (k *mldsaPrivateKey) sign(message []byte, opts *Options, deterministic bool) ([]byte, error) {
	ctx, err := boundedContext(opts)
	if err != nil {
		return nil, err
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.signer == nil {
		return nil, ErrKeyDestroyed
	}
	sig, err := k.signer.sign(message, ctx, deterministic)
	if err != nil {
		return nil, fmt.Errorf("sig: %s: %w", k.pub.a.Name, err)
	}
	return sig, nil
}

// Destroy overwrites the expanded private key (s₁, s₂, t₀, K and the seed
// ξ as the implementation keeps them), best effort.
func (k *mldsaPrivateKey) Destroy() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.signer != nil {
		k.signer.destroy()
		k.signer = nil
	}
}

// mldsaPublicKey is immutable after construction.
type mldsaPublicKey struct {
	a   *alg.Alg
	raw []byte
	v   mldsaVerifier
}

var _ PublicKey = (*mldsaPublicKey)(nil)

func (k *mldsaPublicKey) Alg() *alg.Alg { return k.a }

func (k *mldsaPublicKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

// Verify checks a FIPS 204 signature (Algorithm 3) of message under
// opts.Context. A context longer than 255 bytes is refused with an error
// wrapping ErrUnsupported.
func (k *mldsaPublicKey) Verify(message, signature []byte, opts *Options) error {
	ctx, err := boundedContext(opts)
	if err != nil {
		return err
	}
	if len(signature) != k.a.OutputSize || !k.v.verify(message, signature, ctx) {
		return ErrInvalidSignature
	}
	return nil
}

// circlMLDSA is one of circl's ML-DSA packages. The three packages have the
// same API over distinct types, so their functions are held as values.
type circlMLDSA[PK, SK any] struct {
	params           string
	pubSize, sigSize int
	newKeyFromSeed   func(seed *[32]byte) (*PK, *SK)
	signTo           func(sk *SK, msg, ctx []byte, randomized bool, sig []byte) error
	verifyFn         func(pk *PK, msg, ctx, sig []byte) bool
	unmarshal        func(pk *PK, data []byte) error
	bytes            func(pk *PK) []byte
}

func (c *circlMLDSA[PK, SK]) name() string          { return "circl " + c.params }
func (c *circlMLDSA[PK, SK]) sizes() (pub, sig int) { return c.pubSize, c.sigSize }

func (c *circlMLDSA[PK, SK]) newSigner(seed []byte) (mldsaSigner, error) {
	pk, sk := c.newKeyFromSeed((*[32]byte)(seed))
	return &circlMLDSASigner[PK, SK]{c: c, sk: sk, pub: c.bytes(pk)}, nil
}

func (c *circlMLDSA[PK, SK]) newVerifier(pub []byte) (mldsaVerifier, error) {
	pk := new(PK)
	if err := c.unmarshal(pk, pub); err != nil { // computes Â and tr once
		return nil, err
	}
	return &circlMLDSAVerifier[PK, SK]{c: c, pk: pk}, nil
}

type circlMLDSASigner[PK, SK any] struct {
	c   *circlMLDSA[PK, SK]
	sk  *SK
	pub []byte
}

func (s *circlMLDSASigner[PK, SK]) publicKey() []byte { return s.pub }

func (s *circlMLDSASigner[PK, SK]) sign(message, ctx []byte, deterministic bool) ([]byte, error) {
	sig := make([]byte, s.c.sigSize)
	if err := s.c.signTo(s.sk, message, ctx, !deterministic, sig); err != nil {
		return nil, err
	}
	return sig, nil
}

func (s *circlMLDSASigner[PK, SK]) destroy() {
	var zero SK
	*s.sk = zero
}

type circlMLDSAVerifier[PK, SK any] struct {
	c  *circlMLDSA[PK, SK]
	pk *PK
}

func (v *circlMLDSAVerifier[PK, SK]) verify(message, signature, ctx []byte) bool {
	return v.c.verifyFn(v.pk, message, ctx, signature)
}

// stdMLDSA is Go's crypto/mldsa for one parameter set.
type stdMLDSA struct{ params mldsa.Parameters }

func (s stdMLDSA) name() string          { return "crypto/mldsa " + s.params.String() }
func (s stdMLDSA) sizes() (pub, sig int) { return s.params.PublicKeySize(), s.params.SignatureSize() }

func (s stdMLDSA) newSigner(seed []byte) (mldsaSigner, error) {
	k, err := mldsa.NewPrivateKey(s.params, seed)
	if err != nil {
		return nil, err
	}
	return &stdMLDSASigner{k: k, pub: k.PublicKey().Bytes()}, nil
}

func (s stdMLDSA) newVerifier(pub []byte) (mldsaVerifier, error) {
	k, err := mldsa.NewPublicKey(s.params, pub)
	if err != nil {
		return nil, err
	}
	return stdMLDSAVerifier{k}, nil
}

type stdMLDSASigner struct {
	k   *mldsa.PrivateKey
	pub []byte
}

func (s *stdMLDSASigner) publicKey() []byte { return s.pub }

func (s *stdMLDSASigner) sign(message, ctx []byte, deterministic bool) ([]byte, error) {
	opts := &mldsa.Options{Context: string(ctx)}
	if deterministic {
		return s.k.SignDeterministic(message, opts)
	}
	return s.k.Sign(nil, message, opts) // crypto/mldsa draws rnd from crypto/rand itself
}

func (s *stdMLDSASigner) destroy() { *s.k = mldsa.PrivateKey{} }

type stdMLDSAVerifier struct{ k *mldsa.PublicKey }

func (v stdMLDSAVerifier) verify(message, signature, ctx []byte) bool {
	return mldsa.Verify(v.k, message, signature, &mldsa.Options{Context: string(ctx)}) == nil
}
