package httpapi

import (
	"crypto/hpke"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

// hostileLifecycleRows is the rows of config and of the version actions
// (disable, enable, destroy, cancel-destroy).
func hostileLifecycleRows(t *testing.T, f *hostileFixture) []hostileRow {
	h, nameA, nameB, absent := f.h, f.nameA, f.nameB, f.absent
	config, version := f.config, f.version
	var rows []hostileRow
	add := func(r ...hostileRow) { rows = append(rows, r...) }

	add(
		// config
		config("absent key", absent, `{"min_verify_version":1}`, 404, api.CodeNotFound),
		config("version in path", nameA+"%23v1", `{"min_verify_version":1}`, 400, api.CodeBadRequest),
		config("empty object", nameA, `{}`, 400, api.CodeBadRequest),
		config("null body", nameA, `null`, 400, api.CodeBadRequest),
		config("all null", nameA, `{"min_verify_version":null,"auto_rotate_days":null,"destroy_waiting_days":null}`, 400, api.CodeBadRequest),
		config("min_verify_version 0", nameA, `{"min_verify_version":0}`, 400, api.CodeBadRequest),
		config("min_verify_version above current", nameA, `{"min_verify_version":3}`, 400, api.CodeBadRequest),
		config("min_verify_version negative", nameA, `{"min_verify_version":-1}`, 400, api.CodeBadRequest),
		config("min_verify_version 2^32", nameA, `{"min_verify_version":4294967296}`, 400, api.CodeBadRequest),
		config("min_verify_version fractional", nameA, `{"min_verify_version":1.5}`, 400, api.CodeBadRequest),
		config("min_verify_version string", nameA, `{"min_verify_version":"1"}`, 400, api.CodeBadRequest),
		config("auto_rotate_days 3651", nameA, `{"auto_rotate_days":3651}`, 400, api.CodeBadRequest),
		config("auto_rotate_days negative", nameA, `{"auto_rotate_days":-30}`, 400, api.CodeBadRequest),
		config("auto_rotate_days bool", nameA, `{"auto_rotate_days":true}`, 400, api.CodeBadRequest),
		config("destroy_waiting_days 0", nameA, `{"destroy_waiting_days":0}`, 400, api.CodeBadRequest),
		config("destroy_waiting_days 366", nameA, `{"destroy_waiting_days":366}`, 400, api.CodeBadRequest),
		config("one bad among good", nameA, `{"min_verify_version":2,"auto_rotate_days":30,"destroy_waiting_days":366}`, 400, api.CodeBadRequest),
		config("duplicate field", nameA, `{"min_verify_version":1,"min_verify_version":2}`, 400, api.CodeBadRequest),
		hostileRow{name: "config/acme-only admin on other's key", method: "POST", path: "/v1/kms/keys/" + nameB + "/config", body: `{"min_verify_version":1}`,
			token: h.mint(t, captoken.Restrictions{Tenant: "acme"}), status: 403, code: api.CodeNoCapability},
		hostileRow{name: "config/control: unchanged min_verify_version writes nothing", method: "POST", path: "/v1/kms/keys/" + nameA + "/config", token: h.Admin,
			body: `{"min_verify_version":1}`, status: 200, check: keyInfoCheck(nameA, 1, 7)},
		hostileRow{name: "config/control: the default waiting period writes nothing", method: "POST", path: "/v1/kms/keys/" + nameA + "/config", token: h.Admin,
			body: `{"destroy_waiting_days":7}`, status: 200, check: keyInfoCheck(nameA, 1, 7)},

		// disable, enable, destroy, cancel-destroy
		version("version 0", nameA, "0", "disable", 400, api.CodeBadRequest),
		version("leading zero", nameA, "01", "disable", 400, api.CodeBadRequest),
		version("negative", nameA, "-1", "destroy", 400, api.CodeBadRequest),
		version("plus sign", nameA, "%2B1", "destroy", 400, api.CodeBadRequest),
		version("not a number", nameA, "one", "enable", 400, api.CodeBadRequest),
		version("v prefix", nameA, "v1", "enable", 400, api.CodeBadRequest),
		version("fractional", nameA, "1.0", "cancel-destroy", 400, api.CodeBadRequest),
		version("2^32", nameA, "4294967296", "disable", 400, api.CodeBadRequest),
		version("huge", nameA, strings.Repeat("9", 40), "destroy", 400, api.CodeBadRequest),
		version("space", nameA, "%201", "disable", 400, api.CodeBadRequest),
		version("absent version", nameA, "9", "disable", 404, api.CodeNotFound),
		version("absent version", nameA, "9", "enable", 404, api.CodeNotFound),
		version("absent version", nameA, "9", "destroy", 404, api.CodeNotFound),
		version("absent version", nameA, "9", "cancel-destroy", 404, api.CodeNotFound),
		version("absent key", absent, "1", "disable", 404, api.CodeNotFound),
		version("absent key", absent, "1", "cancel-destroy", 404, api.CodeNotFound),
		version("version in path", nameA+"%23v1", "1", "destroy", 400, api.CodeBadRequest),
		version("current version", nameA, "2", "disable", 409, api.CodeConflict),
		version("current version", nameA, "2", "destroy", 409, api.CodeConflict),
		version("current version already enabled", nameA, "2", "enable", 409, api.CodeConflict),
		version("current version not scheduled", nameA, "2", "cancel-destroy", 409, api.CodeConflict),
		version("already enabled", nameA, "1", "enable", 409, api.CodeConflict),
		version("not scheduled", nameA, "1", "cancel-destroy", 409, api.CodeConflict),
		hostileRow{name: "disable/body with a field", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions/1/disable", token: h.Admin,
			body: `{"version":1}`, status: 400, code: api.CodeBadRequest},
		hostileRow{name: "destroy/body null then garbage", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions/1/destroy", token: h.Admin,
			body: `{}}`, status: 400, code: api.CodeBadRequest},
		hostileRow{name: "destroy/acme-only admin on other's key", method: "POST", path: "/v1/kms/keys/" + nameB + "/versions/1/destroy",
			token: h.mint(t, captoken.Restrictions{Tenant: "acme"}), status: 403, code: api.CodeNoCapability},
		hostileRow{name: "disable/key-prefix admin", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions/1/disable",
			token: h.mint(t, captoken.Restrictions{KeyPrefix: "acme/other/"}), status: 403, code: api.CodeNoCapability},
		hostileRow{name: "route/version without action", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions/1", token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/unknown version action", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions/1/purge", token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/version action extra segment", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions/1/disable/x", token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/empty version", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions//disable", token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/versions list", method: "GET", path: "/v1/kms/keys/" + nameA + "/versions", token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "method/GET config", method: "GET", path: "/v1/kms/keys/" + nameA + "/config", token: h.Admin, status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/PUT config", method: "PUT", path: "/v1/kms/keys/" + nameA + "/config", token: h.Admin, body: `{}`, status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/GET disable", method: "GET", path: "/v1/kms/keys/" + nameA + "/versions/1/disable", token: h.Admin, status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/DELETE destroy", method: "DELETE", path: "/v1/kms/keys/" + nameA + "/versions/1/destroy", token: h.Admin, status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/GET cancel-destroy", method: "GET", path: "/v1/kms/keys/" + nameA + "/versions/1/cancel-destroy", status: 405, code: api.CodeBadRequest, allow: "POST"},
	)
	return rows
}

// hostileAdminRows is the rows of tokens, backup, unknown routes and wrong
// methods.
func hostileAdminRows(t *testing.T, f *hostileFixture) []hostileRow {
	h, nameA, uuidA, signReq, verifyReq, acmeOnly := f.h, f.nameA, f.uuidA, f.signReq, f.verifyReq, f.acmeOnly
	readOnly := f.readOnly
	backupRow, tokens := f.backupRow, f.tokens
	revoke := func(name string, body any, status int) hostileRow {
		code := api.CodeBadRequest
		if status == 403 {
			code = api.CodeNoCapability
		}
		return hostileRow{name: "tokens-revoke/" + name, method: "POST", path: "/v1/kms/tokens/revoke", token: h.Admin,
			body: body, status: status, code: code}
	}
	var rows []hostileRow
	add := func(r ...hostileRow) { rows = append(rows, r...) }

	add(
		// tokens
		tokens("unknown scope", api.MintTokenRequest{Scopes: []string{"kms:everything"}}, 400, api.CodeBadRequest),
		tokens("scope upper case", api.MintTokenRequest{Scopes: []string{"KMS:READ"}}, 400, api.CodeBadRequest),
		tokens("scopes wrong type", `{"scopes":"kms:read"}`, 400, api.CodeBadRequest),
		tokens("tenant upper case", api.MintTokenRequest{Tenant: "ACME"}, 400, api.CodeBadRequest),
		tokens("tenant with newline", api.MintTokenRequest{Tenant: "acme\nscope = kms:admin"}, 400, api.CodeBadRequest),
		tokens("key prefix bad chars", api.MintTokenRequest{KeyPrefix: "acme/ X"}, 400, api.CodeBadRequest),
		tokens("alg upper case", api.MintTokenRequest{Algs: []string{"ED25519"}}, 400, api.CodeBadRequest),
		tokens("algs wrong type", `{"algs":[1]}`, 400, api.CodeBadRequest),
		tokens("ttl negative", api.MintTokenRequest{TTL: "-1h"}, 400, api.CodeBadRequest),
		tokens("ttl zero", api.MintTokenRequest{TTL: "0s"}, 400, api.CodeBadRequest),
		tokens("ttl garbage", api.MintTokenRequest{TTL: "forever"}, 400, api.CodeBadRequest),
		tokens("ttl too long", api.MintTokenRequest{TTL: "8785h"}, 400, api.CodeBadRequest),
		tokens("ttl number", `{"ttl":3600}`, 400, api.CodeBadRequest),
		hostileRow{name: "tokens/attenuated admin token", method: "POST", path: "/v1/kms/tokens", body: `{}`, status: 403, code: api.CodeNoCapability,
			token: h.mint(t, captoken.Restrictions{Scopes: []captoken.Scope{captoken.ScopeAdmin}})},
		hostileRow{name: "tokens/read-only token", method: "POST", path: "/v1/kms/tokens", body: `{}`, status: 403, code: api.CodeNoCapability, token: readOnly},
		revoke("id missing", `{}`, 400),
		revoke("id empty", api.RevokeTokenRequest{}, 400),
		revoke("id upper case", api.RevokeTokenRequest{ID: "0123456789ABCDEF0123456789ABCDEF"}, 400),
		revoke("id too short", api.RevokeTokenRequest{ID: "0123456789abcdef"}, 400),
		revoke("id with a slash", api.RevokeTokenRequest{ID: "0123456789abcdef/123456789abcdef"}, 400),
		revoke("id number", `{"id":1}`, 400),
		withToken(revoke("tenant admin token", api.RevokeTokenRequest{ID: "0123456789abcdef0123456789abcdef"}, 403),
			h.mint(t, captoken.Restrictions{Tenant: "acme"})),
		hostileRow{name: "tokens/control", method: "POST", path: "/v1/kms/tokens", token: h.Admin, status: 201,
			body: api.MintTokenRequest{Scopes: []string{"kms:read"}, Tenant: "acme", TTL: "1h"},
			check: func(t *testing.T, r response) {
				var out api.MintTokenResponse
				r.decodeInto(t, &out)
				g, err := h.Auth.Verify(out.Token, time.Now())
				if err != nil || !g.HasScope(captoken.ScopeRead) || g.HasScope(captoken.ScopeSign) {
					t.Errorf("minted token: %v", err)
				}
			}},

		// backup: every tenant's records, so only an unrestricted admin
		// token (expiry aside) may take one.
		backupRow("tenant-limited admin token", h.mint(t, captoken.Restrictions{Scopes: []captoken.Scope{captoken.ScopeAdmin}, Tenant: "acme"}), 403, api.CodeNoCapability),
		backupRow("admin-only scope token", h.mint(t, captoken.Restrictions{Scopes: []captoken.Scope{captoken.ScopeAdmin}}), 403, api.CodeNoCapability),
		backupRow("key-prefix-limited token", h.mint(t, captoken.Restrictions{KeyPrefix: "acme/"}), 403, api.CodeNoCapability),
		backupRow("alg-limited token", h.mint(t, captoken.Restrictions{Algs: []string{"ed25519"}}), 403, api.CodeNoCapability),
		backupRow("acme-only token", acmeOnly, 403, api.CodeNoCapability),
		backupRow("read-only token", readOnly, 403, api.CodeNoCapability),
		hostileRow{name: "backup/query parameter", method: "GET", path: "/v1/kms/backup?tenant=acme", token: h.Admin, status: 400, code: api.CodeBadRequest},
		hostileRow{name: "backup/body is ignored", method: "GET", path: "/v1/kms/backup", token: h.Admin, body: `{"tenant":"acme"}`, status: 200,
			check: func(t *testing.T, r response) { checkBackup(t, h, r) }},
		hostileRow{name: "backup/control", method: "GET", path: "/v1/kms/backup", token: h.Admin, status: 200,
			check: func(t *testing.T, r response) { checkBackup(t, h, r) }},
		hostileRow{name: "backup/expiring admin token", method: "GET", path: "/v1/kms/backup", token: h.mint(t, captoken.Restrictions{Expires: time.Now().Add(time.Hour)}), status: 200,
			check: func(t *testing.T, r response) { checkBackup(t, h, r) }},
		hostileRow{name: "method/POST backup", method: "POST", path: "/v1/kms/backup", token: h.Admin, body: `{}`, status: 405, code: api.CodeBadRequest, allow: "GET"},

		// Unknown routes and wrong methods.
		hostileRow{name: "route/unknown", method: "GET", path: "/v1/kms/nope", status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/unknown with token", method: "POST", path: "/v1/kms/nope", token: h.Admin, body: `{}`, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/root", method: "GET", path: "/", status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/base path", method: "GET", path: "/v1/kms", status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/v2", method: "GET", path: "/v2/kms/keys", token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/upper-case path", method: "GET", path: "/V1/KMS/KEYS", token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/keys trailing slash", method: "GET", path: "/v1/kms/keys/", token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/rotate extra segment", method: "POST", path: "/v1/kms/keys/" + nameA + "/rotate/x", token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/double slash", method: "GET", path: "/v1/kms//keys", token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/dot segment", method: "POST", path: "/v1/kms/keys/../sign", token: h.Admin, body: js(signReq), status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/dot in key path", method: "GET", path: "/v1/kms/keys/acme/./payments/ed25519/" + uuidA, token: h.Admin, status: 404, code: api.CodeNotFound},
		hostileRow{name: "route/sign batch under sign", method: "POST", path: "/v1/kms/sign/batches", token: h.Admin, body: `{}`, status: 404, code: api.CodeNotFound},
		hostileRow{name: "method/DELETE keys", method: "DELETE", path: "/v1/kms/keys", token: h.Admin, status: 405, code: api.CodeBadRequest, allow: "GET, POST"},
		hostileRow{name: "method/PUT keys", method: "PUT", path: "/v1/kms/keys", body: `{}`, status: 405, code: api.CodeBadRequest, allow: "GET, POST"},
		hostileRow{name: "method/POST key", method: "POST", path: "/v1/kms/keys/" + nameA, token: h.Admin, body: `{}`, status: 405, code: api.CodeBadRequest, allow: "GET"},
		hostileRow{name: "method/DELETE key", method: "DELETE", path: "/v1/kms/keys/" + nameA, token: h.Admin, status: 405, code: api.CodeBadRequest, allow: "GET"},
		hostileRow{name: "method/GET rotate", method: "GET", path: "/v1/kms/keys/" + nameA + "/rotate", token: h.Admin, status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/GET sign", method: "GET", path: "/v1/kms/sign", token: h.Admin, status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/PUT verify", method: "PUT", path: "/v1/kms/verify", body: js(verifyReq), status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/GET sign batch", method: "GET", path: "/v1/kms/sign/batch", status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/PATCH verify batch", method: "PATCH", path: "/v1/kms/verify/batch", status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/GET tokens", method: "GET", path: "/v1/kms/tokens", token: h.Admin, status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/POST healthz", method: "POST", path: "/healthz", status: 405, code: api.CodeBadRequest, allow: "GET"},
		hostileRow{name: "method/DELETE metrics", method: "DELETE", path: "/metrics", status: 405, code: api.CodeBadRequest, allow: "GET"},
	)
	return rows
}

// hostileImportRows is the rows of import, import/wrapping-key, attestation
// and audit/key.
func hostileImportRows(t *testing.T, f *hostileFixture) []hostileRow {
	h, kidA1, nameA, kidA2, nameB, absent := f.h, f.kidA1, f.nameA, f.kidA2, f.nameB, f.absent
	payload, nameW, kidW2, nameE, acmeOnly, kidC := f.payload, f.nameW, f.kidW2, f.nameE, f.acmeOnly, f.kidC
	nameC, wkPub, edPub, importReq, nameV, sealedSeed := f.nameC, f.wkPub, f.edPub, f.importReq, f.nameV, f.sealedSeed
	sealedWith, otherKEM := f.sealedWith, f.otherKEM
	sign, rotate := f.sign, f.rotate
	var rows []hostileRow
	add := func(r ...hostileRow) { rows = append(rows, r...) }

	// import, import/wrapping-key, attestation, audit/key. Every import row
	// fails: a successful import would change the store (see
	// import_test.go for those).
	imp := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "import/" + name, method: "POST", path: "/v1/kms/keys/import", token: h.Admin, body: body, status: status, code: code}
	}
	impW := func(alg, wrapped string) api.ImportKeyRequest {
		return api.ImportKeyRequest{Tenant: "acme", Purpose: "payments", Alg: alg, WrappedPrivateB64: wrapped}
	}
	impP := func(alg string, pubLen int) api.ImportKeyRequest {
		return api.ImportKeyRequest{Tenant: "acme", Purpose: "payments", Alg: alg, PublicKeyB64: b64n(pubLen)}
	}
	attest := func(name, key, query string, status int, code api.Code) hostileRow {
		return hostileRow{name: "attest/" + name, method: "GET", path: "/v1/kms/keys/" + key + "/attestation" + query, token: h.Admin, status: status, code: code}
	}
	attested := func(kid string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var att api.AttestationResponse
			r.decodeInto(t, &att)
			var ak api.AuditKeyResponse
			h.do(t, "GET", "/v1/kms/audit/key", h.Admin, nil).decodeInto(t, &ak)
			st, err := client.VerifyAttestation(&att, mustB64(t, ak.AttestationPublicKeyB64))
			if err != nil || st.KID != kid {
				t.Errorf("attestation of %s: %+v, %v", kid, st, err)
			}
		}
	}
	validSeal := mustB64(t, sealedSeed(32))
	add(
		imp("bad seal: random bytes", impW("ed25519", b64n(1200)), 400, api.CodeBadRequest),
		imp("bad seal: shorter than enc", impW("ed25519", b64n(16)), 400, api.CodeBadRequest),
		imp("bad seal: byte flipped in the ciphertext", impW("ed25519", api.EncodeB64(flip(validSeal, -1))), 400, api.CodeBadRequest),
		imp("bad seal: byte flipped in enc", impW("ed25519", api.EncodeB64(flip(validSeal, 5))), 400, api.CodeBadRequest),
		imp("bad seal: truncated", impW("ed25519", api.EncodeB64(validSeal[:len(validSeal)-1])), 400, api.CodeBadRequest),
		imp("bad seal: sealed to another key", impW("ed25519", sealedWith(otherKEM.PublicKey(), hpke.AES256GCM(), "ron-kms/import/v1")), 400, api.CodeBadRequest),
		imp("bad seal: wrap info", impW("ed25519", sealedWith(wkPub, hpke.AES256GCM(), "ron-kms/wrap/v1")), 400, api.CodeBadRequest),
		imp("bad seal: no info", impW("ed25519", sealedWith(wkPub, hpke.AES256GCM(), "")), 400, api.CodeBadRequest),
		imp("bad seal: chacha20poly1305", impW("ed25519", sealedWith(wkPub, hpke.ChaCha20Poly1305(), "ron-kms/import/v1")), 400, api.CodeBadRequest),
		imp("seed 31 bytes", impW("ed25519", sealedSeed(31)), 400, api.CodeBadRequest),
		imp("seed 33 bytes", impW("ed25519", sealedSeed(33)), 400, api.CodeBadRequest),
		imp("seed 64 bytes (expanded ed25519 key)", impW("ed25519", sealedSeed(64)), 400, api.CodeBadRequest),
		imp("seed empty", impW("ed25519", sealedSeed(0)), 400, api.CodeBadRequest),
		imp("ml-dsa-65 seed 64 bytes", impW("ml-dsa-65", sealedSeed(64)), 400, api.CodeBadRequest),
		imp("wrapped bad base64", impW("ed25519", "%%%%"), 400, api.CodeBadRequest),
		imp("wrapped unpadded", impW("ed25519", strings.TrimRight(api.EncodeB64(validSeal), "=")+"A"), 400, api.CodeBadRequest),
		imp("x25519 public key", impP("x25519", 32), 400, api.CodeUnsupported),
		imp("x25519 wrapped", impW("x25519", sealedSeed(32)), 400, api.CodeUnsupported),
		imp("aes-256-gcm wrapped", impW("aes-256-gcm", sealedSeed(32)), 400, api.CodeUnsupported),
		imp("mlkem768-x25519 public key", impP("mlkem768-x25519", 1216), 400, api.CodeUnsupported),
		imp("ml-kem-768 wrapped", impW("ml-kem-768", sealedSeed(64)), 400, api.CodeUnsupported),
		imp("slh-dsa public key", impP("slh-dsa-sha2-128s", 32), 400, api.CodeUnsupported),
		imp("composite public key", impP("mldsa65-ed25519", 1984), 400, api.CodeUnsupported),
		imp("composite wrapped", impW("mldsa65-ed25519", sealedSeed(64)), 400, api.CodeUnsupported),
		imp("unknown alg", impP("rsa-2048", 32), 400, api.CodeBadRequest),
		imp("alg upper case", impP("ED25519", 32), 400, api.CodeBadRequest),
		imp("alg missing", `{"tenant":"acme","purpose":"payments","public_key_b64":"`+edPub+`"}`, 400, api.CodeBadRequest),
		imp("both public key and wrapped", api.ImportKeyRequest{Tenant: "acme", Purpose: "payments", Alg: "ed25519", PublicKeyB64: edPub, WrappedPrivateB64: sealedSeed(32)}, 400, api.CodeBadRequest),
		imp("neither public key nor wrapped", api.ImportKeyRequest{Tenant: "acme", Purpose: "payments", Alg: "ed25519"}, 400, api.CodeBadRequest),
		imp("both empty strings", `{"tenant":"acme","purpose":"payments","alg":"ed25519","public_key_b64":"","wrapped_private_b64":""}`, 400, api.CodeBadRequest),
		imp("ed25519 public key 31 bytes", impP("ed25519", 31), 400, api.CodeBadRequest),
		imp("ed25519 public key 33 bytes", impP("ed25519", 33), 400, api.CodeBadRequest),
		imp("ed25519 public key 64 bytes", impP("ed25519", 64), 400, api.CodeBadRequest),
		imp("ml-dsa-44 public key 1311 bytes", impP("ml-dsa-44", 1311), 400, api.CodeBadRequest),
		imp("ml-dsa-65 public key of 32 bytes", impP("ml-dsa-65", 32), 400, api.CodeBadRequest),
		imp("ml-dsa-87 public key 2593 bytes", impP("ml-dsa-87", 2593), 400, api.CodeBadRequest),
		imp("public key bad base64", api.ImportKeyRequest{Tenant: "acme", Purpose: "payments", Alg: "ed25519", PublicKeyB64: "%%%%"}, 400, api.CodeBadRequest),
		imp("public key url alphabet", api.ImportKeyRequest{Tenant: "acme", Purpose: "payments", Alg: "ed25519", PublicKeyB64: strings.NewReplacer("+", "-", "/", "_").Replace(edPub) + "-_"}, 400, api.CodeBadRequest),
		imp("public key wrong type", `{"tenant":"acme","purpose":"payments","alg":"ed25519","public_key_b64":[1]}`, 400, api.CodeBadRequest),
		imp("tenant upper case", api.ImportKeyRequest{Tenant: "ACME", Purpose: "payments", Alg: "ed25519", PublicKeyB64: edPub}, 400, api.CodeBadRequest),
		imp("purpose missing", `{"tenant":"acme","alg":"ed25519","public_key_b64":"`+edPub+`"}`, 400, api.CodeBadRequest),
		imp("op_id too long", api.ImportKeyRequest{Tenant: "acme", Purpose: "payments", Alg: "ed25519", PublicKeyB64: edPub, OpID: strings.Repeat("o", 129)}, 400, api.CodeBadRequest),
		imp("op_id with space", api.ImportKeyRequest{Tenant: "acme", Purpose: "payments", Alg: "ed25519", PublicKeyB64: edPub, OpID: "a b"}, 400, api.CodeBadRequest),
		imp("labels given", `{"tenant":"acme","purpose":"payments","alg":"ed25519","public_key_b64":"`+edPub+`","labels":{}}`, 400, api.CodeBadRequest),
		withToken(imp("key-prefix token for another purpose", importReq, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{KeyPrefix: "acme/other/"})),
		withToken(imp("alg-limited token", importReq, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{Algs: []string{"ml-dsa-65"}})),
		withToken(imp("acme-only token, other tenant", api.ImportKeyRequest{Tenant: "other", Purpose: "payments", Alg: "ed25519", PublicKeyB64: edPub}, 403, api.CodeNoCapability), acmeOnly),
		hostileRow{name: "import-wrapping-key/query parameter", method: "GET", path: "/v1/kms/import/wrapping-key?alg=x25519", token: h.Admin, status: 400, code: api.CodeBadRequest},
		hostileRow{name: "import-wrapping-key/control", method: "GET", path: "/v1/kms/import/wrapping-key", token: h.Admin, status: 200,
			check: func(t *testing.T, r response) {
				var wk api.WrappingKeyResponse
				r.decodeInto(t, &wk)
				if wk.Alg != "mlkem768-x25519" || len(mustB64(t, wk.PublicKeyB64)) != 1184+32 {
					t.Errorf("wrapping key %s", r.Raw)
				}
			}},
		hostileRow{name: "audit-key/query parameter", method: "GET", path: "/v1/kms/audit/key?format=pem", token: h.Admin, status: 400, code: api.CodeBadRequest},
		hostileRow{name: "audit-key/control", method: "GET", path: "/v1/kms/audit/key", token: h.Admin, status: 200,
			check: func(t *testing.T, r response) {
				var ak api.AuditKeyResponse
				r.decodeInto(t, &ak)
				if len(mustB64(t, ak.AuditPublicKeyB64)) != 32 || len(mustB64(t, ak.AttestationPublicKeyB64)) != 32 {
					t.Errorf("audit keys %s", r.Raw)
				}
			}},
		attest("absent key", absent, "", 404, api.CodeNotFound),
		attest("absent version", nameA, "?version=9", 404, api.CodeNotFound),
		attest("version 0", nameA, "?version=0", 400, api.CodeBadRequest),
		attest("version 01", nameA, "?version=01", 400, api.CodeBadRequest),
		attest("version +1", nameA, "?version=%2B1", 400, api.CodeBadRequest),
		attest("version -1", nameA, "?version=-1", 400, api.CodeBadRequest),
		attest("version v1", nameA, "?version=v1", 400, api.CodeBadRequest),
		attest("version empty", nameA, "?version=", 400, api.CodeBadRequest),
		attest("version 2^32", nameA, "?version=4294967296", 400, api.CodeBadRequest),
		attest("version twice", nameA, "?version=1&version=2", 400, api.CodeBadRequest),
		attest("unknown parameter", nameA, "?v=1", 400, api.CodeBadRequest),
		attest("version in path", nameA+"%23v1", "", 400, api.CodeBadRequest),
		attest("aes key", nameE, "", 400, api.CodeUnsupported),
		attest("verify-only key", nameV, "", 400, api.CodeUnsupported),
		withToken(attest("acme-only token, other's key", nameB, "", 403, api.CodeNoCapability), acmeOnly),
		withToken(attest("alg-limited token", nameA, "", 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{Algs: []string{"ml-dsa-65"}})),
		withCheck(attest("control", nameA, "", 200, ""), attested(kidA2)),
		withCheck(attest("control: older version", nameA, "?version=1", 200, ""), attested(kidA1)),
		withCheck(attest("control: wrap key", nameW, "", 200, ""), attested(kidW2)),
		withCheck(attest("control: hybrid key", nameC, "", 200, ""), attested(kidC)),
		sign("verify-only key", api.SignRequest{KID: nameV, PayloadB3: payload}, 400, api.CodeUnsupported),
		sign("verify-only key with its kid", api.SignRequest{KID: nameV + "#v1", PayloadB3: payload}, 400, api.CodeUnsupported),
		rotate("verify-only key", nameV, nil, 400, api.CodeUnsupported),
		hostileRow{name: "method/GET import", method: "GET", path: "/v1/kms/keys/import", token: h.Admin, status: 405, code: api.CodeBadRequest, allow: "POST"},
		hostileRow{name: "method/POST wrapping key", method: "POST", path: "/v1/kms/import/wrapping-key", token: h.Admin, body: `{}`, status: 405, code: api.CodeBadRequest, allow: "GET"},
		hostileRow{name: "method/POST attestation", method: "POST", path: "/v1/kms/keys/" + nameA + "/attestation", token: h.Admin, body: `{}`, status: 405, code: api.CodeBadRequest, allow: "GET"},
		hostileRow{name: "method/DELETE audit key", method: "DELETE", path: "/v1/kms/audit/key", token: h.Admin, status: 405, code: api.CodeBadRequest, allow: "GET"},
	)
	return rows
}
