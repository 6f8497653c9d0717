package wrap

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Limits and fixed sizes of the version 1 envelope format. See the package
// documentation.
const (
	// MaxNameLen is the longest key name an envelope carries, in bytes.
	MaxNameLen = 1024

	magic         = "RKW"
	formatVersion = 1

	// fixedSize is the size of every field but the name, the enc and the
	// ciphertext: magic, format version, name length, key version, KEM id,
	// enc length.
	fixedSize = len(magic) + 1 + 2 + 4 + 2 + 2
)

// Envelope is the parsed wire form of a wrapped data key. Nothing in it is
// secret. The wrapping key is named by KeyName and Version (the kid
// "KeyName#vVersion"); KEMID is the HPKE KEM id of its algorithm.
type Envelope struct {
	// KeyName is the name of the wrapping key, 1 to MaxNameLen bytes of
	// valid UTF-8. The format does not check the kid syntax of SPEC §2.
	KeyName string
	// Version is the version of the wrapping key, at least 1.
	Version uint32
	// KEMID is the HPKE KEM id: 0x0020 DHKEM(X25519, HKDF-SHA256), 0x0041
	// ML-KEM-768, 0x647a MLKEM768-X25519.
	KEMID uint16
	// Enc is the HPKE encapsulated key, of the KEM's enc size.
	Enc []byte
	// Ciphertext is the AES-256-GCM ciphertext of the data key, tag included.
	Ciphertext []byte
}

// Parse parses a version 1 envelope. It accepts exactly the byte strings
// [Envelope.Marshal] produces for valid envelopes, and otherwise returns an
// error wrapping [ErrFormat]. The returned Enc and Ciphertext do not alias b.
// Parse does not authenticate anything: a parsed envelope is only a claim
// until [Unwrap] opens it.
func Parse(b []byte) (Envelope, error) {
	var e Envelope
	if len(b) < fixedSize+1+TagSize {
		return e, fmt.Errorf("%w: %d bytes is too short", ErrFormat, len(b))
	}
	if string(b[:len(magic)]) != magic {
		return e, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	if v := b[len(magic)]; v != formatVersion {
		return e, fmt.Errorf("%w: unsupported format version %d", ErrFormat, v)
	}
	rest := b[len(magic)+1:]
	n := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	// fixedSize-6 bytes (key version, KEM id, enc length) follow the name.
	if n > len(rest)-(fixedSize-6) {
		return e, fmt.Errorf("%w: key name length %d exceeds the envelope", ErrFormat, n)
	}
	e.KeyName = string(rest[:n])
	rest = rest[n:]
	e.Version = binary.BigEndian.Uint32(rest)
	e.KEMID = binary.BigEndian.Uint16(rest[4:])
	m := int(binary.BigEndian.Uint16(rest[6:]))
	rest = rest[8:]
	if err := e.checkHeader(); err != nil {
		return Envelope{}, err
	}
	if want, _ := encSize(e.KEMID); m != want {
		return Envelope{}, fmt.Errorf("%w: enc is %d bytes, KEM 0x%04x wants %d", ErrFormat, m, e.KEMID, want)
	}
	if len(rest) < m+TagSize {
		return Envelope{}, fmt.Errorf("%w: truncated after the header", ErrFormat)
	}
	e.Enc = append([]byte(nil), rest[:m]...)
	e.Ciphertext = append([]byte(nil), rest[m:]...)
	return e, nil
}

// checkHeader reports whether the header fields of e can be encoded, with an
// error wrapping ErrFormat if not.
func (e *Envelope) checkHeader() error {
	switch {
	case e.KeyName == "":
		return fmt.Errorf("%w: empty key name", ErrFormat)
	case len(e.KeyName) > MaxNameLen:
		return fmt.Errorf("%w: key name is %d bytes, limit %d", ErrFormat, len(e.KeyName), MaxNameLen)
	case !utf8.ValidString(e.KeyName):
		return fmt.Errorf("%w: key name is not valid UTF-8", ErrFormat)
	case e.Version == 0:
		return fmt.Errorf("%w: key version 0", ErrFormat)
	}
	if _, ok := encSize(e.KEMID); !ok {
		return fmt.Errorf("%w: unknown KEM id 0x%04x", ErrFormat, e.KEMID)
	}
	return nil
}

// check reports whether e is a valid envelope, with an error wrapping
// ErrFormat if not: the conditions Parse enforces.
func (e *Envelope) check() error {
	if err := e.checkHeader(); err != nil {
		return err
	}
	if want, _ := encSize(e.KEMID); len(e.Enc) != want {
		return fmt.Errorf("%w: enc is %d bytes, KEM 0x%04x wants %d", ErrFormat, len(e.Enc), e.KEMID, want)
	}
	if len(e.Ciphertext) < TagSize {
		return fmt.Errorf("%w: ciphertext shorter than the tag", ErrFormat)
	}
	return nil
}

// Marshal returns the wire form of e. For an envelope returned by [Parse], it
// returns the bytes that were parsed. e must be valid (as Parse returns and
// Wrap builds); Marshal panics otherwise, since the fields would not fit the
// format.
func (e Envelope) Marshal() []byte {
	if err := e.check(); err != nil {
		panic("wrap: Marshal of an invalid envelope: " + err.Error())
	}
	b := make([]byte, 0, fixedSize+len(e.KeyName)+len(e.Enc)+len(e.Ciphertext))
	b = e.appendHeader(b)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Enc)))
	b = append(b, e.Enc...)
	return append(b, e.Ciphertext...)
}

// appendHeader appends the header of e (everything before the enc length)
// to b. The header fields of e must be valid.
func (e *Envelope) appendHeader(b []byte) []byte {
	b = append(b, magic...)
	b = append(b, formatVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.KeyName)))
	b = append(b, e.KeyName...)
	b = binary.BigEndian.AppendUint32(b, e.Version)
	return binary.BigEndian.AppendUint16(b, e.KEMID)
}
