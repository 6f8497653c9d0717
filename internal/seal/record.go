package seal

import (
	"errors"
	"fmt"
)

// Sizes of the version 1 record format. See the package documentation.
const (
	KEKSize    = 32 // bytes in a key-encryption key (AES-256)
	KEKIDSize  = 8  // bytes in a KEK id
	NonceSize  = 12 // bytes in a GCM nonce
	TagSize    = 16 // bytes in a GCM authentication tag
	HeaderSize = len(magic) + 1 + KEKIDSize

	// Overhead is the length of a record minus the length of its secret,
	// and so the length of the shortest well-formed record.
	Overhead = HeaderSize + NonceSize + TagSize
)

const (
	magic         = "RKS"
	formatVersion = 1
)

// ErrFormat reports a record that is not a well-formed version 1 sealed
// record. Errors returned by [ParseRecord] and [Sealer.Open] wrap it.
var ErrFormat = errors.New("seal: malformed sealed record")

// Record is the parsed wire form of a sealed record. Nothing in it is secret.
type Record struct {
	KEKID [KEKIDSize]byte
	Nonce [NonceSize]byte
	// Ciphertext is the AES-256-GCM ciphertext followed by the 16-byte tag.
	Ciphertext []byte
}

// ParseRecord parses a version 1 sealed record. It accepts exactly the byte
// strings [Record.Marshal] produces, and otherwise returns an error wrapping
// [ErrFormat]. The returned Ciphertext does not alias b.
func ParseRecord(b []byte) (Record, error) {
	if len(b) < Overhead {
		return Record{}, fmt.Errorf("%w: %d bytes, want at least %d", ErrFormat, len(b), Overhead)
	}
	if string(b[:len(magic)]) != magic {
		return Record{}, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	if v := b[len(magic)]; v != formatVersion {
		return Record{}, fmt.Errorf("%w: unsupported format version %d", ErrFormat, v)
	}
	var r Record
	rest := b[len(magic)+1:]
	rest = rest[copy(r.KEKID[:], rest):]
	rest = rest[copy(r.Nonce[:], rest):]
	r.Ciphertext = append([]byte(nil), rest...)
	return r, nil
}

// Marshal returns the wire form of r. For a record returned by [ParseRecord],
// it returns the bytes that were parsed.
func (r Record) Marshal() []byte {
	b := make([]byte, 0, HeaderSize+NonceSize+len(r.Ciphertext))
	b = appendHeader(b, r.KEKID)
	b = append(b, r.Nonce[:]...)
	return append(b, r.Ciphertext...)
}

func appendHeader(b []byte, kekID [KEKIDSize]byte) []byte {
	b = append(b, magic...)
	b = append(b, formatVersion)
	return append(b, kekID[:]...)
}
