package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
)

// kekIDInfo is the HKDF info string of the KEK id derivation.
const kekIDInfo = "ron-kms/seal/v1 kek-id"

// AESGCM is a [Sealer] that uses AES-256-GCM with a 32-byte KEK held in
// process memory. It is safe for concurrent use.
type AESGCM struct {
	id   [KEKIDSize]byte
	aead atomic.Pointer[cipher.AEAD] // nil after Destroy
}

var _ Sealer = (*AESGCM)(nil)

// NewAESGCM returns an AES-256-GCM sealer keyed with kek, which must be
// [KEKSize] bytes ([ErrKeyLength] otherwise). kek is secret; the sealer does
// not retain the slice, so the caller may clear it after the call.
func NewAESGCM(kek []byte) (*AESGCM, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("%w: got %d bytes", ErrKeyLength, len(kek))
	}
	k := append([]byte(nil), kek...)
	defer clear(k)
	id, err := kekID(k)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	s := &AESGCM{id: id}
	s.aead.Store(&aead)
	return s, nil
}

// kekID derives the public KEK id of kek. See the package documentation.
func kekID(kek []byte) ([KEKIDSize]byte, error) {
	var id [KEKIDSize]byte
	out, err := hkdf.Key(sha256.New, kek, nil, kekIDInfo, KEKIDSize)
	if err != nil {
		return id, fmt.Errorf("seal: deriving KEK id: %w", err)
	}
	copy(id[:], out)
	return id, nil
}

// KEKID returns the id of the sealer's KEK, as stored in every record it
// seals. It is not secret.
func (s *AESGCM) KEKID() [KEKIDSize]byte { return s.id }

// Destroy drops the sealer's cipher; afterwards Seal and Open return
// [ErrDestroyed]. The KEK copy made by [NewAESGCM] is cleared as soon as the
// cipher is set up, but the expanded AES key schedule lives inside crypto/aes
// and cannot be cleared from Go: it stays in memory until garbage collected.
// Clearing secrets is best effort in Go.
func (s *AESGCM) Destroy() { s.aead.Store(nil) }

// Seal implements [Sealer]. The nonce is random; see the package documentation
// for the 2^32 records per KEK limit.
func (s *AESGCM) Seal(b Binding, plaintext []byte) ([]byte, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	aead := s.aead.Load()
	if aead == nil {
		return nil, ErrDestroyed
	}
	header := appendHeader(make([]byte, 0, Overhead+len(plaintext)), s.id)
	// The random-nonce AEAD appends nonce || ciphertext || tag to header.
	return (*aead).Seal(header, nil, plaintext, additionalData(header, b)), nil
}

// Open implements [Sealer].
func (s *AESGCM) Open(b Binding, record []byte) ([]byte, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	aead := s.aead.Load()
	if aead == nil {
		return nil, ErrDestroyed
	}
	r, err := ParseRecord(record)
	if err != nil {
		return nil, err
	}
	if r.KEKID != s.id {
		return nil, ErrWrongKEK
	}
	header := record[:HeaderSize]
	pt, err := (*aead).Open(nil, nil, record[HeaderSize:], additionalData(header, b))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
