package api

import (
	"strings"
	"testing"
)

// TestDecodeCheckedErrors: the self-decoding request types describe a body
// they refuse by where and what, and never quote the body.
func TestDecodeCheckedErrors(t *testing.T) {
	for _, tc := range []struct {
		body, want string
		v          interface{ UnmarshalCheckedJSON([]byte) error }
	}{
		{`{"kid":1}`, "field kid must be string", new(SignRequest)},
		{`{"items":[{},{"sigs":[{"alg":5}]}]}`, "field items.sigs.alg must be string", new(VerifyBatchRequest)},
		{`{"items":{}}`, "field items must be ", new(SignBatchRequest)},
		{`{"kid":"a","SECRET-NAME":"x"}`, "unknown field (names are case-sensitive)", new(SignRequest)},
		{`{"kid":"a","Kid":"x"}`, "unknown field (names are case-sensitive)", new(SignRequest)},
		{`{"policy":{"mode":"or","mode":"and"}}`, "a member name is repeated", new(VerifyRequest)},
		{`{"kid":"SECRET" x}`, "syntax error at offset 16", new(SignRequest)},
		{`{"kid":"SECRET"`, "unexpected EOF", new(SignRequest)},
		{`{"kid":"SECRET"} {}`, "syntax error at offset ", new(SignRequest)},
	} {
		err := tc.v.UnmarshalCheckedJSON([]byte(tc.body))
		if err == nil {
			t.Errorf("%s: accepted", tc.body)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %q, want %q", tc.body, err, tc.want)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: the error %q quotes the body", tc.body, err)
		}
	}
}
