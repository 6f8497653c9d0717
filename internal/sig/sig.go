// Package sig implements the signature schemes of ron-kms, keyed by the
// algorithm names of internal/alg, and batch verification.
//
// Every scheme stores a private key as its seed (alg.Alg.SeedSize bytes);
// NewPrivateKey derives everything else from it once. The seed, and anything
// derived from it, is secret: it never appears in an error or a String
// method, and PrivateKey.Destroy clears it (best effort: the Go runtime may
// have copied it, e.g. when a stack grows, and that copy cannot be reached).
//
// PrivateKey and PublicKey values are immutable after construction (but for
// PrivateKey.Destroy) and safe for concurrent use by multiple goroutines.
package sig

import (
	"errors"
	"fmt"

	"github.com/cloudflare/circl/sign/slhdsa"

	"github.com/ron-kms/ron-kms/internal/alg"
)

var (
	// ErrInvalidSignature means a signature does not verify: it is malformed
	// (wrong length, a non-point, S out of range) or it is not a signature
	// of the message by the key. It is an expected outcome, not a failure of
	// the service.
	ErrInvalidSignature = errors.New("sig: invalid signature")

	// ErrUnsupported means the algorithm is not a signature algorithm this
	// package implements, or an option (such as a signing context) is not
	// supported by the algorithm.
	ErrUnsupported = errors.New("sig: unsupported algorithm")

	// ErrKeySize means a seed or an encoded public key has the wrong length
	// for its algorithm. Returned errors wrap it with the lengths involved
	// (lengths only, never key bytes).
	ErrKeySize = errors.New("sig: wrong key size")

	// ErrKeyDestroyed is returned by PrivateKey.Sign after Destroy.
	ErrKeyDestroyed = errors.New("sig: private key destroyed")
)

// Scheme is one signature algorithm. Schemes are stateless and safe for
// concurrent use.
type Scheme interface {
	// Alg returns the scheme's entry in the algorithm table.
	Alg() *alg.Alg
	// GenerateSeed returns a fresh random seed of Alg().SeedSize bytes from
	// crypto/rand. The seed is secret.
	GenerateSeed() []byte
	// NewPrivateKey derives the private key from seed, which must be
	// Alg().SeedSize bytes (else an error wrapping ErrKeySize). The key keeps
	// its own copy; the caller may clear seed afterwards.
	NewPrivateKey(seed []byte) (PrivateKey, error)
	// NewPublicKey decodes an encoded public key of Alg().PublicKeySize bytes
	// (else an error wrapping ErrKeySize). The key keeps its own copy.
	NewPublicKey(pub []byte) (PublicKey, error)
}

// FormScheme is a Scheme whose private keys also load from a longer secret
// form that spares the work of deriving them from the seed (Ed25519: seed ‖
// A, without the scalar multiplication that gives A).
//
// The form is trusted as it is: a form whose public part does not belong to
// its seed makes signatures that leak the private key (the Ed25519
// mismatched-public-key attack). Load only forms from an authenticated
// source that only SecretForm fills, such as a sealed record.
type FormScheme interface {
	Scheme
	// SecretForm returns k's secret form. It is as secret as the seed.
	SecretForm(k PrivateKey) ([]byte, error)
	// NewPrivateKeyFromForm loads a form made by SecretForm (an error
	// wrapping ErrKeySize for a wrong length). The key keeps its own copy.
	NewPrivateKeyFromForm(form []byte) (PrivateKey, error)
}

// PrivateKey signs messages. It is safe for concurrent use, Destroy included:
// a Sign running concurrently with Destroy either completes normally or
// returns ErrKeyDestroyed.
type PrivateKey interface {
	// Public returns the matching public key. It stays usable after Destroy.
	Public() PublicKey
	// Sign signs message. opts may be nil; an option the scheme does not
	// support returns an error wrapping ErrUnsupported. After Destroy it
	// returns ErrKeyDestroyed.
	Sign(message []byte, opts *Options) ([]byte, error)
	// Destroy overwrites the key's secret material (best effort, see the
	// package documentation). It is idempotent.
	Destroy()
}

// PublicKey verifies signatures. It is safe for concurrent use.
type PublicKey interface {
	// Alg returns the key's entry in the algorithm table.
	Alg() *alg.Alg
	// Bytes returns the encoded public key, exactly as given to NewPublicKey
	// (or as derived from the seed). The slice is the caller's.
	Bytes() []byte
	// Verify checks that signature is a valid signature of message by the key.
	// It returns nil if it is, ErrInvalidSignature if it is not, and an error
	// wrapping ErrUnsupported if opts asks for something the scheme does not
	// have. opts may be nil.
	Verify(message, signature []byte, opts *Options) error
}

// Options modify signing and verification. The zero value and nil mean the
// defaults.
type Options struct {
	// Context is the signing context string (FIPS 204 ctx for ML-DSA, at most
	// 255 bytes). The default is empty. Pure Ed25519 (RFC 8032) has no
	// context: a non-empty one is refused with ErrUnsupported.
	Context []byte
}

func (o *Options) context() []byte {
	if o == nil {
		return nil
	}
	return o.Context
}

// schemes holds the implementation of every signature algorithm of the table
// that this package supports, keyed by algorithm name.
var schemes = map[string]Scheme{
	alg.Ed25519:        newEd25519Scheme(mustLookup(alg.Ed25519)),
	alg.MLDSA44:        newMLDSAScheme(mustLookup(alg.MLDSA44), mldsa44Impls),
	alg.MLDSA65:        newMLDSAScheme(mustLookup(alg.MLDSA65), mldsa65Impls),
	alg.MLDSA87:        newMLDSAScheme(mustLookup(alg.MLDSA87), mldsa87Impls),
	alg.SLHDSASHA2128s: newSLHDSAScheme(mustLookup(alg.SLHDSASHA2128s), slhdsa.SHA2_128s),
	alg.MLDSA65Ed25519: newCompositeScheme(mustLookup(alg.MLDSA65Ed25519), mldsa65Ed25519),
}

func mustLookup(name string) *alg.Alg {
	a, ok := alg.Lookup(name)
	if !ok {
		panic("sig: algorithm " + name + " missing from the table")
	}
	return a
}

// For returns the scheme of the signature algorithm name. It returns an error
// wrapping ErrUnsupported if name is not in the algorithm table, is not a
// signature algorithm, or has no implementation here.
func For(name string) (Scheme, error) {
	a, ok := alg.Lookup(name)
	if !ok || a.Kind != alg.KindSignature || !a.Ops.Has(alg.OpSign|alg.OpVerify) {
		return nil, fmt.Errorf("%w: %q is not a signature algorithm", ErrUnsupported, name)
	}
	s, ok := schemes[a.Name]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not implemented", ErrUnsupported, name)
	}
	return s, nil
}

func keySizeError(a *alg.Alg, what string, got, want int) error {
	return fmt.Errorf("%w: %s %s is %d bytes, want %d", ErrKeySize, a.Name, what, got, want)
}
