package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMessageRoundTrip: the empty message, no message and a message each
// survive encoding and decoding, for single and batch requests, and only
// the empty message is written as "message_b64":"".
func TestMessageRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sign      SignRequest
		wantGiven bool
		wantJSON  string // must appear, or must not when empty
	}{
		{"empty message", SignRequest{KID: "k"}.WithMessage(nil), true, `"message_b64":""`},
		{"no message", SignRequest{KID: "k", PayloadB3: "00"}, false, ""},
		{"a message", SignRequest{KID: "k"}.WithMessage([]byte("hi")), true, `"message_b64":"aGk="`},
	} {
		verify := VerifyRequest{KID: "k", Sigs: []Signature{{Alg: "ed25519", SignatureB64: "AA=="}}}
		if tc.sign.MessageGiven() {
			verify = verify.WithMessage(mustB64(t, tc.sign.MessageB64))
		}
		b, err := json.Marshal(SignBatchRequest{Items: []SignRequest{tc.sign}})
		if err != nil {
			t.Fatal(err)
		}
		vb, err := json.Marshal(VerifyBatchRequest{Items: []VerifyRequest{verify}})
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range []string{string(b), string(vb)} {
			if tc.wantJSON != "" && !strings.Contains(enc, tc.wantJSON) {
				t.Errorf("%s: %s lacks %s", tc.name, enc, tc.wantJSON)
			}
			if tc.wantJSON == "" && strings.Contains(enc, "message_b64") {
				t.Errorf("%s: %s has a message_b64", tc.name, enc)
			}
		}
		var sb SignBatchRequest
		var vbr VerifyBatchRequest
		if err := json.Unmarshal(b, &sb); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(vb, &vbr); err != nil {
			t.Fatal(err)
		}
		if got := sb.Items[0]; got.MessageGiven() != tc.wantGiven || got != tc.sign {
			t.Errorf("%s: sign batch item decoded as %+v, want %+v", tc.name, got, tc.sign)
		}
		if got := vbr.Items[0]; got.MessageGiven() != tc.wantGiven || got.MessageB64 != verify.MessageB64 {
			t.Errorf("%s: verify batch item decoded as %+v", tc.name, got)
		}
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := DecodeB64("message_b64", s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
