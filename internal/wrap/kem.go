package wrap

import (
	"crypto/hpke"
	"crypto/rand"
	"fmt"
	"sync/atomic"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// The HPKE suite of every scheme: only the KEM varies (RFC 9180 §7.2, §7.3).
var (
	suiteKDF  = hpke.HKDFSHA256() // KDF id 0x0001
	suiteAEAD = hpke.AES256GCM()  // AEAD id 0x0002
)

// TagSize is the size in bytes of the AES-256-GCM tag: a ciphertext is
// TagSize bytes longer than its plaintext.
const TagSize = 16

var _ Scheme = (*kemScheme)(nil)

func (s *kemScheme) Alg() *alg.Alg { return s.a }

// GenerateSeed returns Alg().SeedSize random bytes. Every byte string of that
// size is a valid seed for the three KEMs (X25519 clamps its scalar, ML-KEM
// and the hybrid expand theirs), so no rejection is needed.
func (s *kemScheme) GenerateSeed() []byte {
	seed := make([]byte, s.a.SeedSize)
	_, _ = rand.Read(seed) // never fails since Go 1.24
	return seed
}

// NewPrivateKey expands seed with the KEM's DeserializePrivateKey (crypto/hpke
// KEM.NewPrivateKey) once and derives the public key.
func (s *kemScheme) NewPrivateKey(seed []byte) (PrivateKey, error) {
	if len(seed) != s.a.SeedSize {
		return nil, keySizeError(s.a, "seed", len(seed), s.a.SeedSize)
	}
	hk, err := s.kem.NewPrivateKey(seed)
	if err != nil {
		// Every seed of the right size is valid for these KEMs.
		return nil, fmt.Errorf("wrap: %s private key: %w", s.a.Name, err)
	}
	hp := hk.PublicKey()
	raw := hp.Bytes()
	if len(raw) != s.a.PublicKeySize {
		panic("wrap: " + s.a.Name + " derived public key has the wrong size")
	}
	k := &privateKey{pub: &publicKey{s: s, pk: hp, raw: raw}}
	k.key.Store(&hpkeKey{hk})
	return k, nil
}

// NewPublicKey decodes pub with the KEM's DeserializePublicKey. An X25519
// public key may be any 32 bytes (a low-order point is refused later, by
// Seal); an ML-KEM-768 encapsulation key must have every coefficient
// reduced (FIPS 203 §7.2), else ErrInvalidKey.
func (s *kemScheme) NewPublicKey(pub []byte) (PublicKey, error) {
	if len(pub) != s.a.PublicKeySize {
		return nil, keySizeError(s.a, "public key", len(pub), s.a.PublicKeySize)
	}
	hp, err := s.kem.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidKey, s.a.Name, err)
	}
	return &publicKey{s: s, pk: hp, raw: append([]byte(nil), pub...)}, nil
}

// publicKey is immutable after construction.
type publicKey struct {
	s   *kemScheme
	pk  hpke.PublicKey
	raw []byte
}

var _ PublicKey = (*publicKey)(nil)

func (k *publicKey) Alg() *alg.Alg { return k.s.a }

func (k *publicKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

func (k *publicKey) Seal(info, aad, plaintext []byte) (enc, ct []byte, err error) {
	enc, sender, err := hpke.NewSender(k.pk, suiteKDF, suiteAEAD, info)
	if err != nil {
		// X25519 to a low-order point; nothing secret in the message.
		return nil, nil, fmt.Errorf("wrap: %s encapsulation: %w", k.s.a.Name, err)
	}
	ct, err = sender.Seal(aad, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("wrap: %s seal: %w", k.s.a.Name, err)
	}
	return enc, ct, nil
}

// hpkeKey boxes the library key so that it can be swapped out atomically.
type hpkeKey struct{ k hpke.PrivateKey }

// privateKey is safe for concurrent use. Destroy swaps the key out
// atomically; an Open that loaded it before completes with it.
type privateKey struct {
	pub *publicKey
	key atomic.Pointer[hpkeKey] // secret; nil after Destroy
}

var _ PrivateKey = (*privateKey)(nil)

func (k *privateKey) Public() PublicKey { return k.pub }

func (k *privateKey) Open(enc, info, aad, ct []byte) ([]byte, error) {
	r, err := k.recipient(suiteKDF, suiteAEAD, enc, info)
	if err != nil {
		return nil, err
	}
	pt, err := r.Open(aad, ct)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// recipient sets up the receiving HPKE context for enc and info. It is Open
// without the AEAD step, for any KDF and AEAD: the known-answer tests run the
// published vectors (of several suites, and of many encryptions per context)
// through it.
func (k *privateKey) recipient(kdf hpke.KDF, aead hpke.AEAD, enc, info []byte) (*hpke.Recipient, error) {
	hk := k.key.Load()
	if hk == nil {
		return nil, ErrKeyDestroyed
	}
	if len(enc) != k.pub.s.a.OutputSize {
		return nil, ErrOpen
	}
	r, err := hpke.NewRecipient(enc, hk.k, kdf, aead, info)
	if err != nil {
		// A non-point or low-order X25519 enc; the library's reason is
		// dropped so that every failure to open looks the same.
		return nil, ErrOpen
	}
	return r, nil
}

// Destroy drops the reference to the library key. crypto/hpke, crypto/mlkem
// and crypto/ecdh keep their expanded keys in unexported fields that cannot
// be cleared from outside: they stay in memory until garbage collected.
func (k *privateKey) Destroy() { k.key.Store(nil) }
