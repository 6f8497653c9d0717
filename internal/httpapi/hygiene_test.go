package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
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
	// The fair-share limiter reads the same token: a request is charged to
	// its token's tenant whatever the case of the scheme.
	tok := h.mint(t, captoken.Restrictions{Tenant: "acme"})
	for _, scheme := range []string{"Bearer ", "bearer ", "BEARER  "} {
		r := httptest.NewRequest("POST", "/v1/kms/sign", nil)
		r.Header.Set("Authorization", scheme+tok)
		if got := requestTenant(h.Auth, r, "POST /v1/kms/sign"); got != "acme" {
			t.Errorf("Authorization %q…: charged to %q, want acme", scheme, got)
		}
	}
}
