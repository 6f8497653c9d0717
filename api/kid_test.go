package api

import (
	"errors"
	"strings"
	"testing"
)

const (
	uuid7 = "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"
	uuid4 = "f47ac10b-58cc-4372-a567-0e02b2c3d479"
)

// validKIDs are key ids (with a version) that every parser must accept and
// give back unchanged.
var validKIDs = []string{
	"acme/payments/ed25519/" + uuid7 + "#v1",
	"acme/payments/ed25519/" + uuid4 + "#v2",
	"a/b/ml-dsa-44/" + uuid7 + "#v10",
	"0/9/ml-dsa-65/" + uuid7 + "#v1234567890",
	"t_1/p-2/ml-dsa-87/" + uuid7 + "#v4294967295",
	"a-/b_/slh-dsa-sha2-128s/" + uuid7 + "#v7",
	"a--/b__/mldsa65-ed25519/" + uuid7 + "#v99",
	"acme/wrap/x25519/" + uuid4 + "#v1",
	"acme/wrap/ml-kem-768/" + uuid4 + "#v1",
	"acme/wrap/mlkem768-x25519/" + uuid4 + "#v1",
	"acme/data/aes-256-gcm/" + uuid4 + "#v1",
	strings.Repeat("t", 63) + "/" + strings.Repeat("p", 63) + "/ed25519/" + uuid7 + "#v1",
	"acme/payments/ed25519/00000000-0000-4000-8000-000000000000#v1",
	"acme/payments/ed25519/ffffffff-ffff-7fff-bfff-ffffffffffff#v1",
	"acme/payments/ed25519/01234567-89ab-4cde-9f01-23456789abcd#v1",
	"acme/payments/ed25519/01234567-89ab-4cde-af01-23456789abcd#v1",
}

// validNames are key names (no version).
var validNames = []string{
	"acme/payments/ed25519/" + uuid7,
	"acme/payments/ed25519/" + uuid4,
	"x/y/aes-256-gcm/" + uuid4,
	strings.Repeat("t", 63) + "/" + strings.Repeat("p", 63) + "/slh-dsa-sha2-128s/" + uuid7,
}

// invalidRefs are rejected by every parser, with or without a version.
var invalidRefs = []struct{ name, s string }{
	{"empty", ""},
	{"only slashes", "///"},
	{"only version", "#v1"},
	{"three segments", "acme/ed25519/" + uuid7 + "#v1"},
	{"five segments", "acme/payments/extra/ed25519/" + uuid7 + "#v1"},
	{"trailing slash", "acme/payments/ed25519/" + uuid7 + "/"},
	{"leading slash", "/acme/payments/ed25519/" + uuid7},
	{"empty tenant", "/payments/ed25519/" + uuid7 + "#v1"},
	{"empty purpose", "acme//ed25519/" + uuid7 + "#v1"},
	{"empty alg", "acme/payments//" + uuid7 + "#v1"},
	{"empty uuid", "acme/payments/ed25519/#v1"},
	{"upper-case tenant", "Acme/payments/ed25519/" + uuid7 + "#v1"},
	{"upper-case purpose", "acme/Payments/ed25519/" + uuid7 + "#v1"},
	{"upper-case alg", "acme/payments/Ed25519/" + uuid7 + "#v1"},
	{"upper-case uuid", "acme/payments/ed25519/" + strings.ToUpper(uuid7) + "#v1"},
	{"upper-case hex digit in uuid", "acme/payments/ed25519/0190A5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b#v1"},
	{"upper-case V", "acme/payments/ed25519/" + uuid7 + "#V1"},
	{"tenant leading dash", "-acme/payments/ed25519/" + uuid7 + "#v1"},
	{"tenant leading underscore", "_acme/payments/ed25519/" + uuid7 + "#v1"},
	{"purpose leading dash", "acme/-payments/ed25519/" + uuid7 + "#v1"},
	{"purpose leading underscore", "acme/_payments/ed25519/" + uuid7 + "#v1"},
	{"tenant with dot", "ac.me/payments/ed25519/" + uuid7 + "#v1"},
	{"tenant with space", "ac me/payments/ed25519/" + uuid7 + "#v1"},
	{"tenant with colon", "acme:1/payments/ed25519/" + uuid7 + "#v1"},
	{"tenant non-ascii", "acmé/payments/ed25519/" + uuid7 + "#v1"},
	{"tenant NUL", "ac\x00me/payments/ed25519/" + uuid7 + "#v1"},
	{"purpose with plus", "acme/pay+ments/ed25519/" + uuid7 + "#v1"},
	{"purpose with percent", "acme/pay%2Fments/ed25519/" + uuid7 + "#v1"},
	{"64-char tenant", strings.Repeat("t", 64) + "/payments/ed25519/" + uuid7 + "#v1"},
	{"64-char purpose", "acme/" + strings.Repeat("p", 64) + "/ed25519/" + uuid7 + "#v1"},
	{"unknown alg", "acme/payments/rsa-2048/" + uuid7 + "#v1"},
	{"alg with suffix", "acme/payments/ed25519x/" + uuid7 + "#v1"},
	{"alg with space", "acme/payments/ed25519 /" + uuid7 + "#v1"},
	{"alg underscore", "acme/payments/ml_dsa_65/" + uuid7 + "#v1"},
	{"uuid v1", "acme/payments/ed25519/0190a5b2-7c3d-1e4f-8a1b-2c3d4e5f6a7b#v1"},
	{"uuid v3", "acme/payments/ed25519/0190a5b2-7c3d-3e4f-8a1b-2c3d4e5f6a7b#v1"},
	{"uuid v5", "acme/payments/ed25519/0190a5b2-7c3d-5e4f-8a1b-2c3d4e5f6a7b#v1"},
	{"uuid v6", "acme/payments/ed25519/0190a5b2-7c3d-6e4f-8a1b-2c3d4e5f6a7b#v1"},
	{"uuid v8", "acme/payments/ed25519/0190a5b2-7c3d-8e4f-8a1b-2c3d4e5f6a7b#v1"},
	{"nil uuid", "acme/payments/ed25519/00000000-0000-0000-0000-000000000000#v1"},
	{"max uuid", "acme/payments/ed25519/ffffffff-ffff-ffff-ffff-ffffffffffff#v1"},
	{"uuid NCS variant", "acme/payments/ed25519/0190a5b2-7c3d-7e4f-0a1b-2c3d4e5f6a7b#v1"},
	{"uuid NCS variant 7", "acme/payments/ed25519/0190a5b2-7c3d-7e4f-7a1b-2c3d4e5f6a7b#v1"},
	{"uuid Microsoft variant", "acme/payments/ed25519/0190a5b2-7c3d-7e4f-ca1b-2c3d4e5f6a7b#v1"},
	{"uuid future variant", "acme/payments/ed25519/0190a5b2-7c3d-7e4f-ea1b-2c3d4e5f6a7b#v1"},
	{"uuid without dashes", "acme/payments/ed25519/0190a5b27c3d7e4f8a1b2c3d4e5f6a7b#v1"},
	{"uuid dashes moved", "acme/payments/ed25519/0190a5b-27c3d-7e4f-8a1b-2c3d4e5f6a7b#v1"},
	{"uuid braces", "acme/payments/ed25519/{" + uuid7 + "}#v1"},
	{"uuid urn", "acme/payments/ed25519/urn:uuid:" + uuid7 + "#v1"},
	{"uuid short", "acme/payments/ed25519/" + uuid7[:35] + "#v1"},
	{"uuid long", "acme/payments/ed25519/" + uuid7 + "0#v1"},
	{"uuid non-hex", "acme/payments/ed25519/0190a5g2-7c3d-7e4f-8a1b-2c3d4e5f6a7b#v1"},
	{"uuid underscores", "acme/payments/ed25519/0190a5b2_7c3d_7e4f_8a1b_2c3d4e5f6a7b#v1"},
	{"version v0", "acme/payments/ed25519/" + uuid7 + "#v0"},
	{"version v00", "acme/payments/ed25519/" + uuid7 + "#v00"},
	{"version v01", "acme/payments/ed25519/" + uuid7 + "#v01"},
	{"version v", "acme/payments/ed25519/" + uuid7 + "#v"},
	{"version without v", "acme/payments/ed25519/" + uuid7 + "#1"},
	{"version negative", "acme/payments/ed25519/" + uuid7 + "#v-1"},
	{"version plus", "acme/payments/ed25519/" + uuid7 + "#v+1"},
	{"version overflow", "acme/payments/ed25519/" + uuid7 + "#v4294967296"},
	{"version huge", "acme/payments/ed25519/" + uuid7 + "#v99999999999999999999999"},
	{"version hex", "acme/payments/ed25519/" + uuid7 + "#v0x1"},
	{"version with space", "acme/payments/ed25519/" + uuid7 + "#v 1"},
	{"version trailing space", "acme/payments/ed25519/" + uuid7 + "#v1 "},
	{"version underscore", "acme/payments/ed25519/" + uuid7 + "#v1_000"},
	{"version fraction", "acme/payments/ed25519/" + uuid7 + "#v1.0"},
	{"version full-width digit", "acme/payments/ed25519/" + uuid7 + "#v１"},
	{"version vv1", "acme/payments/ed25519/" + uuid7 + "#vv1"},
	{"trailing hash", "acme/payments/ed25519/" + uuid7 + "#"},
	{"two versions", "acme/payments/ed25519/" + uuid7 + "#v1#v2"},
	{"version then slash", "acme/payments/ed25519/" + uuid7 + "#v1/x"},
	{"version in the middle", "acme/payments#v1/ed25519/" + uuid7},
	{"leading space", " acme/payments/ed25519/" + uuid7 + "#v1"},
	{"trailing newline", "acme/payments/ed25519/" + uuid7 + "#v1\n"},
	{"query suffix", "acme/payments/ed25519/" + uuid7 + "?v=1"},
	{"over 256 bytes", strings.Repeat("a/", 200) + uuid7},
}

func TestParseRoundTrip(t *testing.T) {
	for _, s := range validKIDs {
		k, err := ParseKID(s)
		if err != nil {
			t.Errorf("ParseKID(%q): %v", s, err)
			continue
		}
		if got := k.String(); got != s {
			t.Errorf("ParseKID(%q).String() = %q", s, got)
		}
		if k.Version == 0 {
			t.Errorf("ParseKID(%q) has version 0", s)
		}
		r, err := ParseKeyRef(s)
		if err != nil || r != k {
			t.Errorf("ParseKeyRef(%q) = %+v, %v; want %+v", s, r, err, k)
		}
		if _, err := ParseKeyName(s); !errors.Is(err, ErrBadKID) {
			t.Errorf("ParseKeyName(%q) = %v, want ErrBadKID (it carries a version)", s, err)
		}
		// The name part parses as a key name and gives back the same KeyName.
		name := s[:strings.IndexByte(s, '#')]
		n, err := ParseKeyName(name)
		if err != nil || n != k.KeyName || n.String() != name {
			t.Errorf("ParseKeyName(%q) = %+v, %v; want %+v", name, n, err, k.KeyName)
		}
		if got := n.Version(k.Version).String(); got != s {
			t.Errorf("KeyName.Version(%d).String() = %q, want %q", k.Version, got, s)
		}
	}
	for _, s := range validNames {
		n, err := ParseKeyName(s)
		if err != nil {
			t.Errorf("ParseKeyName(%q): %v", s, err)
			continue
		}
		if got := n.String(); got != s {
			t.Errorf("ParseKeyName(%q).String() = %q", s, got)
		}
		r, err := ParseKeyRef(s)
		if err != nil || r.Version != 0 || r.KeyName != n || r.String() != s {
			t.Errorf("ParseKeyRef(%q) = %+v, %v; want version 0 and %+v", s, r, err, n)
		}
		if _, err := ParseKID(s); !errors.Is(err, ErrBadKID) {
			t.Errorf("ParseKID(%q) = %v, want ErrBadKID (no version)", s, err)
		}
	}
}

func TestParseFields(t *testing.T) {
	k, err := ParseKID("t_1/p-2/ml-dsa-87/" + uuid7 + "#v4294967295")
	if err != nil {
		t.Fatal(err)
	}
	want := KID{KeyName: KeyName{Tenant: "t_1", Purpose: "p-2", Alg: "ml-dsa-87", UUID: uuid7}, Version: 4294967295}
	if k != want {
		t.Errorf("got %+v, want %+v", k, want)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range invalidRefs {
		t.Run(tc.name, func(t *testing.T) {
			if k, err := ParseKeyRef(tc.s); !errors.Is(err, ErrBadKID) {
				t.Errorf("ParseKeyRef(%q) = %+v, %v; want ErrBadKID", tc.s, k, err)
			}
			if k, err := ParseKID(tc.s); !errors.Is(err, ErrBadKID) {
				t.Errorf("ParseKID(%q) = %+v, %v; want ErrBadKID", tc.s, k, err)
			}
			if n, err := ParseKeyName(tc.s); !errors.Is(err, ErrBadKID) {
				t.Errorf("ParseKeyName(%q) = %+v, %v; want ErrBadKID", tc.s, n, err)
			}
		})
	}
}

// TestParseErrorsBounded checks that an error never echoes a long hostile
// input whole.
func TestParseErrorsBounded(t *testing.T) {
	for _, s := range []string{
		strings.Repeat("A", 250),
		"acme/payments/" + strings.Repeat("x", 200) + "/" + uuid7,
		"acme/payments/ed25519/" + uuid7 + "#v" + strings.Repeat("9", 200),
		strings.Repeat("é", 120),
	} {
		_, err := ParseKeyRef(s)
		if err == nil {
			t.Fatalf("ParseKeyRef accepted %q", s)
		}
		if len(err.Error()) > 300 {
			t.Errorf("error for a %d-byte input is %d bytes long: %q", len(s), len(err.Error()), err)
		}
	}
}

func TestCheckLabel(t *testing.T) {
	for _, s := range []string{"a", "0", "a-b", "a_b", "a-", "a_", strings.Repeat("z", 63)} {
		if err := CheckLabel("tenant", s); err != nil {
			t.Errorf("CheckLabel(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", "-a", "_a", "A", "a.b", "a/b", "a#b", "a b", strings.Repeat("z", 64), "é"} {
		if err := CheckLabel("tenant", s); err == nil {
			t.Errorf("CheckLabel(%q) = nil, want an error", s)
		}
	}
}

func TestKnownAlg(t *testing.T) {
	for _, a := range []string{"ed25519", "ml-dsa-44", "ml-dsa-65", "ml-dsa-87", "slh-dsa-sha2-128s",
		"mldsa65-ed25519", "x25519", "ml-kem-768", "mlkem768-x25519", "aes-256-gcm"} {
		if !KnownAlg(a) {
			t.Errorf("KnownAlg(%q) = false", a)
		}
	}
	for _, a := range []string{"", "ED25519", "rsa", "ml-dsa", "ed448"} {
		if KnownAlg(a) {
			t.Errorf("KnownAlg(%q) = true", a)
		}
	}
}
