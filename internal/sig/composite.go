package sig

import (
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"slices"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// Composite ML-DSA (SPEC §3.1).
//
// A composite key is one ML-DSA key and one traditional key that only ever
// sign together. Both components sign the same message representative
//
//	M' = Prefix ‖ Label ‖ len(ctx) ‖ ctx ‖ PH(M)
//
// where Prefix is fixed for every composite algorithm, Label names the
// composite algorithm, ctx is the caller's context (at most 255 bytes, its
// length as one byte) and PH is the algorithm's pre-hash. The ML-DSA component
// additionally signs with Label as its FIPS 204 context; the Ed25519 component
// is pure Ed25519 over M'. Neither component is therefore a valid plain
// signature of M, which is what makes stripping one of them detectable.
//
// Encodings are plain concatenations with the ML-DSA part first:
// public key = ML-DSA pk ‖ trad pk, seed = ML-DSA ξ ‖ trad seed (the draft's
// private key serialization for Ed25519), signature = ML-DSA sig ‖ trad sig.
//
// The components are the package's own schemes, found with For: the ML-DSA
// signature is deterministic or hedged exactly as that scheme's default is, and
// the Ed25519 component is verified under the ZIP-215 rules of ed25519.go,
// which accept every signature that RFC 8032 verification accepts and a few
// more (small-order and non-canonical points; see ed25519.go).

// CompositeDraft names the revision of the IETF LAMPS Composite ML-DSA
// specification that the composite algorithms implement, for documentation
// and the /version endpoint.
const CompositeDraft = "draft-ietf-lamps-pq-composite-sigs-19"

// compositePrefix is the draft's Prefix: the ASCII string
// "CompositeAlgorithmSignatures2025" (32 bytes).
var compositePrefix = []byte("CompositeAlgorithmSignatures2025")

// Component is one component signature of a composite.
type Component struct {
	// Alg is the component's algorithm name (alg.MLDSA65, alg.Ed25519, ...).
	Alg string
	// Sig is the component signature, as the composite signature carries it.
	Sig []byte
}

// ComponentSigner is implemented by private keys of composite algorithms.
type ComponentSigner interface {
	// SignComponents signs message like Sign and returns the component
	// signatures separately, in the composite's order (ML-DSA first). Their
	// concatenation is the composite signature.
	SignComponents(message []byte, opts *Options) ([]Component, error)
}

// ComponentVerifier is implemented by public keys of composite algorithms.
type ComponentVerifier interface {
	// VerifyComponents checks each given component signature under the
	// composite rules (against M', not against message) and reports one entry
	// per component algorithm that was given: nil if it is valid,
	// ErrInvalidSignature if it is not (also when an algorithm is given twice),
	// an error wrapping ErrUnsupported if opts cannot be honoured. An algorithm
	// that is not a component of the key is reported with an error wrapping
	// ErrUnsupported. Components not given have no entry, so the caller
	// decides what a missing component means (SPEC §3.1 verify modes).
	VerifyComponents(message []byte, comps []Component, opts *Options) map[string]error
}

// compositeParams is the data that defines one composite algorithm.
type compositeParams struct {
	name  string // table name of the composite
	label string // the draft's Label
	pq    string // table name of the ML-DSA component
	trad  string // table name of the traditional component
	// prehash is PH; its output is part of M'.
	prehash func(message []byte) []byte
}

var mldsa65Ed25519 = &compositeParams{
	name:  alg.MLDSA65Ed25519,
	label: "COMPSIG-MLDSA65-Ed25519-SHA512",
	pq:    alg.MLDSA65,
	trad:  alg.Ed25519,
	prehash: func(m []byte) []byte {
		h := sha512.Sum512(m)
		return h[:]
	},
}

// compositeScheme is a Scheme made of two component schemes. Its components
// are bound by init (bindComposites) once every scheme is registered.
type compositeScheme struct {
	a        *alg.Alg
	p        *compositeParams
	pq, trad Scheme
}

var (
	_ Scheme            = (*compositeScheme)(nil)
	_ PrivateKey        = (*compositePrivateKey)(nil)
	_ ComponentSigner   = (*compositePrivateKey)(nil)
	_ PublicKey         = (*compositePublicKey)(nil)
	_ ComponentVerifier = (*compositePublicKey)(nil)
)

func newCompositeScheme(a *alg.Alg, p *compositeParams) *compositeScheme {
	if a.Name != p.name {
		panic("sig: composite parameters " + p.name + " registered as " + a.Name)
	}
	return &compositeScheme{a: a, p: p}
}

func init() { bindComposites() }

// bindComposites looks up the component schemes of every registered composite
// and checks that the table's sizes are the sums of theirs. It runs from init
// (not from the schemes initializer) because For reads the registry.
func bindComposites() {
	for _, s := range schemes {
		c, ok := s.(*compositeScheme)
		if !ok {
			continue
		}
		c.pq, c.trad = mustFor(c.p.pq), mustFor(c.p.trad)
		pa, ta := c.pq.Alg(), c.trad.Alg()
		if c.a.SeedSize != pa.SeedSize+ta.SeedSize ||
			c.a.PublicKeySize != pa.PublicKeySize+ta.PublicKeySize ||
			c.a.OutputSize != pa.OutputSize+ta.OutputSize {
			panic("sig: " + c.a.Name + " table entry does not match its components' sizes")
		}
	}
}

func mustFor(name string) Scheme {
	s, err := For(name)
	if err != nil {
		panic("sig: composite component: " + err.Error())
	}
	return s
}

func (s *compositeScheme) Alg() *alg.Alg { return s.a }

// GenerateSeed returns fresh, independent seeds for both components.
func (s *compositeScheme) GenerateSeed() []byte {
	seed := make([]byte, s.a.SeedSize)
	_, _ = rand.Read(seed) // never fails since Go 1.24
	return seed
}

// NewPrivateKey splits seed into the ML-DSA ξ and the traditional seed and
// derives both component keys.
func (s *compositeScheme) NewPrivateKey(seed []byte) (PrivateKey, error) {
	if len(seed) != s.a.SeedSize {
		return nil, keySizeError(s.a, "seed", len(seed), s.a.SeedSize)
	}
	n := s.pq.Alg().SeedSize
	pq, err := s.pq.NewPrivateKey(seed[:n])
	if err != nil {
		return nil, fmt.Errorf("sig: %s ML-DSA component: %w", s.a.Name, err)
	}
	trad, err := s.trad.NewPrivateKey(seed[n:])
	if err != nil {
		pq.Destroy()
		return nil, fmt.Errorf("sig: %s traditional component: %w", s.a.Name, err)
	}
	pub := &compositePublicKey{
		s:    s,
		raw:  slices.Concat(pq.Public().Bytes(), trad.Public().Bytes()),
		pq:   pq.Public(),
		trad: trad.Public(),
	}
	return &compositePrivateKey{s: s, pq: pq, trad: trad, pub: pub}, nil
}

// NewPublicKey splits pub into the component public keys.
func (s *compositeScheme) NewPublicKey(pub []byte) (PublicKey, error) {
	if len(pub) != s.a.PublicKeySize {
		return nil, keySizeError(s.a, "public key", len(pub), s.a.PublicKeySize)
	}
	n := s.pq.Alg().PublicKeySize
	pq, err := s.pq.NewPublicKey(pub[:n])
	if err != nil {
		return nil, fmt.Errorf("sig: %s ML-DSA component: %w", s.a.Name, err)
	}
	trad, err := s.trad.NewPublicKey(pub[n:])
	if err != nil {
		return nil, fmt.Errorf("sig: %s traditional component: %w", s.a.Name, err)
	}
	return &compositePublicKey{s: s, raw: slices.Clone(pub), pq: pq, trad: trad}, nil
}

// representative returns M' for message under the caller's context, or
// errContextTooLong if the context is longer than 255 bytes (its length is
// one byte of M').
func (s *compositeScheme) representative(message []byte, opts *Options) ([]byte, error) {
	ctx, err := boundedContext(opts)
	if err != nil {
		return nil, err
	}
	return slices.Concat(compositePrefix, []byte(s.p.label), []byte{byte(len(ctx))}, ctx, s.p.prehash(message)), nil
}

// pqOptions are the options the ML-DSA component signs and verifies with: the
// composite's Label as its context.
func (s *compositeScheme) pqOptions() *Options {
	return &Options{Context: []byte(s.p.label)}
}

// compositePrivateKey is safe for concurrent use because its components are.
// A Sign racing with Destroy returns ErrKeyDestroyed or a complete signature,
// never half of one.
type compositePrivateKey struct {
	s        *compositeScheme
	pq, trad PrivateKey
	pub      *compositePublicKey
}

func (k *compositePrivateKey) Public() PublicKey { return k.pub }

// Sign returns ML-DSA signature ‖ traditional signature over M'. opts.Context
// is the composite's application context (at most 255 bytes, else an error
// wrapping ErrUnsupported).
func (k *compositePrivateKey) Sign(message []byte, opts *Options) ([]byte, error) {
	comps, err := k.SignComponents(message, opts)
	if err != nil {
		return nil, err
	}
	return slices.Concat(comps[0].Sig, comps[1].Sig), nil
}

// SignComponents implements ComponentSigner. Both components are always
// computed; if either fails the whole operation fails without saying which
// (the draft asks for that).
func (k *compositePrivateKey) SignComponents(message []byte, opts *Options) ([]Component, error) {
	mp, err := k.s.representative(message, opts)
	if err != nil {
		return nil, err
	}
	pqSig, pqErr := k.pq.Sign(mp, k.s.pqOptions())
	tradSig, tradErr := k.trad.Sign(mp, nil)
	switch {
	case errors.Is(pqErr, ErrKeyDestroyed) || errors.Is(tradErr, ErrKeyDestroyed):
		return nil, ErrKeyDestroyed
	case pqErr != nil || tradErr != nil:
		return nil, fmt.Errorf("sig: %s: component signature failed", k.s.a.Name)
	}
	return []Component{{Alg: k.s.p.pq, Sig: pqSig}, {Alg: k.s.p.trad, Sig: tradSig}}, nil
}

// Destroy destroys both component keys.
func (k *compositePrivateKey) Destroy() {
	k.pq.Destroy()
	k.trad.Destroy()
}

// compositePublicKey is immutable after construction.
type compositePublicKey struct {
	s        *compositeScheme
	raw      []byte
	pq, trad PublicKey
}

func (k *compositePublicKey) Alg() *alg.Alg { return k.s.a }

func (k *compositePublicKey) Bytes() []byte { return slices.Clone(k.raw) }

// Verify is the draft's composite verification: signature must be exactly
// ML-DSA signature ‖ traditional signature, and both must be valid over M'.
// It returns nil, ErrInvalidSignature, or an error wrapping ErrUnsupported for
// a context longer than 255 bytes.
func (k *compositePublicKey) Verify(message, signature []byte, opts *Options) error {
	mp, err := k.s.representative(message, opts)
	if err != nil {
		return err
	}
	if len(signature) != k.s.a.OutputSize {
		return ErrInvalidSignature
	}
	n := k.s.pq.Alg().OutputSize
	// Both are checked, whatever the first verdict.
	pqErr := k.verifyPQ(mp, signature[:n])
	tradErr := k.verifyTrad(mp, signature[n:])
	if pqErr != nil || tradErr != nil {
		return ErrInvalidSignature
	}
	return nil
}

// VerifyComponents implements ComponentVerifier.
func (k *compositePublicKey) VerifyComponents(message []byte, comps []Component, opts *Options) map[string]error {
	res := make(map[string]error, len(comps))
	mp, err := k.s.representative(message, opts)
	seen := make(map[string]int, len(comps))
	for _, c := range comps {
		seen[c.Alg]++
	}
	for _, c := range comps {
		switch {
		case c.Alg != k.s.p.pq && c.Alg != k.s.p.trad:
			res[c.Alg] = fmt.Errorf("%w: %q is not a component of %s", ErrUnsupported, c.Alg, k.s.a.Name)
		case err != nil:
			res[c.Alg] = err
		case seen[c.Alg] > 1:
			res[c.Alg] = ErrInvalidSignature
		case c.Alg == k.s.p.pq:
			res[c.Alg] = k.verifyPQ(mp, c.Sig)
		default:
			res[c.Alg] = k.verifyTrad(mp, c.Sig)
		}
	}
	return res
}

func (k *compositePublicKey) verifyPQ(mp, sig []byte) error {
	return invalidOnly(k.pq.Verify(mp, sig, k.s.pqOptions()))
}

func (k *compositePublicKey) verifyTrad(mp, sig []byte) error {
	return invalidOnly(k.trad.Verify(mp, sig, nil))
}

// invalidOnly maps every component failure to ErrInvalidSignature: the
// options passed to components are fixed by the composite, so any other error
// can only mean the component signature is unusable.
func invalidOnly(err error) error {
	if err != nil {
		return ErrInvalidSignature
	}
	return nil
}
