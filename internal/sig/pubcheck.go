package sig

import (
	"errors"
	"fmt"
	"slices"

	"github.com/oasisprotocol/curve25519-voi/curve"
)

// ErrWeakPublicKey means an encoded public key has the right length but is
// not one that key generation makes, and is unfit to be trusted: it is not
// the encoding of a key at all, or it is one under which signatures can be
// made without any private key (an Ed25519 point of small order, an ML-DSA
// key whose t1 is zero). Returned errors wrap it with the reason, never with
// key bytes.
var ErrWeakPublicKey = errors.New("sig: weak public key")

// PublicKeyChecker is a Scheme that can tell a weak encoded public key from
// a sound one. NewPublicKey does not check: ZIP-215 verification is defined
// for every 32 bytes, and a key already on record must keep loading. A
// caller that takes a public key from outside, such as a verify-only
// import, checks it once with CheckPublicKey. Keys derived from a seed never
// fail the check.
type PublicKeyChecker interface {
	Scheme
	// CheckPublicKey returns nil for a sound encoded public key, an error
	// wrapping ErrKeySize for a wrong length, and an error wrapping
	// ErrWeakPublicKey for a weak one. It is safe for concurrent use and
	// does not run in constant time (public keys are public).
	CheckPublicKey(pub []byte) error
}

var (
	_ PublicKeyChecker = (*ed25519Scheme)(nil)
	_ PublicKeyChecker = (*mldsaScheme)(nil)
	_ PublicKeyChecker = (*compositeScheme)(nil)
)

// CheckPublicKey refuses 32 bytes that are not the encoding of a curve point
// (no signature would ever verify under them) and any encoding, canonical
// or not, of one of the eight points of small order: under ZIP-215's
// cofactored equation such a key verifies crafted signatures of any
// message. The check is curve25519-voi's: decode the point and multiply it
// by the cofactor (EdwardsPoint.IsSmallOrder). Points with a small-order
// component besides a large one pass: no forgery is known for them, and
// ZIP-215 accepts them.
func (s *ed25519Scheme) CheckPublicKey(pub []byte) error {
	if len(pub) != s.a.PublicKeySize {
		return keySizeError(s.a, "public key", len(pub), s.a.PublicKeySize)
	}
	var enc curve.CompressedEdwardsY
	if _, err := enc.SetBytes(pub); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrWeakPublicKey, s.a.Name, err)
	}
	var p curve.EdwardsPoint
	if _, err := p.SetCompressedY(&enc); err != nil {
		return fmt.Errorf("%w: the %s public key is not the encoding of a curve point", ErrWeakPublicKey, s.a.Name)
	}
	if p.IsSmallOrder() {
		return fmt.Errorf("%w: the %s public key is a point of small order, under which crafted signatures of any message verify", ErrWeakPublicKey, s.a.Name)
	}
	return nil
}

// mldsaRhoSize is the length of ρ, the first field of an encoded ML-DSA
// public key (FIPS 204 Algorithm 22, pkEncode: ρ ‖ SimpleBitPack(t1)).
const mldsaRhoSize = 32

// CheckPublicKey refuses a key whose t1 is the zero vector (all-zero bytes
// after ρ; the all-zero key is one): the verification equation then no
// longer involves the key, and anyone can make signatures that verify
// (Wycheproof's ZeroPublicKey cases). Every other key of the right length
// passes.
func (s *mldsaScheme) CheckPublicKey(pub []byte) error {
	if len(pub) != s.a.PublicKeySize {
		return keySizeError(s.a, "public key", len(pub), s.a.PublicKeySize)
	}
	if !slices.ContainsFunc(pub[mldsaRhoSize:], func(b byte) bool { return b != 0 }) {
		return fmt.Errorf("%w: the %s public key has t1 = 0, under which anyone can make signatures that verify", ErrWeakPublicKey, s.a.Name)
	}
	return nil
}

// CheckPublicKey checks each component key with its own scheme's check.
func (s *compositeScheme) CheckPublicKey(pub []byte) error {
	if len(pub) != s.a.PublicKeySize {
		return keySizeError(s.a, "public key", len(pub), s.a.PublicKeySize)
	}
	n := s.pq.Alg().PublicKeySize
	for _, part := range []struct {
		s   Scheme
		pub []byte
	}{{s.pq, pub[:n]}, {s.trad, pub[n:]}} {
		if c, ok := part.s.(PublicKeyChecker); ok {
			if err := c.CheckPublicKey(part.pub); err != nil {
				return fmt.Errorf("sig: %s component of %s: %w", part.s.Alg().Name, s.a.Name, err)
			}
		}
	}
	return nil
}
