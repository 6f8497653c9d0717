package captoken

import (
	"fmt"
	"strings"
	"time"
)

// Grant is what a verified token allows: its caveats, evaluated and
// intersected. It is made by [Authority.Verify], is immutable, and is safe
// for concurrent use. Expiry is checked by Verify at the time it is given;
// a Grant does not expire by itself, so verify the token on every request.
type Grant struct {
	id string

	// denied, if not empty, says why this Grant denies everything (an
	// unknown or malformed caveat). Verify refuses such a token, so a Grant
	// it returns never has one; the checks below still honour it.
	denied string

	scopes scopeSet

	tenant         string
	hasTenant      bool
	tenantConflict bool // two different tenant caveats: no tenant at all

	keyPrefix      string // the longest of the key-prefix caveats
	hasKeyPrefix   bool
	prefixConflict bool // two key-prefix caveats neither of which extends the other

	algLists []string // the values of the alg caveats; an alg must be in each

	expires    time.Time // the earliest expires caveat
	hasExpires bool
}

// ID returns the token's identifier in lower-case hex (the audit "actor").
// It is not secret and is not the token.
func (g *Grant) ID() string { return g.id }

// addCaveat adds one first-party caveat condition to g. It is the checker
// given to macaroon.Verify, which calls it before the signature is known to
// be good, so it never returns an error (which would make a forged token
// look like a capability failure): a bad caveat is recorded in g.denied.
func (g *Grant) addCaveat(cond string) error {
	name, value, ok := strings.Cut(cond, caveatSep)
	if !ok || value == "" {
		g.deny(cond, `is malformed: a caveat is "name = value", one space each side of "="`)
		return nil
	}
	switch name {
	case caveatScope:
		set, ok := parseScopeList(value)
		if !ok {
			g.deny(cond, "is malformed: the value must be known scopes separated by commas, such as kms:sign,kms:verify")
			return nil
		}
		g.scopes &= set
	case caveatTenant:
		if !validTenant(value) {
			g.deny(cond, "is malformed: the value is not a tenant name")
			return nil
		}
		switch {
		case !g.hasTenant:
			g.tenant, g.hasTenant = value, true
		case g.tenant != value:
			g.tenantConflict = true
		}
	case caveatKeyPrefix:
		if !validKeyPrefix(value) {
			g.deny(cond, "is malformed: the value is not a key-name prefix (a-z 0-9 _ - /, at most 256)")
			return nil
		}
		switch {
		case !g.hasKeyPrefix:
			g.keyPrefix, g.hasKeyPrefix = value, true
		case strings.HasPrefix(value, g.keyPrefix):
			g.keyPrefix = value
		case strings.HasPrefix(g.keyPrefix, value):
			// The current prefix already implies this one.
		default:
			g.prefixConflict = true
		}
	case caveatAlg:
		if !validAlgList(value) {
			g.deny(cond, "is malformed: the value must be algorithm names separated by commas")
			return nil
		}
		g.algLists = append(g.algLists, value)
	case caveatExpires:
		t, err := time.Parse(time.RFC3339, value)
		if err != nil {
			g.deny(cond, "is malformed: the value must be an RFC 3339 time")
			return nil
		}
		if !g.hasExpires || t.Before(g.expires) {
			g.expires, g.hasExpires = t, true
		}
	default:
		g.deny(cond, "is unknown: known caveats are scope, tenant, key-prefix, alg and expires")
	}
	return nil
}

// deny records the first reason for g to deny everything: the caveat cond,
// quoted and shortened (never the token), and what is wrong with it.
func (g *Grant) deny(cond, why string) {
	if g.denied != "" {
		return
	}
	const maxShown = 64
	if len(cond) > maxShown {
		cond = cond[:maxShown] + "..."
	}
	g.denied = fmt.Sprintf("the token's caveat %q %s", cond, why)
}

// Request is what an operation needs from a token. Every limit the token
// has applies even when the matching field is empty: an empty Tenant never
// satisfies a tenant caveat, nor an empty KeyName a key-prefix caveat, nor
// an empty Alg an alg caveat. Routes that concern no key check
// [Grant.HasScope] instead.
type Request struct {
	// Scope is the scope the route requires (SPEC §4).
	Scope Scope
	// Tenant is the tenant of the key concerned.
	Tenant string
	// KeyName is the key name concerned, "tenant/purpose/alg/uuid" (SPEC
	// §2, without "#vN"); for a key being created, the name it will have.
	KeyName string
	// Alg is the algorithm of the key concerned.
	Alg string
}

// Authorize returns nil if g allows req, and otherwise an error wrapping
// ErrNoCapability whose message names what is missing (the scope, tenant,
// key prefix or algorithm, or the bad caveat). The message never contains
// the token.
func (g *Grant) Authorize(req Request) error {
	if g.denied != "" {
		return fmt.Errorf("%w: %s", ErrNoCapability, g.denied)
	}
	if !g.scopes.has(req.Scope) {
		return fmt.Errorf("%w: token lacks scope %q", ErrNoCapability, req.Scope)
	}
	switch g.limit(req.Tenant, req.KeyName, req.Alg) {
	case limitTenant:
		if g.tenantConflict {
			return fmt.Errorf("%w: token allows no tenant (conflicting tenant caveats)", ErrNoCapability)
		}
		return fmt.Errorf("%w: token is limited to tenant %q, not %q", ErrNoCapability, g.tenant, req.Tenant)
	case limitKeyPrefix:
		if g.prefixConflict {
			return fmt.Errorf("%w: token allows no key (conflicting key-prefix caveats)", ErrNoCapability)
		}
		return fmt.Errorf("%w: key %q is outside the token's key prefix %q", ErrNoCapability, req.KeyName, g.keyPrefix)
	case limitAlg:
		return fmt.Errorf("%w: token does not allow algorithm %q", ErrNoCapability, req.Alg)
	}
	return nil
}

// HasScope reports whether g allows scope s (and has no bad caveat). It
// says nothing about tenants, keys or algorithms.
func (g *Grant) HasScope(s Scope) bool {
	return g.denied == "" && g.scopes.has(s)
}

// Unrestricted reports whether g carries no caveat but expiry: every
// scope, every tenant, key and algorithm. Only such a grant may mint tokens,
// so that minting never widens what the caller holds.
func (g *Grant) Unrestricted() bool {
	return g.denied == "" && g.scopes == allScopes && !g.hasTenant && !g.tenantConflict &&
		!g.hasKeyPrefix && !g.prefixConflict && len(g.algLists) == 0
}

// Visible reports whether g's tenant, key-prefix and alg caveats allow the
// key keyName of tenant with algorithm alg, for filtering list results. It
// does not check scopes.
func (g *Grant) Visible(tenant, keyName, alg string) bool {
	return g.denied == "" && g.limit(tenant, keyName, alg) == limitNone
}

// TenantLimit returns the only tenant g allows and true, or "" and false if
// g allows every tenant. If g allows no tenant at all (conflicting tenant
// caveats, or a bad caveat) it returns "" and true, which no key matches.
func (g *Grant) TenantLimit() (string, bool) {
	switch {
	case g.denied != "" || g.tenantConflict:
		return "", true
	case g.hasTenant:
		return g.tenant, true
	}
	return "", false
}

// KeyPrefixLimit returns the prefix every key name g allows starts with
// and true, or "" and false if g allows every key name. If g allows no key
// at all it returns "" and true; use [Grant.Visible] to test a key name.
func (g *Grant) KeyPrefixLimit() (string, bool) {
	switch {
	case g.denied != "" || g.prefixConflict:
		return "", true
	case g.hasKeyPrefix:
		return g.keyPrefix, true
	}
	return "", false
}

// Expires returns the earliest expires caveat and true, or false if the
// token has none.
func (g *Grant) Expires() (time.Time, bool) { return g.expires, g.hasExpires }

type limitKind int

const (
	limitNone limitKind = iota
	limitTenant
	limitKeyPrefix
	limitAlg
)

// limit returns which of g's limits a key fails, if any.
func (g *Grant) limit(tenant, keyName, alg string) limitKind {
	if g.tenantConflict || g.hasTenant && tenant != g.tenant {
		return limitTenant
	}
	if g.prefixConflict || g.hasKeyPrefix && !strings.HasPrefix(keyName, g.keyPrefix) {
		return limitKeyPrefix
	}
	for _, l := range g.algLists {
		if alg == "" || !algListHas(l, alg) {
			return limitAlg
		}
	}
	return limitNone
}
