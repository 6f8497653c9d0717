package wrap

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/mlkem"
	"errors"
	"fmt"

	"github.com/ron-kms/ron-kms/internal/alg"
)

var (
	// ErrUnsupported means the algorithm is not a KEM this package
	// implements, or a key of the wrong algorithm was given (for example a
	// non-hybrid key to SealImport).
	ErrUnsupported = errors.New("wrap: unsupported algorithm")

	// ErrKeySize means a seed or an encoded public key has the wrong length
	// for its algorithm. Returned errors wrap it with the lengths involved
	// (lengths only, never key bytes).
	ErrKeySize = errors.New("wrap: wrong key size")

	// ErrInvalidKey means an encoded public key has the right length but is
	// not a valid key of its algorithm (an ML-KEM encapsulation key with a
	// coefficient out of range).
	ErrInvalidKey = errors.New("wrap: invalid public key")

	// ErrOpen means a ciphertext or envelope does not open: it was sealed to
	// another key, with another info or associated data, was relabelled to
	// another key name, version or KEM, or was tampered with. No plaintext,
	// partial or otherwise, is ever returned with it. It is an expected
	// outcome, not a failure of the service.
	ErrOpen = errors.New("wrap: envelope does not open")

	// ErrFormat means bytes are not a well-formed version 1 envelope, or an
	// envelope cannot be encoded (an empty, too long or non-UTF-8 key name,
	// version 0, an unknown KEM id, an enc of the wrong size).
	ErrFormat = errors.New("wrap: malformed envelope")

	// ErrKeyDestroyed is returned by PrivateKey.Open after Destroy.
	ErrKeyDestroyed = errors.New("wrap: private key destroyed")
)

// Scheme is one KEM algorithm of the table. Schemes are stateless and safe for
// concurrent use.
type Scheme interface {
	// Alg returns the scheme's entry in the algorithm table.
	Alg() *alg.Alg
	// GenerateSeed returns a fresh random seed of Alg().SeedSize bytes from
	// crypto/rand. The seed is secret.
	GenerateSeed() []byte
	// NewPrivateKey derives the private key from seed, which must be
	// Alg().SeedSize bytes (else an error wrapping ErrKeySize). The key does
	// not retain seed; the caller may clear it afterwards.
	NewPrivateKey(seed []byte) (PrivateKey, error)
	// NewPublicKey decodes an encoded public key of Alg().PublicKeySize bytes
	// (else an error wrapping ErrKeySize, or ErrInvalidKey if the bytes do
	// not encode a key). The key keeps its own copy.
	NewPublicKey(pub []byte) (PublicKey, error)
}

// PublicKey seals to a KEM public key with HPKE (RFC 9180, base mode) and the
// suite KDF HKDF-SHA256, AEAD AES-256-GCM. It is immutable and safe for
// concurrent use.
type PublicKey interface {
	// Alg returns the key's entry in the algorithm table.
	Alg() *alg.Alg
	// Bytes returns the encoded public key (SerializePublicKey of RFC 9180).
	// The slice is the caller's.
	Bytes() []byte
	// Seal encrypts plaintext to the key in a single-use HPKE context bound
	// to info, with aad as the AEAD associated data. enc is the KEM
	// encapsulation (Alg().OutputSize bytes) and ct the AEAD ciphertext
	// (len(plaintext) + 16 bytes); both are needed to open. Randomness comes
	// from crypto/rand.
	Seal(info, aad, plaintext []byte) (enc, ct []byte, err error)
}

// PrivateKey opens what was sealed to its public key. It is safe for
// concurrent use, Destroy included: an Open running concurrently with
// Destroy either completes normally or returns ErrKeyDestroyed.
type PrivateKey interface {
	// Public returns the matching public key. It stays usable after Destroy.
	Public() PublicKey
	// Open decrypts ct, sealed by PublicKey.Seal with the same info and aad.
	// Any failure to open (wrong key, wrong info or aad, a modified enc or
	// ct) returns ErrOpen and no plaintext. After Destroy it returns
	// ErrKeyDestroyed. Only an enc of the wrong length is refused early;
	// otherwise the KEM and the AEAD tag check run in full.
	Open(enc, info, aad, ct []byte) ([]byte, error)
	// Destroy drops the key's secret material (best effort, see the package
	// documentation). It is idempotent.
	Destroy()
}

// kemScheme is an HPKE KEM of crypto/hpke, bound to its table entry.
type kemScheme struct {
	a   *alg.Alg
	kem hpke.KEM
}

// kems lists the KEM of every table entry this package implements, with
// the sizes crypto/hpke uses for it. The index below checks them against the
// table, so the table and the library cannot drift apart unnoticed.
var kems = []struct {
	name           string
	kem            hpke.KEM
	seed, pub, enc int
}{
	// DHKEM(X25519, HKDF-SHA256), RFC 9180 §7.1: NewPrivateKey takes the
	// 32-byte scalar, enc is the ephemeral public key.
	{alg.X25519, hpke.DHKEM(ecdh.X25519()), 32, 32, 32},
	// ML-KEM-768, draft-ietf-hpke-pq: NewPrivateKey takes the 64-byte
	// FIPS 203 seed d ‖ z, enc is the ML-KEM ciphertext.
	{alg.MLKEM768, hpke.MLKEM768(), mlkem.SeedSize, mlkem.EncapsulationKeySize768, mlkem.CiphertextSize768},
	// MLKEM768-X25519 (X-Wing), draft-ietf-hpke-pq: NewPrivateKey takes a
	// 32-byte secret that SHAKE256 expands into both component keys.
	{alg.MLKEM768X25519, hpke.MLKEM768X25519(), 32, mlkem.EncapsulationKeySize768 + 32, mlkem.CiphertextSize768 + 32},
}

// schemes and byKEMID index the implemented schemes by algorithm name and by
// HPKE KEM id.
var schemes, byKEMID = func() (map[string]*kemScheme, map[uint16]*kemScheme) {
	byName := make(map[string]*kemScheme, len(kems))
	byID := make(map[uint16]*kemScheme, len(kems))
	for _, k := range kems {
		a, ok := alg.Lookup(k.name)
		if !ok {
			panic("wrap: algorithm " + k.name + " missing from the table")
		}
		if a.Kind != alg.KindKEM || a.SeedSize != k.seed || a.PublicKeySize != k.pub || a.OutputSize != k.enc {
			panic("wrap: " + k.name + " table entry does not match crypto/hpke sizes")
		}
		if _, dup := byID[k.kem.ID()]; dup {
			panic("wrap: duplicate KEM id for " + k.name)
		}
		s := &kemScheme{a: a, kem: k.kem}
		byName[a.Name] = s
		byID[k.kem.ID()] = s
	}
	return byName, byID
}()

// For returns the scheme of the KEM algorithm name. It returns an error
// wrapping ErrUnsupported if name is not in the algorithm table, is not a KEM
// with wrap and unwrap, or has no implementation here.
func For(name string) (Scheme, error) {
	s, err := schemeFor(name)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func schemeFor(name string) (*kemScheme, error) {
	a, ok := alg.Lookup(name)
	if !ok || a.Kind != alg.KindKEM || !a.Ops.Has(alg.OpWrap|alg.OpUnwrap) {
		return nil, fmt.Errorf("%w: %q is not a KEM algorithm", ErrUnsupported, name)
	}
	s, ok := schemes[a.Name]
	if !ok {
		return nil, fmt.Errorf("%w: %q is not implemented", ErrUnsupported, name)
	}
	return s, nil
}

// encSize returns the size of the HPKE enc of the KEM with id kemID, and
// false for a KEM this package does not implement.
func encSize(kemID uint16) (int, bool) {
	s, ok := byKEMID[kemID]
	if !ok {
		return 0, false
	}
	return s.a.OutputSize, true
}

func keySizeError(a *alg.Alg, what string, got, want int) error {
	return fmt.Errorf("%w: %s %s is %d bytes, want %d", ErrKeySize, a.Name, what, got, want)
}
