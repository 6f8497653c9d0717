package captoken

import (
	"fmt"
	"strings"
	"time"
)

// Caveat names (SPEC §5).
const (
	caveatScope     = "scope"
	caveatTenant    = "tenant"
	caveatKeyPrefix = "key-prefix"
	caveatAlg       = "alg"
	caveatExpires   = "expires"

	caveatSep = " = "

	maxTenantLen    = 63
	maxKeyPrefixLen = 256
	maxAlgLen       = 64
)

// Restrictions are caveats to add to a token. Zero fields add nothing, so
// the zero value adds no caveat at all (and a token minted with it allows
// everything).
type Restrictions struct {
	// Scopes, if not empty, limits the token to these scopes.
	Scopes []Scope
	// Tenant, if not empty, limits the token to keys of this tenant
	// (SPEC §2 syntax).
	Tenant string
	// KeyPrefix, if not empty, limits the token to key names starting with
	// it (characters a-z 0-9 _ - /, at most 256).
	KeyPrefix string
	// Algs, if not empty, limits the token to keys of these algorithms
	// (names of [a-z0-9-]).
	Algs []string
	// Expires, if not zero, makes the token invalid from this instant on. It
	// is written in UTC with whole seconds, rounded down.
	Expires time.Time
}

// Caveats returns r as first-party caveat conditions, in the order scope,
// tenant, key-prefix, alg, expires. Scopes are written in the order of
// [AllScopes], without duplicates. An error wraps ErrInvalidRestrictions.
func (r Restrictions) Caveats() ([]string, error) {
	var cavs []string
	if len(r.Scopes) > 0 {
		var set scopeSet
		for _, s := range r.Scopes {
			b, ok := scopeBit(string(s))
			if !ok {
				return nil, fmt.Errorf("%w: unknown scope %q", ErrInvalidRestrictions, s)
			}
			set |= b
		}
		var sb strings.Builder
		sb.WriteString(caveatScope + caveatSep)
		for i, s := range scopeTable {
			if set&(1<<i) != 0 {
				if sb.Len() > len(caveatScope+caveatSep) {
					sb.WriteByte(',')
				}
				sb.WriteString(string(s))
			}
		}
		cavs = append(cavs, sb.String())
	}
	if r.Tenant != "" {
		if !validTenant(r.Tenant) {
			return nil, fmt.Errorf("%w: bad tenant %q", ErrInvalidRestrictions, r.Tenant)
		}
		cavs = append(cavs, caveatTenant+caveatSep+r.Tenant)
	}
	if r.KeyPrefix != "" {
		if !validKeyPrefix(r.KeyPrefix) {
			return nil, fmt.Errorf("%w: bad key prefix %q", ErrInvalidRestrictions, r.KeyPrefix)
		}
		cavs = append(cavs, caveatKeyPrefix+caveatSep+r.KeyPrefix)
	}
	if len(r.Algs) > 0 {
		for _, a := range r.Algs {
			if !validAlg(a) {
				return nil, fmt.Errorf("%w: bad algorithm name %q", ErrInvalidRestrictions, a)
			}
		}
		cavs = append(cavs, caveatAlg+caveatSep+strings.Join(r.Algs, ","))
	}
	if !r.Expires.IsZero() {
		cavs = append(cavs, caveatExpires+caveatSep+r.Expires.UTC().Format(time.RFC3339))
	}
	return cavs, nil
}

// validTenant reports whether t matches ^[a-z0-9][a-z0-9_-]{0,62}$.
func validTenant(t string) bool {
	if len(t) == 0 || len(t) > maxTenantLen || t[0] == '_' || t[0] == '-' {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !isLowerAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// validKeyPrefix reports whether p is 1 to 256 characters of [a-z0-9_/-],
// the characters a key name (SPEC §2) is made of.
func validKeyPrefix(p string) bool {
	if len(p) == 0 || len(p) > maxKeyPrefixLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; !isLowerAlnum(c) && c != '_' && c != '-' && c != '/' {
			return false
		}
	}
	return true
}

// validAlg reports whether a matches [a-z0-9-]{1,64}.
func validAlg(a string) bool {
	if len(a) == 0 || len(a) > maxAlgLen {
		return false
	}
	for i := 0; i < len(a); i++ {
		if c := a[i]; !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// validAlgList reports whether v is a non-empty comma-separated list of
// valid algorithm names.
func validAlgList(v string) bool {
	for {
		a, rest, more := strings.Cut(v, ",")
		if !validAlg(a) {
			return false
		}
		if !more {
			return true
		}
		v = rest
	}
}

// algListHas reports whether the comma-separated list v names alg.
func algListHas(v, alg string) bool {
	for {
		a, rest, more := strings.Cut(v, ",")
		if a == alg {
			return true
		}
		if !more {
			return false
		}
		v = rest
	}
}

// parseScopeList parses a non-empty comma-separated list of known scopes.
func parseScopeList(v string) (scopeSet, bool) {
	var set scopeSet
	for {
		s, rest, more := strings.Cut(v, ",")
		b, ok := scopeBit(s)
		if !ok {
			return 0, false
		}
		set |= b
		if !more {
			return set, true
		}
		v = rest
	}
}

func isLowerAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}
