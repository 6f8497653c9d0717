package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// TestCorrIDEchoedOnlyWhenSafe: X-Corr-Id is echoed when it is 1 to 128
// bytes of printable ASCII, and otherwise dropped (the request still runs):
// it used to be echoed with any bytes, non-UTF-8 ones included.
func TestCorrIDEchoedOnlyWhenSafe(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, corr string
		echoed     bool
	}{
		{"plain", "corr-1", true},
		{"inner space", "order 42", true},
		{"every printable", "!\"#$%&'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~", true},
		{"128 bytes", strings.Repeat("c", 128), true},
		{"129 bytes", strings.Repeat("c", 129), false},
		{"not UTF-8", "corr-\xff\xfe", false},
		{"overlong", "corr-\xc0\xaf", false},
		{"UTF-8 but not ASCII", "corr-é", false},
		{"tab", "corr\t1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(t, "GET", "/v1/kms/audit/key", h.Admin, nil, "X-Corr-Id", tc.corr)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Raw)
			}
			got, has := r.Header.Get("X-Corr-Id"), len(r.Header.Values("X-Corr-Id")) > 0
			if tc.echoed && got != tc.corr || !tc.echoed && has {
				t.Errorf("X-Corr-Id %q answered with %q (present %v), want echoed = %v", tc.corr, got, has, tc.echoed)
			}
		})
	}
}

// TestBearerSchemeAnyCase: the scheme name of Authorization is
// case-insensitive (RFC 9110 §11.1, SPEC §5), and one or more spaces
// separate it from the token (RFC 9110 §11.4).
func TestBearerSchemeAnyCase(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		auth string
		ok   bool
	}{
		{"Bearer " + h.Admin, true},
		{"bearer " + h.Admin, true},
		{"BEARER " + h.Admin, true},
		{"bEaReR " + h.Admin, true},
		{"Bearer   " + h.Admin, true},
		{"Bearer" + h.Admin, false},
		{"Bearer\t" + h.Admin, false},
		{"Bearer: " + h.Admin, false},
		{"Bearers " + h.Admin, false},
		{"Token " + h.Admin, false},
		{"bearer", false},
		{h.Admin, false},
	} {
		r := h.do(t, "GET", "/v1/kms/keys", "", nil, "Authorization", tc.auth)
		want := http.StatusOK
		if !tc.ok {
			want = http.StatusUnauthorized
		}
		if r.Status != want {
			t.Errorf("Authorization %.12q…: %d, want %d: %.200s", tc.auth, r.Status, want, r.Raw)
		}
		if !tc.ok {
			checkEnvelope(t, r, api.CodeUnauthenticated)
		}
	}
}

// TestUnknownRoute: a path that names no route is 404 NotFound with a
// message and a hint about routes, not about key ids and versions.
func TestUnknownRoute(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct{ method, path, shown string }{
		{"GET", "/nope", "/nope"},
		{"GET", "/v1/kms/nope", "/v1/kms/nope"},
		{"POST", "/v1/kms/nope", "/v1/kms/nope"},
		{"GET", "/v1/kms", "/v1/kms"},
		{"GET", "/v1/kms/", "/v1/kms/"},
		{"GET", "/v1/kms/keys/a/b", "/v1/kms/keys/a/b"},
		{"GET", "/v1/kms/keys/a/b/c/d/e/f", "/v1/kms/keys/a/b/c/d/e/f"},
		{"POST", "/v1/kms/keys/a/b/c/d/e/f", "/v1/kms/keys/a/b/c/d/e/f"},
		{"GET", "/v1/kms/n%FFpe", "/v1/kms/n%FFpe"},
		{"GET", "/v1/kms/" + strings.Repeat("x", 100), "/v1/kms/" + strings.Repeat("x", 56) + "…"},
	} {
		r := h.do(t, tc.method, tc.path, h.Admin, nil)
		if r.Status != http.StatusNotFound {
			t.Errorf("%s %s: %d, want 404: %.200s", tc.method, tc.path, r.Status, r.Raw)
			continue
		}
		checkEnvelope(t, r, api.CodeNotFound)
		e, _ := r.JSON["error"].(map[string]any)
		msg, _ := e["message"].(string)
		hint, _ := e["hint"].(string)
		if want := "no route " + tc.method + " " + tc.shown + ": see the API under /v1/kms (SPEC §4)"; msg != want {
			t.Errorf("%s %s: message %q, want %q", tc.method, tc.path, msg, want)
		}
		if strings.Contains(hint, "key id") || !strings.Contains(hint, "/v1/kms") {
			t.Errorf("%s %s: hint %q is not about routes", tc.method, tc.path, hint)
		}
	}
	// A known route still answers its own NotFound, with the key hint.
	r := h.do(t, "GET", "/v1/kms/keys/acme/p/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", h.Admin, nil)
	checkEnvelope(t, r, api.CodeNotFound)
	if hint, _ := r.JSON["error"].(map[string]any)["hint"].(string); !strings.Contains(hint, "key id") {
		t.Errorf("an unknown key: hint %q", hint)
	}
}
