package seal

import (
	"encoding/binary"
	"errors"
	"fmt"
)

var (
	// ErrOpen reports a record that does not open: sealed under another KEK,
	// bound to another name, version or algorithm, or tampered with.
	ErrOpen = errors.New("seal: record does not open")

	// ErrWrongKEK reports a record whose KEK id is not the sealer's. It wraps
	// [ErrOpen].
	ErrWrongKEK = fmt.Errorf("%w: sealed under a different key-encryption key", ErrOpen)

	// ErrBinding reports a [Binding] that cannot be encoded: an empty or too
	// long name, or a too long algorithm name.
	ErrBinding = errors.New("seal: invalid binding")

	// ErrDestroyed reports use of a sealer after Destroy.
	ErrDestroyed = errors.New("seal: sealer has been destroyed")
)

// Limits on the [Binding] fields, in bytes.
const (
	MaxNameLen = 1024
	MaxAlgLen  = 128
)

// adLabel is the domain separation label that starts the associated data.
const adLabel = "ron-kms/seal/v1"

// Binding names what a sealed secret belongs to. It is authenticated as
// associated data, not encrypted, and not stored in the record.
type Binding struct {
	// Name is a key name "tenant/purpose/alg/uuid", or an internal name such
	// as "server/token-root". It must be 1 to MaxNameLen bytes.
	Name string
	// Version is the key version.
	Version uint32
	// Alg is the algorithm name, at most MaxAlgLen bytes; it may be empty.
	Alg string
}

func (b Binding) validate() error {
	switch {
	case b.Name == "":
		return fmt.Errorf("%w: empty name", ErrBinding)
	case len(b.Name) > MaxNameLen:
		return fmt.Errorf("%w: name is %d bytes, limit %d", ErrBinding, len(b.Name), MaxNameLen)
	case len(b.Alg) > MaxAlgLen:
		return fmt.Errorf("%w: alg is %d bytes, limit %d", ErrBinding, len(b.Alg), MaxAlgLen)
	}
	return nil
}

// additionalData returns the AEAD associated data for a record with the given
// header and binding. b must be valid.
func additionalData(header []byte, b Binding) []byte {
	ad := make([]byte, 0, len(adLabel)+len(header)+2+len(b.Name)+4+2+len(b.Alg))
	ad = append(ad, adLabel...)
	ad = append(ad, header...)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(b.Name)))
	ad = append(ad, b.Name...)
	ad = binary.BigEndian.AppendUint32(ad, b.Version)
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(b.Alg)))
	return append(ad, b.Alg...)
}

// Sealer seals and opens secrets bound to a [Binding]. Implementations are
// safe for concurrent use.
type Sealer interface {
	// Seal returns a sealed record of plaintext bound to b. The plaintext is
	// not retained. An invalid binding is reported with [ErrBinding].
	Seal(b Binding, plaintext []byte) ([]byte, error)

	// Open returns the plaintext of a record sealed with the same binding.
	// Errors wrap [ErrFormat] for a malformed record, [ErrOpen] (or
	// [ErrWrongKEK]) for one that does not open, and [ErrBinding] for an
	// invalid binding. No plaintext is returned with an error.
	Open(b Binding, record []byte) ([]byte, error)
}
