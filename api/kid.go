// Package api holds the wire contract of ron-kms: key identifiers, the JSON
// request and response types of the HTTP API, and the error codes. It imports
// only the standard library so that clients can depend on it cheaply.
package api

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrBadKID is returned (wrapped with a reason) for any string that is not a
// valid key name or key id.
var ErrBadKID = errors.New("api: invalid key id")

// Algorithm names of SPEC §3. A key id may name only these.
var knownAlgs = map[string]bool{
	"ed25519":           true,
	"ml-dsa-44":         true,
	"ml-dsa-65":         true,
	"ml-dsa-87":         true,
	"slh-dsa-sha2-128s": true,
	"mldsa65-ed25519":   true,
	"x25519":            true,
	"ml-kem-768":        true,
	"mlkem768-x25519":   true,
	"aes-256-gcm":       true,
}

// KnownAlg reports whether name is an algorithm name of the contract. It says
// nothing about whether a given server build supports it.
func KnownAlg(name string) bool { return knownAlgs[name] }

// KeyName identifies a key, all of its versions: tenant/purpose/alg/uuid.
type KeyName struct {
	Tenant  string
	Purpose string
	Alg     string
	UUID    string
}

// String returns the canonical text form, tenant/purpose/alg/uuid.
func (n KeyName) String() string {
	return n.Tenant + "/" + n.Purpose + "/" + n.Alg + "/" + n.UUID
}

// Version returns the key id of version v of this key.
func (n KeyName) Version(v uint32) KID { return KID{KeyName: n, Version: v} }

// KID identifies one version of a key: tenant/purpose/alg/uuid#vN. A KID whose
// Version is zero is a key name: "the current version".
type KID struct {
	KeyName
	Version uint32
}

// String returns the canonical form; without "#vN" when Version is zero.
func (k KID) String() string {
	if k.Version == 0 {
		return k.KeyName.String()
	}
	return k.KeyName.String() + "#v" + strconv.FormatUint(uint64(k.Version), 10)
}

// ParseKID parses a key id that must carry a version.
func ParseKID(s string) (KID, error) {
	k, err := ParseKeyRef(s)
	if err != nil {
		return KID{}, err
	}
	if k.Version == 0 {
		return KID{}, fmt.Errorf("%w: %q has no #vN version", ErrBadKID, truncate(s))
	}
	return k, nil
}

// ParseKeyName parses a key name (no version suffix).
func ParseKeyName(s string) (KeyName, error) {
	k, err := ParseKeyRef(s)
	if err != nil {
		return KeyName{}, err
	}
	if k.Version != 0 {
		return KeyName{}, fmt.Errorf("%w: %q must not carry a version", ErrBadKID, truncate(s))
	}
	return k.KeyName, nil
}

// ParseKeyRef parses either a key id or a key name; a key name yields a KID
// with Version zero. Parsing is strict: String(ParseKeyRef(s)) == s for every
// s it accepts.
func ParseKeyRef(s string) (KID, error) {
	if len(s) > 256 {
		return KID{}, fmt.Errorf("%w: longer than 256 bytes", ErrBadKID)
	}
	name, ver, hasVer := strings.Cut(s, "#")
	var k KID
	if hasVer {
		v, err := parseVersion(ver)
		if err != nil {
			return KID{}, fmt.Errorf("%w: %q: %v", ErrBadKID, truncate(s), err)
		}
		k.Version = v
	}
	parts := strings.Split(name, "/")
	if len(parts) != 4 {
		return KID{}, fmt.Errorf("%w: %q: want tenant/purpose/alg/uuid", ErrBadKID, truncate(s))
	}
	if err := CheckLabel("tenant", parts[0]); err != nil {
		return KID{}, fmt.Errorf("%w: %v", ErrBadKID, err)
	}
	if err := CheckLabel("purpose", parts[1]); err != nil {
		return KID{}, fmt.Errorf("%w: %v", ErrBadKID, err)
	}
	if !KnownAlg(parts[2]) {
		return KID{}, fmt.Errorf("%w: unknown algorithm %q", ErrBadKID, truncate(parts[2]))
	}
	if !validUUID(parts[3]) {
		return KID{}, fmt.Errorf("%w: %q is not a canonical lower-case v4 or v7 UUID", ErrBadKID, truncate(parts[3]))
	}
	k.KeyName = KeyName{Tenant: parts[0], Purpose: parts[1], Alg: parts[2], UUID: parts[3]}
	return k, nil
}

func parseVersion(s string) (uint32, error) {
	if len(s) < 2 || s[0] != 'v' {
		return 0, errors.New("version must be written #vN")
	}
	d := s[1:]
	if d[0] == '0' {
		return 0, errors.New("version starts at 1 and has no leading zeros")
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return 0, errors.New("version must be decimal")
		}
	}
	v, err := strconv.ParseUint(d, 10, 32)
	if err != nil {
		return 0, errors.New("version out of range")
	}
	return uint32(v), nil
}

// CheckLabel checks a tenant or purpose against ^[a-z0-9][a-z0-9_-]{0,62}$.
// what names the field in the error.
func CheckLabel(what, s string) error {
	if len(s) == 0 || len(s) > 63 {
		return fmt.Errorf("%s must be 1 to 63 characters", what)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%s %q: only a-z, 0-9, '_' and '-' (not first) are allowed", what, truncate(s))
		}
	}
	return nil
}

// validUUID accepts the canonical lower-case 8-4-4-4-12 form with version 4
// or 7 and the RFC 9562 variant.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	if s[14] != '4' && s[14] != '7' {
		return false
	}
	switch s[19] {
	case '8', '9', 'a', 'b':
		return true
	}
	return false
}

// truncate keeps error messages short when echoing hostile input.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
