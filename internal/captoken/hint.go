package captoken

import (
	"strings"

	"gopkg.in/macaroon.v2"
)

// TenantHint returns the tenant named by token's first tenant caveat, or ""
// when the token cannot be parsed or has no valid tenant caveat.
//
// The token is NOT verified: anyone can write a token with any hint. The
// hint exists so that load can be attributed to a tenant before any
// cryptographic work (httpapi's in-flight fair share); it must never be used
// to authorize anything. Its cost is one base64 decode and one macaroon
// parse, bounded by MaxTokenLen. Safe for concurrent use.
func TenantHint(token string) string {
	m, err := parseToken(token)
	if err != nil {
		return ""
	}
	return hintOf(m)
}

// TenantHint is the package's TenantHint, answered from a's cache of
// verified tokens when token is in it (no parse at all), else as the
// package function does. The same caution applies: it is a hint for load
// accounting, never an authorization.
func (a *Authority) TenantHint(token string) string {
	if e, ok := a.cache.get(tokenDigest(token)); ok {
		return e.hint
	}
	return TenantHint(token)
}

// hintOf is TenantHint of a parsed token.
func hintOf(m *macaroon.Macaroon) string {
	for _, c := range m.Caveats() {
		if len(c.VerificationId) > 0 {
			continue
		}
		name, value, ok := strings.Cut(string(c.Id), caveatSep)
		if ok && name == caveatTenant && validTenant(value) {
			return value
		}
	}
	return ""
}
