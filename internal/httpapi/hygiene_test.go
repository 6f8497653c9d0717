package httpapi

import (
	"net/http"
	"strings"
	"testing"
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
