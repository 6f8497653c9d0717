// Package symm is the versioned ciphertext format of aes-256-gcm keys and
// the AES-256-GCM encryption behind it.
//
// Wire format, version 1:
//
//	"RKE" | 0x01 | u16 len(name) | name | u32 version | nonce (12) | ciphertext ‖ tag (16)
//
// All integers are big-endian. name is the key name (tenant/purpose/alg/uuid)
// and version the key version that encrypted, so decryption looks the key up
// directly. The header (everything before the nonce) and the caller's
// associated data are both authenticated: the GCM additional data is
// "ron-kms/encrypt/v1" ‖ header ‖ caller aad, so a ciphertext relabelled to
// another key or version fails to open.
//
// Nonces are random (96 bits). NIST SP 800-38D limits one key to 2^32
// random-nonce encryptions; the keystore counts them per key version.
package symm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes of the format.
const (
	KeySize   = 32
	NonceSize = 12
	TagSize   = 16
	// MaxNameLen bounds the key name in a header.
	MaxNameLen = 512
	// MaxEncryptions is the SP 800-38D bound on random-nonce encryptions
	// under one key.
	MaxEncryptions = 1 << 32
)

const (
	magic   = "RKE"
	version = 1
	adLabel = "ron-kms/encrypt/v1"
)

var (
	// ErrFormat: the bytes are not a ciphertext of this format.
	ErrFormat = errors.New("symm: malformed ciphertext")
	// ErrOpen: the ciphertext does not open under this key and aad
	// (tampered, wrong key, wrong aad). No plaintext is returned.
	ErrOpen = errors.New("symm: ciphertext does not open (tampered, wrong key or wrong aad)")
)

// Ciphertext is the parsed wire form.
type Ciphertext struct {
	Name    string
	Version uint32
	Nonce   [NonceSize]byte
	Sealed  []byte // ciphertext ‖ tag
}

func header(name string, v uint32) []byte {
	b := make([]byte, 0, 4+2+len(name)+4)
	b = append(b, magic...)
	b = append(b, version)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	return binary.BigEndian.AppendUint32(b, v)
}

// Marshal returns the wire form; Parse(c.Marshal()) gives c back.
func (c Ciphertext) Marshal() []byte {
	b := header(c.Name, c.Version)
	b = append(b, c.Nonce[:]...)
	return append(b, c.Sealed...)
}

// Parse reads the wire form strictly.
func Parse(b []byte) (Ciphertext, error) {
	var c Ciphertext
	if len(b) < 6 || string(b[:3]) != magic {
		return c, fmt.Errorf("%w: not a ron-kms ciphertext", ErrFormat)
	}
	if b[3] != version {
		return c, fmt.Errorf("%w: unknown format version %d", ErrFormat, b[3])
	}
	n := int(binary.BigEndian.Uint16(b[4:6]))
	if n == 0 || n > MaxNameLen {
		return c, fmt.Errorf("%w: bad key name length", ErrFormat)
	}
	rest := b[6:]
	if len(rest) < n+4+NonceSize+TagSize {
		return c, fmt.Errorf("%w: too short", ErrFormat)
	}
	c.Name = string(rest[:n])
	c.Version = binary.BigEndian.Uint32(rest[n : n+4])
	if c.Version == 0 {
		return c, fmt.Errorf("%w: version 0", ErrFormat)
	}
	copy(c.Nonce[:], rest[n+4:])
	c.Sealed = rest[n+4+NonceSize:]
	return c, nil
}

// Key is one AES-256-GCM key version. Safe for concurrent use. The key
// bytes are secret; the expanded AES key schedule lives inside crypto/aes and
// cannot be cleared from Go.
type Key struct {
	aead cipher.AEAD
}

// NewKey builds a key from 32 secret bytes (not retained).
func NewKey(key []byte) (*Key, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("symm: key must be %d bytes", KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Key{aead: aead}, nil
}

func ad(name string, v uint32, aad []byte) []byte {
	h := header(name, v)
	b := make([]byte, 0, len(adLabel)+len(h)+len(aad))
	b = append(b, adLabel...)
	b = append(b, h...)
	return append(b, aad...)
}

// Encrypt seals plaintext for key version (name, v) with a random nonce and
// returns the wire form.
func (k *Key) Encrypt(name string, v uint32, plaintext, aad []byte) ([]byte, error) {
	if len(name) == 0 || len(name) > MaxNameLen || v == 0 {
		return nil, errors.New("symm: bad key name or version")
	}
	c := Ciphertext{Name: name, Version: v}
	rand.Read(c.Nonce[:])
	c.Sealed = k.aead.Seal(nil, c.Nonce[:], plaintext, ad(name, v, aad))
	return c.Marshal(), nil
}

// Decrypt opens a parsed ciphertext; the caller has looked the key up by
// c.Name and c.Version.
func (k *Key) Decrypt(c Ciphertext, aad []byte) ([]byte, error) {
	pt, err := k.aead.Open(nil, c.Nonce[:], c.Sealed, ad(c.Name, c.Version, aad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
