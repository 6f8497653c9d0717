package captoken

import (
	"testing"
	"time"
)

func TestTenantHint(t *testing.T) {
	a, err := NewAuthority(testKey, "test")
	if err != nil {
		t.Fatal(err)
	}
	unlimited, _, err := a.Mint(Restrictions{})
	if err != nil {
		t.Fatal(err)
	}
	acme, _, err := a.Mint(Restrictions{Tenant: "acme", Scopes: []Scope{ScopeSign}})
	if err != nil {
		t.Fatal(err)
	}
	narrowed, err := Attenuate(unlimited, Restrictions{Tenant: "globex"})
	if err != nil {
		t.Fatal(err)
	}
	// Anyone can attenuate, so anyone can write a hint: it is not
	// verified (and the forged token still fails Verify).
	other, err := NewAuthority(otherKey, "test")
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := other.Mint(Restrictions{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, token, want string }{
		{"unlimited", unlimited, ""},
		{"tenant caveat", acme, "acme"},
		{"attenuated", narrowed, "globex"},
		{"forged", forged, "acme"},
		{"garbage", "not a token!", ""},
		{"empty", "", ""},
	} {
		if got := TenantHint(tc.token); got != tc.want {
			t.Errorf("%s: TenantHint = %q, want %q", tc.name, got, tc.want)
		}
	}
	if _, err := a.Verify(forged, time.Now()); err == nil {
		t.Error("the forged token verified")
	}
}
