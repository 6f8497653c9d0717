package httpapi

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// hostileKeyRows is the rows of the key routes (create, list, get, rotate)
// and bad kids in bodies and paths.
func hostileKeyRows(t *testing.T, f *hostileFixture) []hostileRow {
	h, kidA1, nameA, nameB, uuidA, absent := f.h, f.kidA1, f.nameA, f.nameB, f.uuidA, f.absent
	payload, sig, nameWB, nameEB, badKIDs, otherTenant := f.payload, f.sig, f.nameWB, f.nameEB, f.badKIDs, f.otherTenant
	sign, verify, create, rotate, get := f.sign, f.verify, f.create, f.rotate, f.get
	list, signBatch, verifyBatch, config, version := f.list, f.signBatch, f.verifyBatch, f.config, f.version
	var rows []hostileRow
	add := func(r ...hostileRow) { rows = append(rows, r...) }

	// Bad kids, in bodies and in paths.
	for what, k := range badKIDs {
		add(
			sign("bad kid: "+what, api.SignRequest{KID: k, PayloadB3: payload}, 400, api.CodeBadRequest),
			verify("bad kid: "+what, api.VerifyRequest{KID: k, PayloadB3: payload, Sigs: sig.Sigs}, 400, api.CodeBadRequest),
			signBatch("bad kid: "+what, api.SignBatchRequest{Items: []api.SignRequest{{KID: k, PayloadB3: payload}}}, 200, "", api.CodeBadRequest),
			verifyBatch("bad kid: "+what, api.VerifyBatchRequest{Items: []api.VerifyRequest{{KID: k, PayloadB3: payload, Sigs: sig.Sigs}}}, 200, "", api.CodeBadRequest),
		)
		if k == "" || strings.Contains(k, "#") || strings.Count(k, "/") != 3 {
			continue // not four path segments: that is another route (see below)
		}
		add(
			get("bad key in path: "+what, "/v1/kms/keys/"+k, 400, api.CodeBadRequest),
			rotate("bad key in path: "+what, k, nil, 400, api.CodeBadRequest),
			config("bad key in path: "+what, k, `{"min_verify_version":1}`, 400, api.CodeBadRequest),
			version("bad key in path: "+what, k, "1", "disable", 400, api.CodeBadRequest),
			version("bad key in path: "+what, k, "1", "cancel-destroy", 400, api.CodeBadRequest),
		)
	}

	add(
		// create
		create("tenant upper case", `{"tenant":"ACME","purpose":"payments","alg":"ed25519"}`, 400, api.CodeBadRequest),
		create("tenant leading dash", `{"tenant":"-acme","purpose":"payments","alg":"ed25519"}`, 400, api.CodeBadRequest),
		create("tenant leading underscore", `{"tenant":"_acme","purpose":"payments","alg":"ed25519"}`, 400, api.CodeBadRequest),
		create("tenant with slash", `{"tenant":"acme/x","purpose":"payments","alg":"ed25519"}`, 400, api.CodeBadRequest),
		create("tenant 64 chars", js(api.CreateKeyRequest{Tenant: strings.Repeat("a", 64), Purpose: "p", Alg: "ed25519"}), 400, api.CodeBadRequest),
		create("tenant missing", `{"purpose":"payments","alg":"ed25519"}`, 400, api.CodeBadRequest),
		create("purpose empty", `{"tenant":"acme","purpose":"","alg":"ed25519"}`, 400, api.CodeBadRequest),
		create("purpose with hash", `{"tenant":"acme","purpose":"pay#v1","alg":"ed25519"}`, 400, api.CodeBadRequest),
		create("alg unknown", `{"tenant":"acme","purpose":"payments","alg":"rsa-2048"}`, 400, api.CodeBadRequest),
		create("alg upper case", `{"tenant":"acme","purpose":"payments","alg":"ED25519"}`, 400, api.CodeBadRequest),
		create("alg missing", `{"tenant":"acme","purpose":"payments"}`, 400, api.CodeBadRequest),
		create("tenant wrong type", `{"tenant":1,"purpose":"payments","alg":"ed25519"}`, 400, api.CodeBadRequest),
		create("alg wrong type", `{"tenant":"acme","purpose":"payments","alg":["ed25519"]}`, 400, api.CodeBadRequest),
		create("labels wrong type", `{"tenant":"acme","purpose":"payments","alg":"ed25519","labels":["a"]}`, 400, api.CodeBadRequest),
		create("label value wrong type", `{"tenant":"acme","purpose":"payments","alg":"ed25519","labels":{"a":1}}`, 400, api.CodeBadRequest),
		create("empty label name", `{"tenant":"acme","purpose":"payments","alg":"ed25519","labels":{"":"x"}}`, 400, api.CodeBadRequest),
		create("label value too long", js(api.CreateKeyRequest{Tenant: "acme", Purpose: "p", Alg: "ed25519", Labels: map[string]string{"a": strings.Repeat("x", 129)}}), 400, api.CodeBadRequest),
		create("65 labels", js(api.CreateKeyRequest{Tenant: "acme", Purpose: "p", Alg: "ed25519", Labels: func() map[string]string {
			m := map[string]string{}
			for i := range 65 {
				m[fmt.Sprint("l", i)] = "v"
			}
			return m
		}()}), 400, api.CodeBadRequest),
		create("op_id too long", js(api.CreateKeyRequest{Tenant: "acme", Purpose: "p", Alg: "ed25519", OpID: strings.Repeat("o", 129)}), 400, api.CodeBadRequest),
		create("op_id wrong type", `{"tenant":"acme","purpose":"payments","alg":"ed25519","op_id":7}`, 400, api.CodeBadRequest),
		create("duplicate field", `{"tenant":"acme","purpose":"payments","alg":"ed25519","alg":"rsa"}`, 400, api.CodeBadRequest),
		create("null body", `null`, 400, api.CodeBadRequest),
		create("key-prefix token for another purpose", "", 0, ""), // filled below
		create("alg-limited token", "", 0, ""),                    // filled below

		// list
		list("unknown parameter", "?foo=1", 400, api.CodeBadRequest),
		list("limit zero", "?limit=0", 400, api.CodeBadRequest),
		list("limit negative", "?limit=-1", 400, api.CodeBadRequest),
		list("limit too large", "?limit=1001", 400, api.CodeBadRequest),
		list("limit not a number", "?limit=ten", 400, api.CodeBadRequest),
		list("limit exponent", "?limit=1e2", 400, api.CodeBadRequest),
		list("limit overflow", "?limit=99999999999999999999999", 400, api.CodeBadRequest),
		list("tenant upper case", "?tenant=ACME", 400, api.CodeBadRequest),
		list("tenant with slash", "?tenant=acme%2Fpayments", 400, api.CodeBadRequest),
		list("purpose without tenant", "?purpose=payments", 400, api.CodeBadRequest),
		list("purpose upper case", "?tenant=acme&purpose=Payments", 400, api.CodeBadRequest),
		list("page token not base64url", "?page_token=!!!", 400, api.CodeBadRequest),
		list("page token not a key name", "?page_token="+base64.RawURLEncoding.EncodeToString([]byte("garbage")), 400, api.CodeBadRequest),
		list("page token padded", "?page_token="+base64.URLEncoding.EncodeToString([]byte(nameA+"x")), 400, api.CodeBadRequest),
		list("page token with version", "?page_token="+base64.RawURLEncoding.EncodeToString([]byte(kidA1)), 400, api.CodeBadRequest),
		hostileRow{name: "list/other tenant token lists only its tenant", method: "GET", path: "/v1/kms/keys", token: otherTenant, status: 200,
			check: func(t *testing.T, r response) {
				var out api.ListKeysResponse
				r.decodeInto(t, &out)
				var names []string
				for _, k := range out.Keys {
					names = append(names, k.Name)
				}
				slices.Sort(names)
				want := []string{nameB, nameEB, nameWB}
				slices.Sort(want)
				if !slices.Equal(names, want) {
					t.Errorf("a token for tenant other listed %v, want %v", names, want)
				}
			}},
		hostileRow{name: "list/other tenant token names acme", method: "GET", path: "/v1/kms/keys?tenant=acme&purpose=payments", token: otherTenant, status: 403, code: api.CodeNoCapability},
		hostileRow{name: "list/control", method: "GET", path: "/v1/kms/keys?limit=1", token: h.Admin, status: 200,
			check: func(t *testing.T, r response) {
				var out api.ListKeysResponse
				r.decodeInto(t, &out)
				if len(out.Keys) != 1 || out.NextPageToken == "" {
					t.Errorf("limit=1 over two keys gave %d keys and next %q", len(out.Keys), out.NextPageToken)
				}
			}},

		// get
		get("absent key", "/v1/kms/keys/"+absent, 404, api.CodeNotFound),
		get("version in path", "/v1/kms/keys/"+nameA+"%23v1", 400, api.CodeBadRequest),
		get("escaped slash in tenant", "/v1/kms/keys/acme%2Fx/payments/ed25519/"+uuidA, 400, api.CodeBadRequest),
		get("escaped upper case", "/v1/kms/keys/%41cme/payments/ed25519/"+uuidA, 400, api.CodeBadRequest),
		get("NUL in tenant", "/v1/kms/keys/ac%00me/payments/ed25519/"+uuidA, 400, api.CodeBadRequest),
		get("three segments", "/v1/kms/keys/acme/payments/ed25519", 404, api.CodeNotFound),
		get("five segments", "/v1/kms/keys/"+nameA+"/x", 404, api.CodeNotFound),
		get("trailing slash", "/v1/kms/keys/"+nameA+"/", 404, api.CodeNotFound),
		hostileRow{name: "get/other tenant's key with other tenant token control", method: "GET", path: "/v1/kms/keys/" + nameB, token: otherTenant, status: 200},
		get("control", "/v1/kms/keys/"+nameA, 200, ""),

		// rotate
		rotate("absent key", absent, nil, 404, api.CodeNotFound),
		rotate("op_id wrong type", nameA, `{"op_id":1}`, 400, api.CodeBadRequest),
		rotate("op_id too long", nameA, js(api.RotateRequest{OpID: strings.Repeat("o", 129)}), 400, api.CodeBadRequest),
		rotate("op_id null then garbage", nameA, `{"op_id":null}}`, 400, api.CodeBadRequest),
		rotate("version in path", nameA+"%23v1", nil, 400, api.CodeBadRequest),
	)
	return rows
}
