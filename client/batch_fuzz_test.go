package client

import (
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// FuzzBatchAnswers: a batch answer from the server, whatever its bytes,
// gives one answer per item or an error, and every answer is exactly one of
// a result, an error or "ask again".
func FuzzBatchAnswers(f *testing.F) {
	kid := "acme/pay/ed25519/0190b1d6-3f3c-7c3e-9a4e-1f2a3b4c5d6e#v2"
	sig := `{"alg":"ed25519","signature_b64":"` + api.EncodeB64(make([]byte, 64)) + `"}`
	for _, s := range []string{
		// As the server answers (api's AppendJSON).
		`{"results":[{"kid":"` + kid + `","sigs":[` + sig + `]},{"error":{"code":"NotFound","message":"keystore: not found"}}]}`,
		`{"all_ok":false,"results":[{"ok":true},{"ok":false}]}`,
		`{"all_ok":false,"results":[{"error":{"code":"BadRequest","message":"bad"}},{"ok":true}],"cache_age_ms":12}`,
		`{"results":null}`, `{"results":[]}`, `[]`, ``, `{"results":[{"error":null}]}`,
	} {
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, body []byte, n uint8) {
		k := int(n%8) + 1
		signs := make([]api.SignRequest, k)
		verifies := make([]api.VerifyRequest, k)
		for i := range verifies {
			signs[i] = api.SignRequest{KID: kid}
			verifies[i] = api.VerifyRequest{KID: kid, Sigs: []api.Signature{{Alg: "ed25519"}}}
		}
		if as, err := signKind.answers(body, signs, "id"); err == nil {
			if len(as) != k {
				t.Fatalf("%d sign answers for %d items", len(as), k)
			}
			for _, a := range as {
				if a.again || (a.res == nil) || (a.err != nil && a.err.(*Error).Status == 0) {
					t.Fatalf("sign answer %+v", a)
				}
			}
		}
		if as, err := verifyKind.answers(body, verifies, "id"); err == nil {
			if len(as) != k {
				t.Fatalf("%d verify answers for %d items", len(as), k)
			}
			for _, a := range as {
				if a.again == (a.res != nil) {
					t.Fatalf("verify answer %+v", a)
				}
			}
		}
	})
}
