package captoken

import (
	"errors"
	"strings"
	"sync"
	"testing"
)

// revokedSet is a Revocations for tests.
type revokedSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (r *revokedSet) TokenRevoked(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id]
}

func (r *revokedSet) revoke(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = make(map[string]bool)
	}
	r.ids[id] = true
}

// TestRevokedAfterCache: a revoked token and every attenuation of it are
// refused, also when their signature was already checked and remembered;
// other tokens are not affected.
func TestRevokedAfterCache(t *testing.T) {
	a := newAuthority(t, testKey)
	revs := &revokedSet{}
	a.SetRevocations(revs)
	tok, id, err := a.Mint(Restrictions{Scopes: []Scope{ScopeSign, ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	att, err := Attenuate(tok, Restrictions{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	other := mint(t, a, Restrictions{})
	for _, s := range []string{tok, att, other} {
		if g := verify(t, a, s); s != other && g.ID() != id {
			t.Fatalf("attenuation has id %s, want %s", g.ID(), id)
		}
	}
	if a.cache.len() != 3 {
		t.Fatalf("cache holds %d tokens, want 3", a.cache.len())
	}
	revs.revoke(id)
	for name, s := range map[string]string{"token": tok, "attenuation": att} {
		g, err := a.Verify(s, testNow)
		if !errors.Is(err, ErrUnauthenticated) || g != nil {
			t.Fatalf("revoked %s: Verify = %v, %v; want ErrUnauthenticated", name, g, err)
		}
		if !strings.Contains(err.Error(), "revoked") || strings.Contains(err.Error(), s) {
			t.Errorf("revoked %s: message %q", name, err)
		}
	}
	// An attenuation made after the revocation, never seen before.
	late, err := Attenuate(tok, Restrictions{Scopes: []Scope{ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(late, testNow); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("new attenuation of a revoked token: %v", err)
	}
	verify(t, a, other)
	// Without the check, the same Authority accepts the token again.
	a.SetRevocations(nil)
	verify(t, a, tok)
}

func TestValidID(t *testing.T) {
	_, id, err := newAuthority(t, testKey).Mint(Restrictions{})
	if err != nil {
		t.Fatal(err)
	}
	if !ValidID(id) {
		t.Errorf("ValidID(%q) = false for a minted id", id)
	}
	for _, bad := range []string{"", id[:30], id + "00", strings.ToUpper(id), id[:31] + "g", id[:31] + "/"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}
