package api

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
)

// ErrEncoding is returned (wrapped with the field name) for a binary field
// that is not strictly encoded.
var ErrEncoding = errors.New("api: bad encoding")

// DecodeB64 decodes standard base64 with padding, strictly: no newlines, no
// non-zero trailing bits. field names the JSON field in the error.
func DecodeB64(field, s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(s) != base64.StdEncoding.EncodedLen(len(b)) {
		return nil, fmt.Errorf("%w: %s is not standard padded base64", ErrEncoding, field)
	}
	return b, nil
}

// EncodeB64 encodes b as standard base64 with padding.
func EncodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// DecodePayloadB3 decodes a BLAKE3-256 digest written as 64 lower-case hex
// characters.
func DecodePayloadB3(s string) ([]byte, error) {
	if len(s) != 64 {
		return nil, fmt.Errorf("%w: payload_b3 must be 64 lower-case hex characters (a BLAKE3-256 digest), got %d characters", ErrEncoding, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return nil, fmt.Errorf("%w: payload_b3 must be lower-case hex", ErrEncoding)
		}
	}
	return hex.DecodeString(s)
}
