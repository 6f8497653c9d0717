package captoken

import (
	"errors"
	"strings"
	"testing"
)

const (
	keyEd  = "acme/payments/ed25519/0190a7e2-8d7b-7c4e-9a51-6f0e6b1c2d3e"
	keyML  = "acme/payments/ml-dsa-65/0190a7e2-8d7b-7c4e-9a51-6f0e6b1c2d3f"
	keyOps = "acme/ops/ed25519/0190a7e2-8d7b-7c4e-9a51-6f0e6b1c2d40"
	keyZed = "zed/payments/ed25519/0190a7e2-8d7b-7c4e-9a51-6f0e6b1c2d41"
)

// grantOf mints a token with the first restrictions, attenuates it with the
// rest, and verifies it.
func grantOf(t *testing.T, rs ...Restrictions) *Grant {
	t.Helper()
	a := newAuthority(t, testKey)
	tok := mint(t, a, rs[0])
	for _, r := range rs[1:] {
		var err error
		if tok, err = Attenuate(tok, r); err != nil {
			t.Fatal(err)
		}
	}
	return verify(t, a, tok)
}

func TestAuthorize(t *testing.T) {
	signEd := Request{Scope: ScopeSign, Tenant: "acme", KeyName: keyEd, Alg: "ed25519"}
	signML := Request{Scope: ScopeSign, Tenant: "acme", KeyName: keyML, Alg: "ml-dsa-65"}
	readOps := Request{Scope: ScopeRead, Tenant: "acme", KeyName: keyOps, Alg: "ed25519"}
	signZed := Request{Scope: ScopeSign, Tenant: "zed", KeyName: keyZed, Alg: "ed25519"}
	create := Request{Scope: ScopeCreate, Tenant: "acme", KeyName: keyEd, Alg: "ed25519"}

	tests := []struct {
		name   string
		rs     []Restrictions
		req    Request
		reason string // "" means allowed; otherwise a substring of the error
	}{
		{"admin", []Restrictions{{}}, signEd, ""},
		{"admin other tenant", []Restrictions{{}}, signZed, ""},
		{"scope ok", []Restrictions{{Scopes: []Scope{ScopeSign}}}, signEd, ""},
		{"scope missing", []Restrictions{{Scopes: []Scope{ScopeSign}}}, create, `lacks scope "kms:create"`},
		{"unknown scope requested", []Restrictions{{}}, Request{Scope: "kms:bogus"}, `lacks scope "kms:bogus"`},
		{"empty scope requested", []Restrictions{{}}, Request{}, `lacks scope ""`},
		{"scope intersection keeps common", []Restrictions{{Scopes: []Scope{ScopeSign, ScopeRead}}, {Scopes: []Scope{ScopeSign, ScopeAdmin}}}, signEd, ""},
		{"scope intersection drops", []Restrictions{{Scopes: []Scope{ScopeSign, ScopeRead}}, {Scopes: []Scope{ScopeSign, ScopeAdmin}}}, readOps, `lacks scope "kms:read"`},
		{"scope intersection no widening", []Restrictions{{Scopes: []Scope{ScopeRead}}, {Scopes: []Scope{ScopeSign}}}, signEd, `lacks scope "kms:sign"`},
		{"tenant ok", []Restrictions{{Tenant: "acme"}}, signEd, ""},
		{"tenant other", []Restrictions{{Tenant: "acme"}}, signZed, `tenant "acme", not "zed"`},
		{"tenant empty request", []Restrictions{{Tenant: "acme"}}, Request{Scope: ScopeRead}, `limited to tenant "acme"`},
		{"tenant same twice", []Restrictions{{Tenant: "acme"}, {Tenant: "acme"}}, signEd, ""},
		{"tenant conflict", []Restrictions{{Tenant: "acme"}, {Tenant: "zed"}}, signEd, "no tenant"},
		{"tenant conflict other", []Restrictions{{Tenant: "acme"}, {Tenant: "zed"}}, signZed, "no tenant"},
		{"tenant conflict empty", []Restrictions{{Tenant: "acme"}, {Tenant: "zed"}}, Request{Scope: ScopeRead}, "no tenant"},
		{"prefix ok", []Restrictions{{KeyPrefix: "acme/payments/"}}, signEd, ""},
		{"prefix outside", []Restrictions{{KeyPrefix: "acme/payments/"}}, readOps, `outside the token's key prefix "acme/payments/"`},
		{"prefix empty key", []Restrictions{{KeyPrefix: "acme/"}}, Request{Scope: ScopeRead, Tenant: "acme"}, "key prefix"},
		{"prefix is not a tenant", []Restrictions{{KeyPrefix: "acme"}}, Request{Scope: ScopeSign, Tenant: "acmecorp", KeyName: "acmecorp/p/ed25519/u", Alg: "ed25519"}, ""},
		{"prefix narrowed", []Restrictions{{KeyPrefix: "acme/"}, {KeyPrefix: "acme/payments/ed"}}, signEd, ""},
		{"prefix narrowed excludes", []Restrictions{{KeyPrefix: "acme/"}, {KeyPrefix: "acme/payments/ed"}}, signML, `key prefix "acme/payments/ed"`},
		{"prefix wider second", []Restrictions{{KeyPrefix: "acme/payments/"}, {KeyPrefix: "acme/"}}, readOps, `key prefix "acme/payments/"`},
		{"prefix conflict", []Restrictions{{KeyPrefix: "acme/payments/"}, {KeyPrefix: "acme/ops/"}}, readOps, "no key"},
		{"alg ok", []Restrictions{{Algs: []string{"ml-dsa-65", "ed25519"}}}, signEd, ""},
		{"alg other", []Restrictions{{Algs: []string{"ml-dsa-65"}}}, signEd, `algorithm "ed25519"`},
		{"alg prefix of listed", []Restrictions{{Algs: []string{"ml-dsa-65"}}}, Request{Scope: ScopeSign, Tenant: "acme", KeyName: keyML, Alg: "ml-dsa"}, `algorithm "ml-dsa"`},
		{"alg empty request", []Restrictions{{Algs: []string{"ed25519"}}}, Request{Scope: ScopeSign, Tenant: "acme", KeyName: keyEd}, `algorithm ""`},
		{"alg intersection", []Restrictions{{Algs: []string{"ed25519", "ml-dsa-65"}}, {Algs: []string{"ml-dsa-65", "x25519"}}}, signML, ""},
		{"alg intersection drops", []Restrictions{{Algs: []string{"ed25519", "ml-dsa-65"}}, {Algs: []string{"ml-dsa-65", "x25519"}}}, signEd, `algorithm "ed25519"`},
		{"all kinds ok", []Restrictions{{Scopes: []Scope{ScopeSign}, Tenant: "acme", KeyPrefix: "acme/payments/", Algs: []string{"ed25519"}, Expires: testLater}}, signEd, ""},
		{"all kinds wrong alg", []Restrictions{{Scopes: []Scope{ScopeSign}, Tenant: "acme", KeyPrefix: "acme/payments/", Algs: []string{"ed25519"}, Expires: testLater}}, signML, "algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grantOf(t, tt.rs...)
			err := g.Authorize(tt.req)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Authorize = %v, want nil", err)
				}
				if !g.Visible(tt.req.Tenant, tt.req.KeyName, tt.req.Alg) {
					t.Error("allowed but not Visible")
				}
				return
			}
			if !errors.Is(err, ErrNoCapability) || errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("Authorize = %v, want ErrNoCapability", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("Authorize = %q, want a reason containing %q", err, tt.reason)
			}
			if g.HasScope(tt.req.Scope) && g.Visible(tt.req.Tenant, tt.req.KeyName, tt.req.Alg) {
				t.Error("denied but HasScope and Visible")
			}
		})
	}
}

func TestLimits(t *testing.T) {
	tests := []struct {
		name       string
		rs         []Restrictions
		tenant     string
		tenantOK   bool
		prefix     string
		prefixOK   bool
		visibleEd  bool // keyEd
		visibleZed bool // keyZed
	}{
		{"none", []Restrictions{{}}, "", false, "", false, true, true},
		{"tenant", []Restrictions{{Tenant: "acme"}}, "acme", true, "", false, true, false},
		{"tenant conflict", []Restrictions{{Tenant: "acme"}, {Tenant: "zed"}}, "", true, "", false, false, false},
		{"prefix", []Restrictions{{KeyPrefix: "zed/"}}, "", false, "zed/", true, false, true},
		{"prefix longest", []Restrictions{{KeyPrefix: "zed/"}, {KeyPrefix: "zed/pay"}, {KeyPrefix: "z"}}, "", false, "zed/pay", true, false, true},
		{"prefix conflict", []Restrictions{{KeyPrefix: "zed/"}, {KeyPrefix: "acme/"}}, "", false, "", true, false, false},
		{"alg", []Restrictions{{Algs: []string{"ml-dsa-65"}}}, "", false, "", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := grantOf(t, tt.rs...)
			if tn, ok := g.TenantLimit(); tn != tt.tenant || ok != tt.tenantOK {
				t.Errorf("TenantLimit = %q, %v; want %q, %v", tn, ok, tt.tenant, tt.tenantOK)
			}
			if p, ok := g.KeyPrefixLimit(); p != tt.prefix || ok != tt.prefixOK {
				t.Errorf("KeyPrefixLimit = %q, %v; want %q, %v", p, ok, tt.prefix, tt.prefixOK)
			}
			if v := g.Visible("acme", keyEd, "ed25519"); v != tt.visibleEd {
				t.Errorf("Visible(keyEd) = %v", v)
			}
			if v := g.Visible("zed", keyZed, "ed25519"); v != tt.visibleZed {
				t.Errorf("Visible(keyZed) = %v", v)
			}
		})
	}
}

func TestGrantConcurrent(t *testing.T) {
	a := newAuthority(t, testKey)
	tok := mint(t, a, Restrictions{Scopes: []Scope{ScopeSign}, Tenant: "acme", Algs: []string{"ed25519"}})
	g := verify(t, a, tok)
	done := make(chan bool)
	for range 8 {
		go func() {
			for range 100 {
				g2, err := a.Verify(tok, testNow)
				ok := err == nil && g2.Authorize(Request{Scope: ScopeSign, Tenant: "acme", KeyName: keyEd, Alg: "ed25519"}) == nil &&
					g.Visible("acme", keyEd, "ed25519") && !g.HasScope(ScopeRead)
				if !ok {
					done <- false
					return
				}
			}
			done <- true
		}()
	}
	for range 8 {
		if !<-done {
			t.Error("concurrent use failed")
		}
	}
}
