// Package captoken implements the capability tokens of ron-kms (SPEC §5):
// macaroons (gopkg.in/macaroon.v2) in the binary V2 encoding, written as
// base64url without padding.
//
// A token carries first-party caveats, each the ASCII string "name = value"
// with exactly one space on each side of "=":
//
//	scope = kms:read,kms:sign     allowed scopes
//	tenant = acme                 only keys of this tenant
//	key-prefix = acme/payments/   only key names starting with this
//	alg = ed25519,ml-dsa-65       only keys of these algorithms
//	expires = 2030-01-02T15:04:05Z  not valid at or after this instant (RFC 3339)
//
// Every caveat must hold. Several caveats of the same name all apply, so the
// result is their intersection: two scope caveats allow only the scopes
// listed in both, two different tenant caveats allow no tenant at all. A
// token without caveats allows everything. A token with an unknown or
// malformed caveat is refused outright, as are third-party caveats (not
// supported) and revoked tokens (see [Revocations]).
//
// Anyone holding a token can attenuate it offline with [Attenuate]; nobody
// without the root key can remove a caveat. Only an [Authority], which holds
// the root key, can mint and verify tokens.
package captoken

import "errors"

var (
	// ErrUnauthenticated means there is no token, or it cannot be parsed, or
	// its signature does not verify under the root key, or it has expired,
	// or it has been revoked, or it carries an unknown or malformed caveat,
	// or a third-party caveat (its signature cannot be checked without a
	// discharge, which ron-kms does not accept). HTTP 401.
	ErrUnauthenticated = errors.New("captoken: unauthenticated")

	// ErrNoCapability means the token is genuine and current but does not
	// allow the request: a missing scope, another tenant, a key outside the
	// key prefix, another algorithm. HTTP 403. Errors returned by [Grant.Authorize] wrap it with a reason.
	ErrNoCapability = errors.New("captoken: no capability")

	// ErrInvalidRestrictions means a [Restrictions] value cannot be written
	// as caveats (an unknown scope, a bad tenant or algorithm name...).
	ErrInvalidRestrictions = errors.New("captoken: invalid restrictions")
)

// Scope is a permission named in a scope caveat and required by each route
// (SPEC §4).
type Scope string

// The scopes of SPEC §5.
const (
	ScopeRead    Scope = "kms:read"
	ScopeCreate  Scope = "kms:create"
	ScopeRotate  Scope = "kms:rotate"
	ScopeSign    Scope = "kms:sign"
	ScopeVerify  Scope = "kms:verify"
	ScopeWrap    Scope = "kms:wrap"
	ScopeUnwrap  Scope = "kms:unwrap"
	ScopeEncrypt Scope = "kms:encrypt"
	ScopeDecrypt Scope = "kms:decrypt"
	ScopeAdmin   Scope = "kms:admin"
)

// scopeTable is the list of known scopes; a scope's bit in a scopeSet is
// its index here.
var scopeTable = [...]Scope{
	ScopeRead, ScopeCreate, ScopeRotate, ScopeSign, ScopeVerify,
	ScopeWrap, ScopeUnwrap, ScopeEncrypt, ScopeDecrypt, ScopeAdmin,
}

// AllScopes returns every known scope, in a fixed order. The caller may
// modify the returned slice.
func AllScopes() []Scope {
	s := scopeTable
	return s[:]
}

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool {
	_, ok := scopeBit(string(s))
	return ok
}

// scopeSet is a set of scopes, one bit per entry of scopeTable.
type scopeSet uint16

const allScopes scopeSet = 1<<len(scopeTable) - 1

func scopeBit(name string) (scopeSet, bool) {
	for i, s := range scopeTable {
		if string(s) == name {
			return 1 << i, true
		}
	}
	return 0, false
}

func (set scopeSet) has(s Scope) bool {
	b, ok := scopeBit(string(s))
	return ok && set&b != 0
}
