package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// TestOpIDOneRule: every request that carries an op_id (create, rotate,
// import, sign and each sign batch item) holds it to the rule create and
// rotate always had: at most api.MaxOpIDLen bytes of printable ASCII
// without spaces. Sign used to take spaces and control characters.
func TestOpIDOneRule(t *testing.T) {
	h := newHarness(t)
	kid := h.createKey(t, "acme", "opid", "ed25519")
	name := strings.TrimSuffix(kid, "#v1")
	payload := strings.Repeat("ab", 32)
	edPub := api.EncodeB64(unhex(t, "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"))

	routes := []struct {
		name string
		path string
		body func(opID string) string
		ok   int
	}{
		{"create", "/v1/kms/keys", func(o string) string {
			return js(api.CreateKeyRequest{Tenant: "acme", Purpose: "opid", Alg: "ed25519", OpID: o})
		}, 201},
		{"rotate", "/v1/kms/keys/" + name + "/rotate", func(o string) string { return js(api.RotateRequest{OpID: o}) }, 200},
		{"import", "/v1/kms/keys/import", func(o string) string {
			return js(api.ImportKeyRequest{Tenant: "acme", Purpose: "opid", Alg: "ed25519", PublicKeyB64: edPub, OpID: o})
		}, 201},
		{"sign", "/v1/kms/sign", func(o string) string { return js(api.SignRequest{KID: name, PayloadB3: payload, OpID: o}) }, 200},
		{"sign-batch item", "/v1/kms/sign/batch", func(o string) string {
			return js(api.SignBatchRequest{Items: []api.SignRequest{{KID: name, PayloadB3: payload}, {KID: name, PayloadB3: payload, OpID: o}}})
		}, 200},
	}
	good := []string{"op-1", "~!#$%&'()*+,-./:;<=>?@[\\]^_`{|}", strings.Repeat("a", api.MaxOpIDLen)}
	bad := map[string]string{
		"space":             "a b",
		"tab":               "a\tb",
		"newline":           "a\nb",
		"NUL":               "a\x00b",
		"DEL":               "a\x7fb",
		"leading space":     " x-1",
		"non-ASCII":         "opé",
		"one byte too long": strings.Repeat("a", api.MaxOpIDLen+1),
	}
	for i, rt := range routes {
		for _, g := range good {
			// One op_id per route: a replay would answer the first request.
			o := fmt.Sprintf("%d-%s", i, g)[:min(len(g)+2, api.MaxOpIDLen)]
			r := h.do(t, "POST", rt.path, h.Admin, rt.body(o))
			if r.Status != rt.ok {
				t.Errorf("%s with op_id %q: %d %s", rt.name, o, r.Status, r.Raw)
			}
			if rt.name == "sign-batch item" {
				checkBatchSlots(t, r, []api.Code{"", ""})
			}
		}
	}
	before := h.snapshot(t)
	for _, rt := range routes {
		for what, o := range bad {
			t.Run(rt.name+"/"+what, func(t *testing.T) {
				r := h.do(t, "POST", rt.path, h.Admin, rt.body(o))
				msg := ""
				if rt.name == "sign-batch item" {
					if r.Status != http.StatusOK {
						t.Fatalf("status %d, want 200 with the item refused: %.300s", r.Status, r.Raw)
					}
					checkBatchSlots(t, r, []api.Code{"", api.CodeBadRequest})
					var out api.SignBatchResponse
					r.decodeInto(t, &out)
					if out.Results[1].Error == nil {
						t.Fatal("the item was signed")
					}
					msg = out.Results[1].Error.Message
				} else {
					if r.Status != http.StatusBadRequest {
						t.Fatalf("status %d, want 400: %.300s", r.Status, r.Raw)
					}
					checkEnvelope(t, r, api.CodeBadRequest)
					msg, _ = r.JSON["error"].(map[string]any)["message"].(string)
				}
				if !strings.Contains(msg, "op_id") || strings.Contains(msg, o) {
					t.Errorf("message %q: should name op_id and not echo it", msg)
				}
			})
		}
	}
	if after := h.snapshot(t); !before.equal(after) {
		t.Errorf("refused op_ids changed the store: %v", before.diff(after))
	}
}
