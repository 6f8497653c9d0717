package captoken

import (
	"errors"
	"testing"
	"time"
)

func TestVerifiedCacheKeepsExpiry(t *testing.T) {
	a := newTestAuthority(t)
	now := time.Now()
	tok, _, err := a.Mint(Restrictions{Expires: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	g1, err := a.Verify(tok, now)
	if err != nil {
		t.Fatal(err)
	}
	if a.cache.len() != 1 {
		t.Fatalf("cache holds %d tokens after one verification, want 1", a.cache.len())
	}
	g2, err := a.Verify(tok, now.Add(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if g1 != g2 {
		t.Error("the second verification did not come from the cache")
	}
	// The cache must not outlive the token: expiry is checked on each use.
	if _, err := a.Verify(tok, now.Add(time.Minute)); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("cached token at its expiry: err %v, want ErrUnauthenticated", err)
	}
	// A token already expired when first seen is refused every time.
	old, _, _ := a.Mint(Restrictions{Expires: now.Add(-time.Second)})
	for i := range 2 {
		if _, err := a.Verify(old, now); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("expired token, call %d: err %v, want ErrUnauthenticated", i, err)
		}
	}
}

func TestVerifiedCacheRefusesForgeries(t *testing.T) {
	a := newTestAuthority(t)
	tok, _, err := a.Mint(Restrictions{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(tok, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Every one-character change of a cached token is a different token,
	// verified afresh: the cache never changes an answer. (Some changes
	// verify: the location hint is not authenticated.)
	fresh := newTestAuthority(t)
	fresh.cache = newVerifiedCache(0)
	alphabet := "AQgw_-"
	for i := range len(tok) {
		c := alphabet[0]
		if tok[i] == c {
			c = alphabet[1]
		}
		forged := tok[:i] + string(c) + tok[i+1:]
		g, err := a.Verify(forged, time.Now())
		want, werr := fresh.Verify(forged, time.Now())
		if (err == nil) != (werr == nil) || (err == nil && (g.ID() != want.ID() || g.tenant != want.tenant || g.scopes != want.scopes)) {
			t.Fatalf("position %d: with a warm cache (%v, %v), without (%v, %v)", i, g, err, want, werr)
		}
		if err == nil {
			continue
		}
		if _, ok := a.cache.get(tokenDigest(forged)); ok {
			t.Fatalf("position %d: a token that failed is in the cache", i)
		}
	}
	if fresh.cache.len() != 0 {
		t.Fatal("a cache of size 0 holds tokens")
	}
	// Another authority's cache is its own: its root key decides.
	other := newTestAuthority(t)
	other.rootKey[0] ^= 1
	if _, err := other.Verify(tok, time.Now()); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("a token of another root key: err %v, want ErrUnauthenticated", err)
	}
}

func TestVerifiedCacheBounded(t *testing.T) {
	a := newTestAuthority(t)
	a.cache = newVerifiedCache(8)
	for range 50 {
		tok, _, err := a.Mint(Restrictions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Verify(tok, time.Now()); err != nil {
			t.Fatal(err)
		}
		if n := a.cache.len(); n > 8 {
			t.Fatalf("cache holds %d tokens, bound 8", n)
		}
	}
}

func newTestAuthority(t *testing.T) *Authority {
	t.Helper()
	a, err := NewAuthority(make([]byte, RootKeySize), "test")
	if err != nil {
		t.Fatal(err)
	}
	return a
}
