package captoken

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"
)

var (
	testKey   = bytes.Repeat([]byte{0x42}, RootKeySize)
	otherKey  = bytes.Repeat([]byte{0x43}, RootKeySize)
	testNow   = time.Date(2030, 1, 2, 15, 4, 5, 0, time.UTC)
	testLater = testNow.Add(time.Hour)
)

func newAuthority(t testing.TB, key []byte) *Authority {
	t.Helper()
	a, err := NewAuthority(key, "ron-kms-test")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mint(t testing.TB, a *Authority, r Restrictions) string {
	t.Helper()
	tok, _, err := a.Mint(r)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func verify(t testing.TB, a *Authority, tok string) *Grant {
	t.Helper()
	g, err := a.Verify(tok, testNow)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return g
}

// withMacaroon decodes tok with the library, lets f change it, and encodes
// it again, bypassing this package's checks.
func withMacaroon(t testing.TB, tok string, f func(m *macaroon.Macaroon)) string {
	t.Helper()
	data, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	f(&m)
	data, err = m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// addRawCaveat adds a first-party caveat without validation, as any token
// holder can.
func addRawCaveat(t testing.TB, tok, cond string) string {
	return withMacaroon(t, tok, func(m *macaroon.Macaroon) {
		if err := m.AddFirstPartyCaveat([]byte(cond)); err != nil {
			t.Fatal(err)
		}
	})
}

// editCaveats rewrites the caveat list of tok through the JSON encoding,
// keeping the signature: what a holder trying to remove or change a caveat
// would do.
func editCaveats(t testing.TB, tok string, f func(cavs []map[string]any) []map[string]any) string {
	t.Helper()
	return withMacaroon(t, tok, func(m *macaroon.Macaroon) {
		js, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := json.Unmarshal(js, &obj); err != nil {
			t.Fatal(err)
		}
		var cavs []map[string]any
		for _, c := range obj["c"].([]any) {
			cavs = append(cavs, c.(map[string]any))
		}
		obj["c"] = f(cavs)
		js, err = json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.UnmarshalJSON(js); err != nil {
			t.Fatal(err)
		}
	})
}

func TestNewAuthority(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewAuthority(make([]byte, n), ""); err == nil {
			t.Errorf("NewAuthority with a %d-byte key succeeded", n)
		}
	}
	key := bytes.Clone(testKey)
	a := newAuthority(t, key)
	tok := mint(t, a, Restrictions{})
	key[0] ^= 1 // the Authority must have copied the key
	verify(t, a, tok)

	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a)} {
		if strings.Contains(s, "BBBB") || strings.Contains(s, "66 66") || strings.Contains(s, "[66") {
			t.Errorf("formatting an Authority shows its key: %s", s)
		}
	}
}

func TestMintVerifyRoundTrip(t *testing.T) {
	a := newAuthority(t, testKey)
	r := Restrictions{
		Scopes:    []Scope{ScopeVerify, ScopeSign, ScopeSign},
		Tenant:    "acme",
		KeyPrefix: "acme/payments/",
		Algs:      []string{"ed25519", "ml-dsa-65"},
		Expires:   testLater.Add(500 * time.Millisecond),
	}
	tok, id, err := a.Mint(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 2*IDSize || strings.Contains(tok, id) {
		t.Errorf("id %q", id)
	}
	if strings.ContainsAny(tok, "=+/\n") {
		t.Errorf("token is not unpadded base64url: %q", tok)
	}
	info, err := Inspect(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{ID: id, Location: "ron-kms-test", Caveats: []string{
		"scope = kms:sign,kms:verify",
		"tenant = acme",
		"key-prefix = acme/payments/",
		"alg = ed25519,ml-dsa-65",
		"expires = 2030-01-02T16:04:05Z",
	}}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("Inspect = %+v, want %+v", info, want)
	}

	g := verify(t, a, tok)
	if g.ID() != id {
		t.Errorf("ID = %q, want %q", g.ID(), id)
	}
	for _, s := range AllScopes() {
		if got, want := g.HasScope(s), s == ScopeSign || s == ScopeVerify; got != want {
			t.Errorf("HasScope(%s) = %v", s, got)
		}
	}
	if tn, ok := g.TenantLimit(); tn != "acme" || !ok {
		t.Errorf("TenantLimit = %q, %v", tn, ok)
	}
	if p, ok := g.KeyPrefixLimit(); p != "acme/payments/" || !ok {
		t.Errorf("KeyPrefixLimit = %q, %v", p, ok)
	}
	if e, ok := g.Expires(); !e.Equal(testLater) || !ok {
		t.Errorf("Expires = %v, %v", e, ok)
	}
	key := "acme/payments/ed25519/0190a7e2-8d7b-7c4e-9a51-6f0e6b1c2d3e"
	if err := g.Authorize(Request{Scope: ScopeSign, Tenant: "acme", KeyName: key, Alg: "ed25519"}); err != nil {
		t.Errorf("Authorize: %v", err)
	}
	if err := g.Authorize(Request{Scope: ScopeRead, Tenant: "acme", KeyName: key, Alg: "ed25519"}); !errors.Is(err, ErrNoCapability) {
		t.Errorf("Authorize without scope: %v", err)
	}

	// Two mints give two identifiers.
	_, id2, err := a.Mint(r)
	if err != nil || id2 == id {
		t.Errorf("second Mint: id %q, %v", id2, err)
	}
}

func TestAdminToken(t *testing.T) {
	a := newAuthority(t, testKey)
	g := verify(t, a, mint(t, a, Restrictions{}))
	for _, s := range AllScopes() {
		if !g.HasScope(s) {
			t.Errorf("admin token lacks %s", s)
		}
	}
	if _, ok := g.TenantLimit(); ok {
		t.Error("admin token has a tenant limit")
	}
	if _, ok := g.Expires(); ok {
		t.Error("admin token expires")
	}
	if !g.Visible("any", "any/thing/ed25519/x", "ed25519") {
		t.Error("admin token hides a key")
	}
	if g.HasScope("kms:bogus") || g.HasScope("") {
		t.Error("HasScope accepts an unknown scope")
	}
}

func TestRestrictionsCaveats(t *testing.T) {
	cavs, err := Restrictions{}.Caveats()
	if err != nil || len(cavs) != 0 {
		t.Errorf("zero Restrictions: %q, %v", cavs, err)
	}
	bad := []Restrictions{
		{Scopes: []Scope{"kms:bogus"}},
		{Scopes: []Scope{ScopeRead, ""}},
		{Tenant: "Acme"},
		{Tenant: "-acme"},
		{Tenant: "_acme"},
		{Tenant: "ac me"},
		{Tenant: strings.Repeat("a", 64)},
		{KeyPrefix: "acme/Pay"},
		{KeyPrefix: "acme payments"},
		{KeyPrefix: strings.Repeat("a", 257)},
		{Algs: []string{""}},
		{Algs: []string{"ed25519", "ML-DSA"}},
		{Algs: []string{"a,b"}},
	}
	for _, r := range bad {
		if _, err := r.Caveats(); !errors.Is(err, ErrInvalidRestrictions) {
			t.Errorf("%+v: err = %v", r, err)
		}
		a := newAuthority(t, testKey)
		if _, _, err := a.Mint(r); !errors.Is(err, ErrInvalidRestrictions) {
			t.Errorf("Mint(%+v): err = %v", r, err)
		}
	}
	good := []Restrictions{
		{Tenant: "a"},
		{Tenant: strings.Repeat("a", 63)},
		{Tenant: "0_-"},
		{KeyPrefix: "a"},
		{Scopes: AllScopes()},
	}
	for _, r := range good {
		if _, err := r.Caveats(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
	cavs, _ = Restrictions{Expires: time.Date(2030, 1, 2, 3, 4, 5, 999, time.FixedZone("x", 3600))}.Caveats()
	if want := []string{"expires = 2030-01-02T02:04:05Z"}; !reflect.DeepEqual(cavs, want) {
		t.Errorf("expires caveat %q, want %q", cavs, want)
	}
}

func TestAttenuate(t *testing.T) {
	a := newAuthority(t, testKey)
	tok, id, err := a.Mint(Restrictions{Scopes: []Scope{ScopeRead, ScopeSign}})
	if err != nil {
		t.Fatal(err)
	}
	att, err := Attenuate(tok, Restrictions{Scopes: []Scope{ScopeRead}, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	g := verify(t, a, att)
	if g.ID() != id {
		t.Errorf("attenuated ID %q, want %q", g.ID(), id)
	}
	if g.HasScope(ScopeSign) || !g.HasScope(ScopeRead) {
		t.Error("attenuation did not drop kms:sign")
	}
	if tn, ok := g.TenantLimit(); tn != "acme" || !ok {
		t.Errorf("TenantLimit = %q, %v", tn, ok)
	}
	// Attenuation cannot widen: adding a scope the token lacks adds nothing.
	att2, err := Attenuate(att, Restrictions{Scopes: []Scope{ScopeSign, ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range AllScopes() {
		if verify(t, a, att2).HasScope(s) {
			t.Errorf("re-attenuated token has %s", s)
		}
	}
	if _, err := Attenuate(att, Restrictions{Tenant: "BAD"}); !errors.Is(err, ErrInvalidRestrictions) {
		t.Errorf("bad restriction: %v", err)
	}
	if _, err := Attenuate("!!", Restrictions{Tenant: "a"}); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("bad token: %v", err)
	}
	same, err := Attenuate(tok, Restrictions{})
	if err != nil || same != tok {
		t.Errorf("empty attenuation changed the token: %v", err)
	}
}

func TestCaveatsCannotBeRemoved(t *testing.T) {
	a := newAuthority(t, testKey)
	tok := mint(t, a, Restrictions{Scopes: []Scope{ScopeRead}})
	att, err := Attenuate(tok, Restrictions{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	verify(t, a, att)

	stripped := editCaveats(t, att, func(c []map[string]any) []map[string]any { return c[:len(c)-1] })
	if stripped == att {
		t.Fatal("stripping changed nothing")
	}
	if info, err := Inspect(stripped); err != nil || len(info.Caveats) != 1 {
		t.Fatalf("stripped token: %+v, %v", info, err)
	}
	if _, err := a.Verify(stripped, testNow); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("token without its last caveat: %v", err)
	}
	stripped = editCaveats(t, att, func(c []map[string]any) []map[string]any { return c[1:] })
	if _, err := a.Verify(stripped, testNow); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("token without its first caveat: %v", err)
	}
	changed := editCaveats(t, att, func(c []map[string]any) []map[string]any {
		c[1]["i"] = "tenant = evil"
		return c
	})
	if _, err := a.Verify(changed, testNow); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("token with a changed caveat: %v", err)
	}
	widened := editCaveats(t, att, func(c []map[string]any) []map[string]any {
		c[0]["i"] = "scope = kms:read,kms:admin"
		return c
	})
	if _, err := a.Verify(widened, testNow); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("token with a widened scope: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	a := newAuthority(t, testKey)
	// A token that differs between base64url and standard base64.
	var tok string
	for !strings.ContainsAny(tok, "-_") {
		tok = mint(t, a, Restrictions{Scopes: []Scope{ScopeRead}})
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := macaroon.New(testKey, []byte("0123456789abcdef"), "", macaroon.V1)
	if err != nil {
		t.Fatal(err)
	}
	v1bin, err := v1.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// A non-minimal varint for the identifier's length (16 → 0x90 0x00).
	idx := bytes.Index(raw, []byte{2, IDSize})
	nonMinimal := append(append(append([]byte(nil), raw[:idx+1]...), 0x80|IDSize, 0), raw[idx+2:]...)
	// An empty location packet before the identifier.
	emptyLoc := withMacaroon(t, tok, func(m *macaroon.Macaroon) { m.SetLocation("") })
	emptyLocRaw, _ := base64.RawURLEncoding.DecodeString(emptyLoc)
	withEmptyLoc := append([]byte{2, 1, 0}, emptyLocRaw[1:]...)
	if len(tok)%4 == 0 {
		t.Fatalf("test needs a token whose length is not a multiple of 4")
	}
	cases := map[string]string{
		"empty":           "",
		"garbage":         "not a token",
		"bad base64":      "AgEM!!!",
		"padded":          base64.URLEncoding.EncodeToString(raw),
		"std":             base64.StdEncoding.EncodeToString(raw),
		"raw std":         strings.NewReplacer("-", "+", "_", "/").Replace(tok),
		"newline":         tok[:10] + "\n" + tok[10:],
		"trailing CRLF":   tok + "\r\n",
		"space":           " " + tok,
		"truncated":       tok[:len(tok)-3],
		"trailing byte":   base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw), 0)),
		"two macaroons":   base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw), raw...)),
		"v1 binary":       base64.RawURLEncoding.EncodeToString(v1bin),
		"json":            base64.RawURLEncoding.EncodeToString([]byte(`{"i":"x","s64":"AAAA"}`)),
		"non-minimal int": base64.RawURLEncoding.EncodeToString(nonMinimal),
		"empty location":  base64.RawURLEncoding.EncodeToString(withEmptyLoc),
		"too long":        strings.Repeat("A", MaxTokenLen+1),
		"one byte":        "Ag",
		"forged":          mint(t, newAuthority(t, otherKey), Restrictions{}),
		"bad signature": withMacaroon(t, tok, func(m *macaroon.Macaroon) {
			m.Bind(bytes.Repeat([]byte{1}, 32))
		}),
		"expired":       mint(t, a, Restrictions{Expires: testNow.Add(-time.Second)}),
		"expires now":   mint(t, a, Restrictions{Expires: testNow}),
		"third party":   withMacaroon(t, tok, func(m *macaroon.Macaroon) { m.AddThirdPartyCaveat([]byte("k"), []byte("id"), "there") }),
		"trailing bits": tok[:len(tok)-1] + string(flipLowBit(tok[len(tok)-1])),
		"attenuated expired": func() string {
			s, err := Attenuate(tok, Restrictions{Expires: testNow.Add(-time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(),
	}
	for name, s := range cases {
		g, err := a.Verify(s, testNow)
		if !errors.Is(err, ErrUnauthenticated) || g != nil {
			t.Errorf("%s: Verify = %v, %v; want ErrUnauthenticated", name, g, err)
		}
		if err != nil && strings.Contains(err.Error(), s) && s != "" {
			t.Errorf("%s: error contains the token", name)
		}
	}
	// Expiry is checked against the given time.
	exp := mint(t, a, Restrictions{Expires: testLater})
	if _, err := a.Verify(exp, testLater.Add(-time.Nanosecond)); err != nil {
		t.Errorf("not yet expired: %v", err)
	}
	if _, err := a.Verify(exp, testLater); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("expired at the instant: %v", err)
	}
	// The earliest of several expires caveats applies.
	exp2, err := Attenuate(mint(t, a, Restrictions{Expires: testLater}), Restrictions{Expires: testNow.Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(exp2, testNow); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("earliest expiry ignored: %v", err)
	}
	exp3, err := Attenuate(mint(t, a, Restrictions{Expires: testNow.Add(-time.Minute)}), Restrictions{Expires: testLater})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(exp3, testNow); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a later expires caveat extended the token: %v", err)
	}
}

// flipLowBit changes a base64url character into the one with the lowest
// bit flipped, which sets a trailing bit on the last character.
func flipLowBit(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i^1]
}

// TestBadCaveatsRefused: a genuine token with a caveat this package does not
// understand is unauthenticated, with a message that names the caveat and
// says what is wrong with it, and never the token.
func TestBadCaveatsRefused(t *testing.T) {
	a := newAuthority(t, testKey)
	tok := mint(t, a, Restrictions{})
	bad := []string{
		"color = red",
		"Scope = kms:read",
		"scope=kms:read",
		"scope  = kms:read",
		"scope =  kms:read",
		"scope = ",
		"scope",
		"",
		"scope = kms:read,",
		"scope = ,kms:read",
		"scope = kms:read, kms:sign",
		"scope = kms:bogus",
		"scope = kms:read kms:sign",
		"tenant = ",
		"tenant = Acme",
		"tenant = acme/x",
		"tenant = " + strings.Repeat("a", 64),
		"key-prefix = Acme",
		"key-prefix = a b",
		"alg = ",
		"alg = ed25519,",
		"alg = ED25519",
		"expires = tomorrow",
		"expires = 2030-01-02",
		"expires = 2030-01-02 15:04:05Z",
		" scope = kms:read",
		"scope = kms:read ",
		"\x00\xff",
		"tenant = acme = x",
	}
	for _, c := range bad {
		s := addRawCaveat(t, tok, c)
		for i := range 2 { // the second time from the cache
			g, err := a.Verify(s, testNow)
			if !errors.Is(err, ErrUnauthenticated) || g != nil {
				t.Errorf("%q, call %d: Verify = %v, %v; want ErrUnauthenticated", c, i, g, err)
				continue
			}
			msg := err.Error()
			if !strings.Contains(msg, "caveat") || !strings.Contains(msg, "malformed") && !strings.Contains(msg, "unknown") {
				t.Errorf("%q: message %q does not say the caveat is malformed or unknown", c, msg)
			}
			if strings.Contains(msg, "scope kms:") || strings.Contains(msg, s) {
				t.Errorf("%q: message %q speaks of a missing scope or holds the token", c, msg)
			}
		}
		// A bad caveat before valid ones still refuses the token.
		s2, err := Attenuate(s, Restrictions{Scopes: []Scope{ScopeRead}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Verify(s2, testNow); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%q then scope: Verify = %v", c, err)
		}
	}
	for c, want := range map[string]string{
		"scope=kms:sign":    `caveat "scope=kms:sign" is malformed: a caveat is "name = value"`,
		"garbage":           `caveat "garbage" is malformed`,
		"scope = kms:bogus": "known scopes separated by commas",
		"color = blue":      `caveat "color = blue" is unknown`,
	} {
		_, err := a.Verify(addRawCaveat(t, tok, c), testNow)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: Verify = %v, want a message containing %q", c, err, want)
		}
	}
	// An expired token with a bad caveat is unauthenticated.
	s := addRawCaveat(t, mint(t, a, Restrictions{Expires: testNow}), "color = red")
	if _, err := a.Verify(s, testNow); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("expired token with a bad caveat: %v", err)
	}
	// Long caveats are shortened in the message.
	long := strings.Repeat("x", 1000)
	if _, err := a.Verify(addRawCaveat(t, tok, long), testNow); err == nil || strings.Contains(err.Error(), long) {
		t.Errorf("long caveat message: %v", err)
	}
}

func TestInspect(t *testing.T) {
	a := newAuthority(t, testKey)
	tok := mint(t, a, Restrictions{Tenant: "acme"})
	third := withMacaroon(t, tok, func(m *macaroon.Macaroon) { m.AddThirdPartyCaveat([]byte("k"), []byte("id"), "there") })
	info, err := Inspect(third)
	if err != nil {
		t.Fatal(err)
	}
	if info.ThirdPartyCaveats != 1 || !reflect.DeepEqual(info.Caveats, []string{"tenant = acme"}) {
		t.Errorf("Inspect = %+v", info)
	}
	// Inspect does not verify.
	forged := mint(t, newAuthority(t, otherKey), Restrictions{})
	if _, err := Inspect(forged); err != nil {
		t.Errorf("Inspect(forged) = %v", err)
	}
	for _, s := range []string{"", "x", "AgEM=", strings.Repeat("A", MaxTokenLen+1)} {
		if _, err := Inspect(s); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Inspect(%q) = %v", s, err)
		}
	}
}
