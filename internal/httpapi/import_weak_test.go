package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/testvectors"
)

// TestImportRefusesWeakPublicKeys: a verify-only import of a public key
// under which signatures can be made without a private key answers 400
// BadRequest, says why, and stores nothing: every encoding of the eight
// Ed25519 points of small order that the CCTV vectors list (canonical and
// not, 14 in all), 32 bytes that are no curve point, and the all-zero
// ML-DSA-44, -65 and -87 keys. A sound key still imports.
func TestImportRefusesWeakPublicKeys(t *testing.T) {
	h := newHarness(t)
	refused := func(t *testing.T, alg string, pub []byte, why string) {
		t.Helper()
		before := h.snapshot(t)
		r := h.do(t, "POST", "/v1/kms/keys/import", h.Admin, api.ImportKeyRequest{Tenant: "acme", Purpose: "weak", Alg: alg, PublicKeyB64: api.EncodeB64(pub)})
		checkEnvelope(t, r, api.CodeBadRequest)
		var e api.Error
		r.decodeInto(t, &e)
		if !strings.Contains(e.Err.Message, why) {
			t.Errorf("message %q does not say %q", e.Err.Message, why)
		}
		if after := h.snapshot(t); !before.equal(after) {
			t.Errorf("a refused import changed the store: %v", before.diff(after))
		}
	}
	small := testvectors.SmallOrderEd25519Keys(t)
	if len(small) != 14 {
		t.Fatalf("%d small-order encodings, want 14", len(small))
	}
	for _, pub := range small {
		t.Run("ed25519 "+pub, func(t *testing.T) { refused(t, "ed25519", unhex(t, pub), "small order") })
	}
	t.Run("ed25519 not a point", func(t *testing.T) {
		pub := make([]byte, 32)
		pub[0] = 2 // y = 2 is on no point of the curve
		refused(t, "ed25519", pub, "not the encoding of a curve point")
	})
	for _, alg := range []string{"ml-dsa-44", "ml-dsa-65", "ml-dsa-87"} {
		t.Run(alg+" all zero", func(t *testing.T) {
			n := map[string]int{"ml-dsa-44": 1312, "ml-dsa-65": 1952, "ml-dsa-87": 2592}[alg]
			refused(t, alg, make([]byte, n), "t1 = 0")
		})
	}
	t.Run("sound key", func(t *testing.T) {
		res := h.importOK(t, api.ImportKeyRequest{Tenant: "acme", Purpose: "sound", Alg: "ed25519",
			PublicKeyB64: api.EncodeB64(unhex(t, testvectors.RFC8032[0].Pub))})
		if !res.Key.VerifyOnly {
			t.Errorf("import answered %+v", res)
		}
		r := h.do(t, "GET", "/v1/kms/keys/"+res.Key.Name, h.Admin, nil)
		if r.Status != http.StatusOK {
			t.Errorf("GET the imported key: %d %s", r.Status, r.Raw)
		}
	})
}
