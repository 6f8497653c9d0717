package captoken

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"time"

	"gopkg.in/macaroon.v2"
)

const (
	// RootKeySize is the size of an Authority's root key.
	RootKeySize = 32
	// IDSize is the size of a minted token's random macaroon identifier.
	IDSize = 16
	// MaxTokenLen is the longest token accepted, in base64 characters.
	// Longer tokens are rejected before decoding.
	MaxTokenLen = 8192
)

// b64 is the token's text encoding: base64url without padding, strict (no
// padding, no non-zero trailing bits; newlines are rejected by a length
// check in parseToken).
var b64 = base64.RawURLEncoding.Strict()

// Authority holds a root key and mints and verifies tokens with it.
// The root key is secret: it is copied at construction, kept in an
// unexported field, and never written to a log, an error or a String
// result. An Authority is safe for concurrent use.
type Authority struct {
	rootKey     []byte
	location    string
	cache       *verifiedCache
	revocations atomic.Pointer[Revocations]
}

// NewAuthority returns an Authority for a RootKeySize-byte root key, which
// it copies. location is the macaroon location hint written into minted
// tokens; it is not authenticated and never checked.
func NewAuthority(rootKey []byte, location string) (*Authority, error) {
	if len(rootKey) != RootKeySize {
		return nil, fmt.Errorf("captoken: root key is %d bytes, want %d", len(rootKey), RootKeySize)
	}
	return &Authority{rootKey: append([]byte(nil), rootKey...), location: location,
		cache: newVerifiedCache(DefaultCacheSize)}, nil
}

// String describes a without its root key.
func (a *Authority) String() string { return "captoken.Authority(" + a.location + ")" }

// GoString describes a without its root key, so that %#v does not print it.
func (a *Authority) GoString() string { return a.String() }

// Mint returns a new token limited by r, and its identifier: the random
// IDSize-byte macaroon identifier in lower-case hex, which names the token
// (the audit log's "actor") and is not secret. A token minted with the zero
// Restrictions allows everything. Errors from r wrap ErrInvalidRestrictions.
func (a *Authority) Mint(r Restrictions) (token string, id string, err error) {
	cavs, err := r.Caveats()
	if err != nil {
		return "", "", err
	}
	var rawID [IDSize]byte
	rand.Read(rawID[:]) // never fails since Go 1.24
	m, err := macaroon.New(a.rootKey, rawID[:], a.location, macaroon.V2)
	if err != nil {
		return "", "", fmt.Errorf("captoken: %v", err) // unreachable: V2 is valid
	}
	for _, c := range cavs {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			return "", "", fmt.Errorf("captoken: %v", err)
		}
	}
	token, err = encodeToken(m)
	if err != nil {
		return "", "", err
	}
	return token, hex.EncodeToString(rawID[:]), nil
}

// Attenuate returns token with the caveats of r added. It needs no key and
// does not check the token's signature; it cannot remove or loosen a caveat.
// An unparseable token is an error wrapping ErrUnauthenticated; a bad r, one
// wrapping ErrInvalidRestrictions.
func Attenuate(token string, r Restrictions) (string, error) {
	cavs, err := r.Caveats()
	if err != nil {
		return "", err
	}
	m, err := parseToken(token)
	if err != nil {
		return "", err
	}
	for _, c := range cavs {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			return "", fmt.Errorf("captoken: %v", err)
		}
	}
	return encodeToken(m)
}

// Info is what a token says about itself, unverified.
type Info struct {
	// ID is the macaroon identifier in lower-case hex.
	ID string
	// Location is the unauthenticated location hint.
	Location string
	// Caveats are the first-party caveat conditions, in order.
	Caveats []string
	// ThirdPartyCaveats counts third-party caveats (which make the token
	// unusable with ron-kms).
	ThirdPartyCaveats int
}

// Inspect parses token without verifying it: anyone can write a token that
// Inspect accepts. An unparseable token is an error wrapping
// ErrUnauthenticated.
func Inspect(token string) (Info, error) {
	m, err := parseToken(token)
	if err != nil {
		return Info{}, err
	}
	info := Info{ID: hex.EncodeToString(m.Id()), Location: m.Location()}
	for _, c := range m.Caveats() {
		if len(c.VerificationId) > 0 {
			info.ThirdPartyCaveats++
			continue
		}
		info.Caveats = append(info.Caveats, string(c.Id))
	}
	return info, nil
}

// Verify checks token's signature under a's root key and evaluates its
// caveats at now into a Grant.
//
// It returns ErrUnauthenticated (wrapped) if the token is empty, longer than
// MaxTokenLen, not canonical base64url without padding, not a canonical V2
// binary macaroon, carries a third-party caveat, fails the signature check,
// carries an unknown or malformed caveat (the message quotes the caveat,
// shortened, never the token), has an expires caveat at or before now, or
// has been revoked (see [Authority.SetRevocations]). Otherwise it returns a
// Grant, which [Grant.Authorize] checks against each request.
//
// The signature check is macaroon.Verify, whose final comparison is
// constant-time; the time taken otherwise depends on the token's length
// and caveats, which are not secret. A token whose signature verified once
// is remembered (by its SHA-256) with its Grant, so later calls with the
// same token only re-check revocation and expiry; see verifiedCache. The
// Grant is then shared between calls, which is safe because a Grant is
// immutable.
func (a *Authority) Verify(token string, now time.Time) (*Grant, error) {
	d := tokenDigest(token)
	e, ok := a.cache.get(d)
	if !ok {
		m, id, err := parseTokenID(token)
		if err != nil {
			return nil, err
		}
		for _, c := range m.Caveats() {
			if len(c.VerificationId) > 0 {
				return nil, fmt.Errorf("%w: third-party caveats are not supported", ErrUnauthenticated)
			}
		}
		g := &Grant{scopes: allScopes}
		if err := m.Verify(a.rootKey, g.addCaveat, nil); err != nil {
			return nil, fmt.Errorf("%w: bad signature", ErrUnauthenticated)
		}
		g.id = hex.EncodeToString(id)
		e = cachedGrant{g: g}
		a.cache.put(d, e)
	}
	return a.admit(e.g, now)
}

// admit returns g, the Grant of a token whose signature is good, or
// ErrUnauthenticated if that token is revoked, has expired at now, or
// carries a caveat this package does not understand. It runs on every
// Verify, cached or not: none of this is remembered.
func (a *Authority) admit(g *Grant, now time.Time) (*Grant, error) {
	if r := a.revocations.Load(); r != nil && (*r).TokenRevoked(g.id) {
		return nil, fmt.Errorf("%w: token %s has been revoked", ErrUnauthenticated, g.id)
	}
	if g.hasExpires && !now.Before(g.expires) {
		return nil, fmt.Errorf("%w: token expired", ErrUnauthenticated)
	}
	if g.denied != "" {
		return nil, fmt.Errorf("%w: %s", ErrUnauthenticated, g.denied)
	}
	return g, nil
}

// binaryV2 is the first byte of the binary V2 encoding.
const binaryV2 = 2

var errUnparseable = fmt.Errorf("%w: malformed token", ErrUnauthenticated)

// parseToken decodes a token strictly: canonical base64url without padding,
// one V2 binary macaroon in its canonical encoding (so that encodeToken
// gives back exactly token), nothing after it.
func parseToken(token string) (*macaroon.Macaroon, error) {
	m, _, err := parseTokenID(token)
	return m, err
}

// parseTokenID is parseToken that also returns the macaroon identifier.
func parseTokenID(token string) (*macaroon.Macaroon, []byte, error) {
	if len(token) == 0 {
		return nil, nil, fmt.Errorf("%w: no token", ErrUnauthenticated)
	}
	if len(token) > MaxTokenLen {
		return nil, nil, fmt.Errorf("%w: token longer than %d characters", ErrUnauthenticated, MaxTokenLen)
	}
	// Decode on the stack for the usual sizes; UnmarshalBinary copies.
	var stack [1024]byte
	buf := stack[:]
	if n := b64.DecodedLen(len(token)); n > len(buf) {
		buf = make([]byte, n)
	}
	n, err := b64.Decode(buf, []byte(token))
	// The decoder skips '\r' and '\n'; a canonical token has none.
	if err != nil || b64.EncodedLen(n) != len(token) {
		return nil, nil, errUnparseable
	}
	data := buf[:n]
	if data[0] != binaryV2 {
		return nil, nil, errUnparseable
	}
	m := new(macaroon.Macaroon)
	if err := m.UnmarshalBinary(data); err != nil || m.Version() != macaroon.V2 {
		return nil, nil, errUnparseable
	}
	// UnmarshalBinary ignores trailing bytes and accepts non-minimal
	// varints and empty optional fields. Each of those makes the input
	// longer than the canonical encoding of what was parsed, and nothing
	// else can differ, so equal lengths mean equal bytes.
	id := m.Id()
	if canonicalLen(m, len(id)) != len(data) {
		return nil, nil, errUnparseable
	}
	return m, id, nil
}

// encodeToken writes m as a token.
func encodeToken(m *macaroon.Macaroon) (string, error) {
	data, err := m.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("captoken: %v", err)
	}
	return b64.EncodeToString(data), nil
}

// canonicalLen is the length of m's canonical binary V2 encoding
// (gopkg.in/macaroon.v2 marshal-v2.go, libmacaroons doc/format.txt), whose
// identifier is idLen bytes long.
func canonicalLen(m *macaroon.Macaroon, idLen int) int {
	n := 1 // version
	n += optPacketLen(len(m.Location()))
	n += packetLen(idLen) + 1 // identifier, end of section
	for _, c := range m.Caveats() {
		n += optPacketLen(len(c.Location))
		n += packetLen(len(c.Id))
		n += optPacketLen(len(c.VerificationId))
		n++ // end of section
	}
	n++ // end of caveats
	n += packetLen(sigLen)
	return n
}

// sigLen is the size of a macaroon signature (HMAC-SHA256).
const sigLen = 32

// packetLen is the size of a V2 packet with an n-byte payload: a one-byte
// field type, the varint length, the payload.
func packetLen(n int) int {
	var buf [binary.MaxVarintLen64]byte
	return 1 + binary.PutUvarint(buf[:], uint64(n)) + n
}

// optPacketLen is packetLen for a field left out when empty.
func optPacketLen(n int) int {
	if n == 0 {
		return 0
	}
	return packetLen(n)
}
