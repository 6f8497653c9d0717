package captoken

import (
	"encoding/base64"
	"errors"
	"testing"

	"gopkg.in/macaroon.v2"
)

// seedTokens are real tokens of every kind for the fuzz corpus.
func seedTokens(t testing.TB) []string {
	a := newAuthority(t, testKey)
	full := mint(t, a, Restrictions{
		Scopes: []Scope{ScopeSign, ScopeRead}, Tenant: "acme", KeyPrefix: "acme/payments/",
		Algs: []string{"ed25519", "ml-dsa-65"}, Expires: testLater,
	})
	att, err := Attenuate(full, Restrictions{Scopes: []Scope{ScopeRead}, Tenant: "zed", Expires: testNow})
	if err != nil {
		t.Fatal(err)
	}
	return []string{
		mint(t, a, Restrictions{}),
		full,
		att,
		addRawCaveat(t, full, "color = red"),
		withMacaroon(t, full, func(m *macaroon.Macaroon) { m.AddThirdPartyCaveat([]byte("k"), []byte("id"), "there") }),
		mint(t, newAuthority(t, otherKey), Restrictions{Tenant: "acme"}),
		"", "AgEM", "not a token",
	}
}

// FuzzVerify checks that no input makes Verify, Inspect, Attenuate or a
// Grant panic, that every error is one of the sentinels, and that a token
// that parses re-encodes to the same string.
func FuzzVerify(f *testing.F) {
	for _, s := range seedTokens(f) {
		f.Add(s)
	}
	a := newAuthority(f, testKey)
	f.Fuzz(func(t *testing.T, tok string) {
		g, err := a.Verify(tok, testNow)
		switch {
		case err == nil:
			for _, s := range AllScopes() {
				err := g.Authorize(Request{Scope: s, Tenant: "acme", KeyName: keyEd, Alg: "ed25519"})
				if err != nil && !errors.Is(err, ErrNoCapability) {
					t.Fatalf("Authorize: %v", err)
				}
			}
			g.Visible("acme", keyEd, "ed25519")
			g.TenantLimit()
			// Attenuating a valid token keeps it valid and narrows it.
			att, err := Attenuate(tok, Restrictions{Tenant: "zed"})
			if err != nil {
				t.Fatalf("Attenuate: %v", err)
			}
			g2, err := a.Verify(att, testNow)
			if err != nil {
				t.Fatalf("Verify(attenuated): %v", err)
			}
			if g2.Visible("acme", keyEd, "ed25519") || g2.ID() != g.ID() {
				t.Fatal("attenuation to tenant zed left tenant acme visible")
			}
		case !errors.Is(err, ErrUnauthenticated):
			t.Fatalf("Verify error %v is not ErrUnauthenticated", err)
		}

		info, err := Inspect(tok)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Inspect error %v is not ErrUnauthenticated", err)
			}
			if g != nil {
				t.Fatal("Verify accepted a token Inspect rejects")
			}
			return
		}
		_ = info
		m, err := parseToken(tok)
		if err != nil {
			t.Fatalf("parseToken: %v", err)
		}
		data, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if enc := base64.RawURLEncoding.EncodeToString(data); enc != tok {
			t.Fatalf("token does not re-encode to itself:\n in  %q\n out %q", tok, enc)
		}
	})
}

// FuzzCaveat checks any single caveat a holder may add: Verify never
// panics, refuses the token only as ErrUnauthenticated (expired, or a
// caveat it does not understand), and a caveat never widens the token.
func FuzzCaveat(f *testing.F) {
	for _, c := range []string{
		"scope = kms:read,kms:sign", "tenant = acme", "key-prefix = acme/", "alg = ed25519",
		"expires = 2031-01-01T00:00:00Z", "expires = 2030-01-02T15:04:05+01:00", "color = red", "scope=kms:read",
	} {
		f.Add(c)
	}
	a := newAuthority(f, testKey)
	base := mint(f, a, Restrictions{Scopes: []Scope{ScopeRead}})
	f.Fuzz(func(t *testing.T, c string) {
		g, err := a.Verify(addRawCaveat(t, base, c), testNow)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatal(err)
			}
			return // expired, or an unknown or malformed caveat
		}
		for _, s := range AllScopes() {
			if s != ScopeRead && g.HasScope(s) {
				t.Fatalf("caveat %q widened the token to %s", c, s)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	a := newAuthority(b, testKey)
	tok := mint(b, a, Restrictions{
		Scopes: []Scope{ScopeSign, ScopeVerify}, Tenant: "acme", KeyPrefix: "acme/payments/",
		Algs: []string{"ed25519", "ml-dsa-65"}, Expires: testLater,
	})
	now := testNow
	req := Request{Scope: ScopeSign, Tenant: "acme", KeyName: keyEd, Alg: "ed25519"}
	b.ReportAllocs()
	for b.Loop() {
		g, err := a.Verify(tok, now)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Authorize(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyAdmin(b *testing.B) {
	a := newAuthority(b, testKey)
	tok := mint(b, a, Restrictions{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Verify(tok, testNow); err != nil {
			b.Fatal(err)
		}
	}
}
