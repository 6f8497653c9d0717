package httpapi

import (
	"bytes"
	"crypto/hpke"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/storage"
)

// hostileRow is one request of the hostile-input table and the exact answer
// the contract requires.
type hostileRow struct {
	name         string
	method, path string
	token        string   // bearer token; "" sends none
	hdr          []string // extra headers, name/value pairs
	body         any      // string or []byte sent as is; other values JSON-encoded; nil for none
	status       int
	code         api.Code   // required for every non-2xx status
	allow        string     // the Allow header a 405 must carry
	items        []api.Code // batch answers: the code of each slot, "" for an item that ran
	check        func(t *testing.T, r response)
}

// route is one authenticated route of the API with a request that is valid
// in every respect but the one a generated row breaks. Adding a route to
// the API means adding it here (and its specific rows below).
type route struct {
	name         string
	method, path string
	scope        captoken.Scope
	body         any  // a valid body; nil for GET
	batch        int  // > 0: a batch route whose valid body has this many items
	emptyBodyOK  bool // an empty body is a valid request (rotate)
	tenantOnBody bool // the key's tenant is named by the request (not only by the token)
	serverWide   bool // names no key or tenant (the server's own public keys): a tenant token may call it
}

const maxBody = api.DefaultBodyLimit

// js encodes v as JSON for hand-built bodies.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func allScopesBut(s captoken.Scope) []captoken.Scope {
	var out []captoken.Scope
	for _, sc := range captoken.AllScopes() {
		if sc != s {
			out = append(out, sc)
		}
	}
	return out
}

// addCaveat appends a raw first-party caveat to a token, as any holder can.
func addCaveat(t *testing.T, tok, cav string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if err := m.AddFirstPartyCaveat([]byte(cav)); err != nil {
		t.Fatal(err)
	}
	out, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

func repeat(n int, s string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func codes(n int, c api.Code) []api.Code {
	out := make([]api.Code, n)
	for i := range out {
		out[i] = c
	}
	return out
}

// TestHostileInput sends every route hostile requests and checks the exact
// status and code, the error envelope, the request and correlation ids, and
// that nothing in the store changed.
func TestHostileInput(t *testing.T) {
	h := newHarness(t)

	// Keys: acme's has two versions (v1 is no longer current); other's one.
	kidA1 := h.createKey(t, "acme", "payments", "ed25519")
	nameA := strings.TrimSuffix(kidA1, "#v1")
	if r := h.do(t, "POST", "/v1/kms/keys/"+nameA+"/rotate", h.Admin, nil); r.Status != http.StatusOK {
		t.Fatalf("rotate: %d %s", r.Status, r.Raw)
	}
	kidA2 := nameA + "#v2"
	kidB := h.createKey(t, "other", "payments", "ed25519")
	nameB := strings.TrimSuffix(kidB, "#v1")
	uuidA := nameA[strings.LastIndexByte(nameA, '/')+1:]
	absent := "acme/payments/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"

	payload := strings.Repeat("ab", 32)
	sig := h.signPayload(t, nameA, payload)
	if sig.KID != kidA2 || len(sig.Sigs) != 1 {
		t.Fatalf("sign answered %+v, want kid %s and one signature", sig, kidA2)
	}
	zeroSig := api.EncodeB64(make([]byte, 64))

	signReq := api.SignRequest{KID: nameA, PayloadB3: payload}
	verifyReq := api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs}

	// Data keys. acme's wrap key (mlkem768-x25519) and encrypt key
	// (aes-256-gcm) have two versions, each having made an envelope or a
	// ciphertext before the rotation; other's have one version.
	kidW1 := h.createKey(t, "acme", "payments", "mlkem768-x25519")
	nameW := strings.TrimSuffix(kidW1, "#v1")
	aad := api.EncodeB64([]byte("order=42"))
	envW1 := mustB64(t, h.wrapOK(t, h.Admin, api.WrapRequest{KID: nameW, Size: 32, AADB64: aad}).WrappedB64)
	kidW2 := h.rotate(t, nameW)
	envW := mustB64(t, h.wrapOK(t, h.Admin, api.WrapRequest{KID: nameW, Size: 32, AADB64: aad}).WrappedB64)
	kidWB := h.createKey(t, "other", "payments", "x25519")
	nameWB := strings.TrimSuffix(kidWB, "#v1")
	envWB := mustB64(t, h.wrapOK(t, h.Admin, api.WrapRequest{KID: nameWB, Size: 32}).WrappedB64)
	kidE1 := h.createKey(t, "acme", "payments", "aes-256-gcm")
	nameE := strings.TrimSuffix(kidE1, "#v1")
	ctE1 := mustB64(t, h.encryptOK(t, h.Admin, api.EncryptRequest{KID: nameE, PlaintextB64: "aGk=", AADB64: aad}).CiphertextB64)
	kidE2 := h.rotate(t, nameE)
	// This first encryption with v2 reserves its block of encryption
	// counts (a c/ record); see the snapshot check at the end.
	ctE := mustB64(t, h.encryptOK(t, h.Admin, api.EncryptRequest{KID: nameE, PlaintextB64: "aGk=", AADB64: aad}).CiphertextB64)
	kidEB := h.createKey(t, "other", "payments", "aes-256-gcm")
	nameEB := strings.TrimSuffix(kidEB, "#v1")
	ctEB := mustB64(t, h.encryptOK(t, h.Admin, api.EncryptRequest{KID: nameEB, PlaintextB64: "aGk="}).CiphertextB64)
	absentW := "acme/payments/mlkem768-x25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"
	absentE := "acme/payments/aes-256-gcm/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"
	wrapReq := api.WrapRequest{KID: nameW, Size: 32, AADB64: aad}
	unwrapReq := api.UnwrapRequest{WrappedB64: api.EncodeB64(envW), AADB64: aad}
	encryptReq := api.EncryptRequest{KID: nameE, PlaintextB64: api.EncodeB64([]byte("card 4111")), AADB64: aad}
	decryptReq := api.DecryptRequest{CiphertextB64: api.EncodeB64(ctE), AADB64: aad}
	acmeOnly := h.mint(t, captoken.Restrictions{Tenant: "acme"})

	// Signing keys of the other algorithms: a hybrid and an ML-DSA one.
	kidC := h.createKey(t, "acme", "payments", "mldsa65-ed25519")
	nameC := strings.TrimSuffix(kidC, "#v1")
	sigC := h.signPayload(t, nameC, payload)
	if len(sigC.Sigs) != 2 || sigC.Sigs[0].Alg == sigC.Sigs[1].Alg {
		t.Fatalf("hybrid sign answered %+v", sigC)
	}
	kidM := h.createKey(t, "acme", "payments", "ml-dsa-65")
	nameM := strings.TrimSuffix(kidM, "#v1")
	ctx255 := api.EncodeB64(make([]byte, api.MaxContext))
	sigM := h.do(t, "POST", "/v1/kms/sign", h.Admin, api.SignRequest{KID: nameM, PayloadB3: payload, ContextB64: ctx255})
	var sigMOut api.SignResponse
	sigM.decodeInto(t, &sigMOut)
	badKIDs := map[string]string{
		"upper-case tenant": "ACME/payments/ed25519/" + uuidA,
		"bad tenant char":   "ac.me/payments/ed25519/" + uuidA,
		"leading dash":      "-acme/payments/ed25519/" + uuidA,
		"unknown alg":       "acme/payments/rsa-2048/" + uuidA,
		"uuid v1":           "acme/payments/ed25519/0190a5b2-7c3d-1e4f-8a1b-2c3d4e5f6a7b",
		"upper-case uuid":   "acme/payments/ed25519/" + strings.ToUpper(uuidA),
		"version v0":        nameA + "#v0",
		"version v01":       nameA + "#v01",
		"trailing hash":     nameA + "#",
		"five segments":     "acme/payments/x/ed25519/" + uuidA,
		"empty":             "",
	}

	// Tokens.
	forgeRoot := make([]byte, captoken.RootKeySize)
	rand.Read(forgeRoot)
	forger, err := captoken.NewAuthority(forgeRoot, "ron-kms-test")
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := forger.Mint(captoken.Restrictions{})
	if err != nil {
		t.Fatal(err)
	}
	expired := h.mint(t, captoken.Restrictions{Expires: time.Now().Add(-time.Minute)})
	expiredAdmin, err := captoken.Attenuate(h.Admin, captoken.Restrictions{Expires: time.Now().Add(-time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	tampered := h.Admin[:len(h.Admin)-6] + strings.Map(func(r rune) rune {
		if r == 'A' {
			return 'B'
		}
		return 'A'
	}, h.Admin[len(h.Admin)-6:])
	otherTenant := h.mint(t, captoken.Restrictions{Tenant: "other"})
	unknownCaveat := addCaveat(t, h.Admin, "color = blue")
	readOnly := h.mint(t, captoken.Restrictions{Scopes: []captoken.Scope{captoken.ScopeRead}})

	// Import and attestation. The server's own keys are made on first use:
	// they exist before the snapshot below. nameV is a verify-only key.
	wkPub := h.wrappingKey(t)
	if r := h.do(t, "GET", "/v1/kms/audit/key", h.Admin, nil); r.Status != http.StatusOK {
		t.Fatalf("audit key: %d %s", r.Status, r.Raw)
	}
	edPub := api.EncodeB64(unhex(t, rfc8032Import[0].pub))
	importReq := api.ImportKeyRequest{Tenant: "acme", Purpose: "payments", Alg: "ed25519", PublicKeyB64: edPub}
	nameV := h.importOK(t, importReq).Key.Name
	sealedSeed := func(n int) string { return sealSeed(t, wkPub, make([]byte, n)) }
	sealedWith := func(pk hpke.PublicKey, aead hpke.AEAD, info string) string {
		ct, err := hpke.Seal(pk, hpke.HKDFSHA256(), aead, []byte(info), make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		return api.EncodeB64(ct)
	}
	otherKEM, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}

	routes := []route{
		{name: "create", method: "POST", path: "/v1/kms/keys", scope: captoken.ScopeCreate, tenantOnBody: true,
			body: api.CreateKeyRequest{Tenant: "acme", Purpose: "payments", Alg: "ed25519"}},
		{name: "list", method: "GET", path: "/v1/kms/keys?tenant=acme", scope: captoken.ScopeRead, tenantOnBody: true},
		{name: "get", method: "GET", path: "/v1/kms/keys/" + nameA, scope: captoken.ScopeRead},
		{name: "rotate", method: "POST", path: "/v1/kms/keys/" + nameA + "/rotate", scope: captoken.ScopeRotate,
			body: api.RotateRequest{}, emptyBodyOK: true},
		{name: "sign", method: "POST", path: "/v1/kms/sign", scope: captoken.ScopeSign, body: signReq},
		{name: "verify", method: "POST", path: "/v1/kms/verify", scope: captoken.ScopeVerify, body: verifyReq},
		{name: "sign-batch", method: "POST", path: "/v1/kms/sign/batch", scope: captoken.ScopeSign, batch: 2,
			body: api.SignBatchRequest{Items: []api.SignRequest{signReq, signReq}}},
		{name: "verify-batch", method: "POST", path: "/v1/kms/verify/batch", scope: captoken.ScopeVerify, batch: 2,
			body: api.VerifyBatchRequest{Items: []api.VerifyRequest{verifyReq, verifyReq}}},
		{name: "tokens", method: "POST", path: "/v1/kms/tokens", scope: captoken.ScopeAdmin,
			body: api.MintTokenRequest{Scopes: []string{"kms:read"}, TTL: "1h"}},
		{name: "wrap", method: "POST", path: "/v1/kms/wrap", scope: captoken.ScopeWrap, body: wrapReq},
		{name: "unwrap", method: "POST", path: "/v1/kms/unwrap", scope: captoken.ScopeUnwrap, body: unwrapReq},
		{name: "encrypt", method: "POST", path: "/v1/kms/encrypt", scope: captoken.ScopeEncrypt, body: encryptReq},
		{name: "decrypt", method: "POST", path: "/v1/kms/decrypt", scope: captoken.ScopeDecrypt, body: decryptReq},
		{name: "backup", method: "GET", path: "/v1/kms/backup", scope: captoken.ScopeAdmin},
		{name: "config", method: "POST", path: "/v1/kms/keys/" + nameA + "/config", scope: captoken.ScopeAdmin,
			body: api.ConfigureKeyRequest{MinVerifyVersion: ptr(1)}},
		{name: "disable", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions/1/disable", scope: captoken.ScopeAdmin,
			body: api.VersionActionRequest{}, emptyBodyOK: true},
		{name: "enable", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions/1/enable", scope: captoken.ScopeAdmin,
			body: api.VersionActionRequest{}, emptyBodyOK: true},
		{name: "destroy", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions/1/destroy", scope: captoken.ScopeAdmin,
			body: api.VersionActionRequest{}, emptyBodyOK: true},
		{name: "cancel-destroy", method: "POST", path: "/v1/kms/keys/" + nameA + "/versions/1/cancel-destroy", scope: captoken.ScopeAdmin,
			body: api.VersionActionRequest{}, emptyBodyOK: true},
		{name: "import", method: "POST", path: "/v1/kms/keys/import", scope: captoken.ScopeCreate, tenantOnBody: true, body: importReq},
		{name: "import-wrapping-key", method: "GET", path: "/v1/kms/import/wrapping-key", scope: captoken.ScopeCreate, serverWide: true},
		{name: "attest", method: "GET", path: "/v1/kms/keys/" + nameA + "/attestation", scope: captoken.ScopeRead},
		{name: "audit-key", method: "GET", path: "/v1/kms/audit/key", scope: captoken.ScopeRead, serverWide: true},
	}

	var rows []hostileRow
	add := func(r ...hostileRow) { rows = append(rows, r...) }

	// Generated rows: every route, every way a token can be wrong, and every
	// way a body can be malformed.
	for _, rt := range routes {
		base := hostileRow{method: rt.method, path: rt.path, body: rt.body}
		row := func(name, token string, status int, code api.Code) hostileRow {
			r := base
			r.name, r.token, r.status, r.code = rt.name+"/"+name, token, status, code
			return r
		}
		add(
			row("no token", "", 401, api.CodeUnauthenticated),
			row("garbage token", "not a token!", 401, api.CodeUnauthenticated),
			row("base64 garbage token", "AAAAAAAAAAAA", 401, api.CodeUnauthenticated),
			row("expired token", expired, 401, api.CodeUnauthenticated),
			row("expired attenuated admin token", expiredAdmin, 401, api.CodeUnauthenticated),
			row("forged token", forged, 401, api.CodeUnauthenticated),
			row("tampered token", tampered, 401, api.CodeUnauthenticated),
			row("token with padding", h.Admin+"=", 401, api.CodeUnauthenticated),
			row("under-scoped token", h.mint(t, captoken.Restrictions{Scopes: allScopesBut(rt.scope)}), 403, api.CodeNoCapability),
			row("unknown caveat", unknownCaveat, 403, api.CodeNoCapability),
		)
		r := row("basic auth", "", 401, api.CodeUnauthenticated)
		r.hdr = []string{"Authorization", "Basic YWRtaW46YWRtaW4="}
		add(r)
		r = row("empty bearer", "", 401, api.CodeUnauthenticated)
		r.hdr = []string{"Authorization", "Bearer "}
		add(r)
		r = row("token in query", "", 401, api.CodeUnauthenticated)
		if strings.Contains(r.path, "?") {
			r.path += "&access_token=" + h.Admin
		} else {
			r.path += "?access_token=" + h.Admin
		}
		add(r)

		// Another tenant's token.
		r = row("other tenant token", otherTenant, 403, api.CodeNoCapability)
		switch {
		case rt.batch > 0:
			// Authorization is per item: every slot fails, the batch runs.
			r.status, r.code, r.items = 200, "", codes(rt.batch, api.CodeNoCapability)
		case rt.serverWide:
			r.status, r.code = 200, ""
		}
		add(r)

		if rt.method != "POST" {
			continue
		}
		add(
			row("malformed JSON", h.Admin, 400, api.CodeBadRequest),
			row("truncated JSON", h.Admin, 400, api.CodeBadRequest),
			row("unknown field", h.Admin, 400, api.CodeBadRequest),
			row("unknown field, other case", h.Admin, 400, api.CodeBadRequest),
			row("trailing data", h.Admin, 400, api.CodeBadRequest),
			row("two objects", h.Admin, 400, api.CodeBadRequest),
			row("array body", h.Admin, 400, api.CodeBadRequest),
			row("string body", h.Admin, 400, api.CodeBadRequest),
			row("number body", h.Admin, 400, api.CodeBadRequest),
			row("invalid UTF-8 in field name", h.Admin, 400, api.CodeBadRequest),
			row("oversize body", h.Admin, 413, api.CodeTooLarge),
			row("oversize whitespace", h.Admin, 413, api.CodeTooLarge),
			row("4 MiB body", h.Admin, 413, api.CodeTooLarge),
		)
		valid := js(rt.body)
		n := len(rows)
		rows[n-13].body = `{"a":`
		rows[n-12].body = valid[:len(valid)-1]
		rows[n-11].body = valid[:len(valid)-1] + `,"zzz_unknown":1}`
		rows[n-10].body = strings.Replace(valid, `{"`, `{"OP_ID":"x","`, 1)
		rows[n-9].body = valid + "x"
		rows[n-8].body = valid + valid
		rows[n-7].body = `[` + valid + `]`
		rows[n-6].body = `"` + strings.ReplaceAll(valid, `"`, `\"`) + `"`
		rows[n-5].body = `42`
		rows[n-4].body = "{\"\xff\xfe\":1}"
		rows[n-3].body = `{"op_id":"` + strings.Repeat("a", maxBody) + `"}`
		rows[n-2].body = valid + strings.Repeat(" ", maxBody)
		rows[n-1].body = strings.Repeat("[", 4*maxBody)
		if rt.emptyBodyOK {
			// Rotate decodes into RotateRequest, which has op_id, and the
			// version routes into an empty object (whose valid body, {},
			// has no field to change the case of): the case of a field
			// name must not matter for it to be rejected.
			rows[n-10].body = `{"OP_ID":"x"}`
		}
		if !rt.emptyBodyOK {
			add(row("empty body", h.Admin, 400, api.CodeBadRequest), row("whitespace body", h.Admin, 400, api.CodeBadRequest))
			rows[len(rows)-2].body = ""
			rows[len(rows)-1].body = " \n\t "
		}
	}

	sign := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "sign/" + name, method: "POST", path: "/v1/kms/sign", token: h.Admin, body: body, status: status, code: code}
	}
	verify := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "verify/" + name, method: "POST", path: "/v1/kms/verify", token: h.Admin, body: body, status: status, code: code}
	}
	create := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "create/" + name, method: "POST", path: "/v1/kms/keys", token: h.Admin, body: body, status: status, code: code}
	}
	rotate := func(name, key string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "rotate/" + name, method: "POST", path: "/v1/kms/keys/" + key + "/rotate", token: h.Admin, body: body, status: status, code: code}
	}
	get := func(name, path string, status int, code api.Code) hostileRow {
		return hostileRow{name: "get/" + name, method: "GET", path: path, token: h.Admin, status: status, code: code}
	}
	list := func(name, query string, status int, code api.Code) hostileRow {
		return hostileRow{name: "list/" + name, method: "GET", path: "/v1/kms/keys" + query, token: h.Admin, status: status, code: code}
	}
	backupRow := func(name, token string, status int, code api.Code) hostileRow {
		return hostileRow{name: "backup/" + name, method: "GET", path: "/v1/kms/backup", token: token, status: status, code: code}
	}
	tokens := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "tokens/" + name, method: "POST", path: "/v1/kms/tokens", token: h.Admin, body: body, status: status, code: code}
	}
	signBatch := func(name string, body any, status int, code api.Code, items ...api.Code) hostileRow {
		return hostileRow{name: "sign-batch/" + name, method: "POST", path: "/v1/kms/sign/batch", token: h.Admin, body: body, status: status, code: code, items: items}
	}
	verifyBatch := func(name string, body any, status int, code api.Code, items ...api.Code) hostileRow {
		return hostileRow{name: "verify-batch/" + name, method: "POST", path: "/v1/kms/verify/batch", token: h.Admin, body: body, status: status, code: code, items: items}
	}
	config := func(name, key string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "config/" + name, method: "POST", path: "/v1/kms/keys/" + key + "/config", token: h.Admin, body: body, status: status, code: code}
	}
	version := func(name, key, n, action string, status int, code api.Code) hostileRow {
		return hostileRow{name: action + "/" + name, method: "POST", path: "/v1/kms/keys/" + key + "/versions/" + n + "/" + action, token: h.Admin, status: status, code: code}
	}

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

		// sign
		sign("older version", api.SignRequest{KID: kidA1, PayloadB3: payload}, 409, api.CodeConflict),
		sign("absent version", api.SignRequest{KID: nameA + "#v9", PayloadB3: payload}, 404, api.CodeNotFound),
		sign("absent key", api.SignRequest{KID: absent, PayloadB3: payload}, 404, api.CodeNotFound),
		sign("kid wrong type", `{"kid":1,"payload_b3":"`+payload+`"}`, 400, api.CodeBadRequest),
		sign("kid missing", `{"payload_b3":"`+payload+`"}`, 400, api.CodeBadRequest),
		sign("payload upper case", api.SignRequest{KID: nameA, PayloadB3: strings.ToUpper(payload)}, 400, api.CodeBadRequest),
		sign("payload 63 chars", api.SignRequest{KID: nameA, PayloadB3: payload[:63]}, 400, api.CodeBadRequest),
		sign("payload 65 chars", api.SignRequest{KID: nameA, PayloadB3: payload + "a"}, 400, api.CodeBadRequest),
		sign("payload not hex", api.SignRequest{KID: nameA, PayloadB3: "zz" + payload[2:]}, 400, api.CodeBadRequest),
		sign("payload base64", api.SignRequest{KID: nameA, PayloadB3: base64.StdEncoding.EncodeToString(make([]byte, 32))}, 400, api.CodeBadRequest),
		sign("payload wrong type", `{"kid":"`+nameA+`","payload_b3":[1,2]}`, 400, api.CodeBadRequest),
		sign("payload and message", api.SignRequest{KID: nameA, PayloadB3: payload, MessageB64: "aGk="}, 400, api.CodeBadRequest),
		sign("neither payload nor message", api.SignRequest{KID: nameA}, 400, api.CodeBadRequest),
		sign("message unpadded", api.SignRequest{KID: nameA, MessageB64: "aGk"}, 400, api.CodeBadRequest),
		sign("message url alphabet", api.SignRequest{KID: nameA, MessageB64: "-_8="}, 400, api.CodeBadRequest),
		sign("message newline", api.SignRequest{KID: nameA, MessageB64: "aGVs\nbG8="}, 400, api.CodeBadRequest),
		sign("message trailing bits", api.SignRequest{KID: nameA, MessageB64: "aGl="}, 400, api.CodeBadRequest),
		sign("message over 64 KiB", api.SignRequest{KID: nameA, MessageB64: api.EncodeB64(make([]byte, api.MaxMessage+1))}, 400, api.CodeBadRequest),
		sign("context bad base64", api.SignRequest{KID: nameA, PayloadB3: payload, ContextB64: "%%%"}, 400, api.CodeBadRequest),
		sign("context 256 bytes", api.SignRequest{KID: nameA, PayloadB3: payload, ContextB64: api.EncodeB64(make([]byte, 256))}, 400, api.CodeBadRequest),
		sign("op_id too long", api.SignRequest{KID: nameA, PayloadB3: payload, OpID: strings.Repeat("o", 129)}, 400, api.CodeBadRequest),
		sign("control: payload", signReq, 200, ""),
		sign("control: message of 64 KiB", api.SignRequest{KID: nameA, MessageB64: api.EncodeB64(make([]byte, api.MaxMessage))}, 200, ""),
		sign("control: body of exactly the limit", func() string {
			b := js(signReq)
			return b + strings.Repeat(" ", maxBody-len(b))
		}(), 200, ""),
		sign("body one byte over the limit", func() string {
			b := js(signReq)
			return b + strings.Repeat(" ", maxBody-len(b)+1)
		}(), 413, api.CodeTooLarge),
		hostileRow{name: "sign/key-prefix token", method: "POST", path: "/v1/kms/sign", body: signReq, status: 403, code: api.CodeNoCapability,
			token: h.mint(t, captoken.Restrictions{KeyPrefix: "acme/other/"})},
		hostileRow{name: "sign/alg-limited token", method: "POST", path: "/v1/kms/sign", body: signReq, status: 403, code: api.CodeNoCapability,
			token: h.mint(t, captoken.Restrictions{Algs: []string{"ml-dsa-65"}})},
		hostileRow{name: "sign/other tenant token on its own key control", method: "POST", path: "/v1/kms/sign", body: api.SignRequest{KID: nameB, PayloadB3: payload}, token: otherTenant, status: 200},

		// verify
		verify("absent key", api.VerifyRequest{KID: absent, PayloadB3: payload, Sigs: sig.Sigs}, 404, api.CodeNotFound),
		verify("absent version", api.VerifyRequest{KID: nameA + "#v9", PayloadB3: payload, Sigs: sig.Sigs}, 404, api.CodeNotFound),
		verify("sigs missing", api.VerifyRequest{KID: nameA, PayloadB3: payload}, 400, api.CodeBadRequest),
		verify("sigs empty", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":[]}`, 400, api.CodeBadRequest),
		verify("five sigs", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: append(append(append([]api.Signature{}, sig.Sigs...), sig.Sigs...), sig.Sigs[0], sig.Sigs[0], sig.Sigs[0])}, 400, api.CodeBadRequest),
		verify("sigs wrong type", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":"abc"}`, 400, api.CodeBadRequest),
		verify("sig wrong type", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":[1]}`, 400, api.CodeBadRequest),
		verify("sig unknown field", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":[{"alg":"ed25519","signature_b64":"`+zeroSig+`","x":1}]}`, 400, api.CodeBadRequest),
		verify("sig alg unknown", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "rsa", SignatureB64: zeroSig}}}, 400, api.CodeBadRequest),
		verify("sig alg of another kind", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ml-dsa-65", SignatureB64: zeroSig}}}, 400, api.CodeBadRequest),
		verify("two sigs for a single key", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{sig.Sigs[0], sig.Sigs[0]}}, 400, api.CodeBadRequest),
		verify("sig unpadded", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: strings.TrimRight(zeroSig, "=")}}}, 400, api.CodeBadRequest),
		verify("sig url alphabet", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: strings.NewReplacer("+", "-", "/", "_").Replace(sig.Sigs[0].SignatureB64) + "-_"}}}, 400, api.CodeBadRequest),
		verify("sig newline", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: zeroSig[:40] + "\n" + zeroSig[40:]}}}, 400, api.CodeBadRequest),
		verify("payload upper case", api.VerifyRequest{KID: nameA, PayloadB3: strings.ToUpper(payload), Sigs: sig.Sigs}, 400, api.CodeBadRequest),
		verify("payload 63 chars", api.VerifyRequest{KID: nameA, PayloadB3: payload[:63], Sigs: sig.Sigs}, 400, api.CodeBadRequest),
		verify("payload 65 chars", api.VerifyRequest{KID: nameA, PayloadB3: payload + "0", Sigs: sig.Sigs}, 400, api.CodeBadRequest),
		verify("message bad base64", api.VerifyRequest{KID: nameA, MessageB64: "a", Sigs: sig.Sigs}, 400, api.CodeBadRequest),
		verify("payload and message", api.VerifyRequest{KID: nameA, PayloadB3: payload, MessageB64: "aGk=", Sigs: sig.Sigs}, 400, api.CodeBadRequest),
		verify("context bad base64", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, ContextB64: "a==="}, 400, api.CodeBadRequest),
		verify("policy mode unknown", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, Policy: &api.VerifyPolicy{Mode: "xor"}}, 400, api.CodeBadRequest),
		verify("policy mode upper case", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, Policy: &api.VerifyPolicy{Mode: "AND"}}, 400, api.CodeBadRequest),
		verify("policy pq_only on ed25519", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, Policy: &api.VerifyPolicy{Mode: "pq_only"}}, 400, api.CodeUnsupported),
		verify("policy wrong type", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":[],"policy":"and"}`, 400, api.CodeBadRequest),
		verify("policy unknown field", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":[],"policy":{"mode":"and","floor":"or"}}`, 400, api.CodeBadRequest),
		hostileRow{name: "verify/control: good signature", method: "POST", path: "/v1/kms/verify", token: h.Admin, body: verifyReq, status: 200,
			check: wantVerified(true)},
		hostileRow{name: "verify/control: good signature with the kid that signed", method: "POST", path: "/v1/kms/verify", token: h.Admin,
			body: api.VerifyRequest{KID: kidA2, PayloadB3: payload, Sigs: sig.Sigs}, status: 200, check: wantVerified(true)},
		hostileRow{name: "verify/wrong signature is 200 ok false", method: "POST", path: "/v1/kms/verify", token: h.Admin,
			body: api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: zeroSig}}}, status: 200, check: wantVerified(false)},
		hostileRow{name: "verify/signature of v2 under v1 is ok false", method: "POST", path: "/v1/kms/verify", token: h.Admin,
			body: api.VerifyRequest{KID: kidA1, PayloadB3: payload, Sigs: sig.Sigs}, status: 200, check: wantVerified(false)},
		hostileRow{name: "verify/other payload is ok false", method: "POST", path: "/v1/kms/verify", token: h.Admin,
			body: api.VerifyRequest{KID: nameA, PayloadB3: strings.Repeat("cd", 32), Sigs: sig.Sigs}, status: 200, check: wantVerified(false)},

		// sign/batch
		signBatch("items missing", `{}`, 400, api.CodeBadRequest),
		signBatch("items empty", `{"items":[]}`, 400, api.CodeBadRequest),
		signBatch("items null", `{"items":null}`, 400, api.CodeBadRequest),
		signBatch("items wrong type", `{"items":{"kid":"x"}}`, 400, api.CodeBadRequest),
		signBatch("item wrong type", `{"items":[1]}`, 400, api.CodeBadRequest),
		signBatch("item unknown field", `{"items":[{"kid":"`+nameA+`","payload_b3":"`+payload+`","x":1}]}`, 400, api.CodeBadRequest),
		signBatch("1001 items", api.SignBatchRequest{Items: make([]api.SignRequest, api.MaxBatch+1)}, 413, api.CodeTooLarge),
		signBatch("1001 good items", api.SignBatchRequest{Items: func() []api.SignRequest {
			s := make([]api.SignRequest, api.MaxBatch+1)
			for i := range s {
				s[i] = signReq
			}
			return s
		}()}, 413, api.CodeTooLarge),
		signBatch("1000 bad items", api.SignBatchRequest{Items: make([]api.SignRequest, api.MaxBatch)}, 200, "", codes(api.MaxBatch, api.CodeBadRequest)...),
		signBatch("per-item errors", api.SignBatchRequest{Items: []api.SignRequest{
			{KID: kidA1, PayloadB3: payload},
			{KID: absent, PayloadB3: payload},
			{KID: nameA, PayloadB3: "AB"},
			{KID: nameA, MessageB64: "aGk"},
			{KID: nameA, PayloadB3: payload, ContextB64: "-_-_"},
			signReq,
		}}, 200, "", api.CodeConflict, api.CodeNotFound, api.CodeBadRequest, api.CodeBadRequest, api.CodeBadRequest, ""),

		// verify/batch
		verifyBatch("items missing", `{}`, 400, api.CodeBadRequest),
		verifyBatch("items empty", `{"items":[]}`, 400, api.CodeBadRequest),
		verifyBatch("items wrong type", `{"items":"x"}`, 400, api.CodeBadRequest),
		verifyBatch("item sigs wrong type", `{"items":[{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":{}}]}`, 400, api.CodeBadRequest),
		verifyBatch("1001 items", api.VerifyBatchRequest{Items: make([]api.VerifyRequest, api.MaxBatch+1)}, 413, api.CodeTooLarge),
		verifyBatch("1000 bad items", api.VerifyBatchRequest{Items: make([]api.VerifyRequest, api.MaxBatch)}, 200, "", codes(api.MaxBatch, api.CodeBadRequest)...),
		verifyBatch("per-item errors", api.VerifyBatchRequest{Items: []api.VerifyRequest{
			{KID: absent, PayloadB3: payload, Sigs: sig.Sigs},
			{KID: nameA, PayloadB3: payload},
			{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: "***"}}},
			{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, Policy: &api.VerifyPolicy{Mode: "pq_only"}},
			verifyReq,
		}}, 200, "", api.CodeNotFound, api.CodeBadRequest, api.CodeBadRequest, api.CodeUnsupported, ""),

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

	// wrap, unwrap, encrypt, decrypt, and sign/verify with the other
	// algorithms of the table.
	wrap := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "wrap/" + name, method: "POST", path: "/v1/kms/wrap", token: h.Admin, body: body, status: status, code: code}
	}
	unwrap := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "unwrap/" + name, method: "POST", path: "/v1/kms/unwrap", token: h.Admin, body: body, status: status, code: code}
	}
	encrypt := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "encrypt/" + name, method: "POST", path: "/v1/kms/encrypt", token: h.Admin, body: body, status: status, code: code}
	}
	decrypt := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "decrypt/" + name, method: "POST", path: "/v1/kms/decrypt", token: h.Admin, body: body, status: status, code: code}
	}
	withToken := func(r hostileRow, token string) hostileRow { r.token = token; return r }
	withCheck := func(r hostileRow, check func(t *testing.T, r response)) hostileRow { r.check = check; return r }
	unwrapEnv := func(name string, env []byte, aadB64 string, status int, code api.Code) hostileRow {
		return unwrap(name, api.UnwrapRequest{WrappedB64: api.EncodeB64(env), AADB64: aadB64}, status, code)
	}
	decryptCT := func(name string, ct []byte, aadB64 string, status int, code api.Code) hostileRow {
		return decrypt(name, api.DecryptRequest{CiphertextB64: api.EncodeB64(ct), AADB64: aadB64}, status, code)
	}
	wrapped := func(kid string, generated bool) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var out api.WrapResponse
			r.decodeInto(t, &out)
			if out.KID != kid || out.Alg != "mlkem768-x25519" || out.WrappedB64 == "" || (out.PlaintextKeyB64 != "") != generated {
				t.Errorf("wrap answered kid %s alg %s, plaintext given %v; want %s, %v", out.KID, out.Alg, out.PlaintextKeyB64 != "", kid, generated)
			}
		}
	}
	unwrapped := func(kid, alg string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var out api.UnwrapResponse
			r.decodeInto(t, &out)
			if out.KID != kid || out.Alg != alg || len(mustB64(t, out.PlaintextKeyB64)) != 32 {
				t.Errorf("unwrap answered kid %s alg %s; want %s %s and a 32-byte key", out.KID, out.Alg, kid, alg)
			}
		}
	}
	encrypted := func(kid string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var out api.EncryptResponse
			r.decodeInto(t, &out)
			if out.KID != kid || out.CiphertextB64 == "" {
				t.Errorf("encrypt answered kid %s, want %s", out.KID, kid)
			}
		}
	}
	decrypted := func(kid, pt string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var out api.DecryptResponse
			r.decodeInto(t, &out)
			if out.KID != kid || string(mustB64(t, out.PlaintextB64)) != pt {
				t.Errorf("decrypt answered kid %s, plaintext %q; want %s %q", out.KID, mustB64(t, out.PlaintextB64), kid, pt)
			}
		}
	}
	verifiedHybrid := func(ok bool, mode string, checked ...string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var out api.VerifyResponse
			r.decodeInto(t, &out)
			if out.OK != ok || out.Details.SatisfiedMode != mode || strings.Join(out.Details.Checked, ",") != strings.Join(checked, ",") {
				t.Errorf("verify answered %+v; want ok %v, satisfied_mode %q, checked %v", out, ok, mode, checked)
			}
		}
	}
	b64n := func(n int) string { return api.EncodeB64(make([]byte, n)) }
	nW, nE := len(nameW), len(nameE) // header offsets: envelope enc at 14+n, ciphertext nonce at 10+n

	for what, k := range badKIDs {
		add(
			wrap("bad kid: "+what, api.WrapRequest{KID: k, Size: 32}, 400, api.CodeBadRequest),
			encrypt("bad kid: "+what, api.EncryptRequest{KID: k, PlaintextB64: "aGk="}, 400, api.CodeBadRequest),
		)
	}

	add(
		// wrap
		wrap("plaintext and size", api.WrapRequest{KID: nameW, PlaintextKeyB64: b64n(32), Size: 32}, 400, api.CodeBadRequest),
		wrap("neither plaintext nor size", api.WrapRequest{KID: nameW}, 400, api.CodeBadRequest),
		wrap("size 0", `{"kid":"`+nameW+`","size":0}`, 400, api.CodeBadRequest),
		wrap("size -1", api.WrapRequest{KID: nameW, Size: -1}, 400, api.CodeBadRequest),
		wrap("size 1025", api.WrapRequest{KID: nameW, Size: api.MaxDataKey + 1}, 400, api.CodeBadRequest),
		wrap("size 2^31", api.WrapRequest{KID: nameW, Size: 1 << 31}, 400, api.CodeBadRequest),
		wrap("size over int64", `{"kid":"`+nameW+`","size":9223372036854775808}`, 400, api.CodeBadRequest),
		wrap("size fractional", `{"kid":"`+nameW+`","size":31.5}`, 400, api.CodeBadRequest),
		wrap("size exponent", `{"kid":"`+nameW+`","size":3.2e1}`, 400, api.CodeBadRequest),
		wrap("size string", `{"kid":"`+nameW+`","size":"32"}`, 400, api.CodeBadRequest),
		wrap("size null and no plaintext", `{"kid":"`+nameW+`","size":null}`, 400, api.CodeBadRequest),
		wrap("plaintext empty", `{"kid":"`+nameW+`","plaintext_key_b64":""}`, 400, api.CodeBadRequest),
		wrap("plaintext 1025 bytes", api.WrapRequest{KID: nameW, PlaintextKeyB64: b64n(api.MaxDataKey + 1)}, 400, api.CodeBadRequest),
		wrap("plaintext 1 MiB", api.WrapRequest{KID: nameW, PlaintextKeyB64: b64n(600 << 10)}, 400, api.CodeBadRequest),
		wrap("plaintext bad base64", api.WrapRequest{KID: nameW, PlaintextKeyB64: "%%%%"}, 400, api.CodeBadRequest),
		wrap("plaintext unpadded", api.WrapRequest{KID: nameW, PlaintextKeyB64: "aGk"}, 400, api.CodeBadRequest),
		wrap("plaintext url alphabet", api.WrapRequest{KID: nameW, PlaintextKeyB64: "-_8="}, 400, api.CodeBadRequest),
		wrap("plaintext newline", api.WrapRequest{KID: nameW, PlaintextKeyB64: "aGVs\nbG8="}, 400, api.CodeBadRequest),
		wrap("plaintext wrong type", `{"kid":"`+nameW+`","plaintext_key_b64":[1]}`, 400, api.CodeBadRequest),
		wrap("aad bad base64", api.WrapRequest{KID: nameW, Size: 32, AADB64: "a==="}, 400, api.CodeBadRequest),
		wrap("aad unpadded", api.WrapRequest{KID: nameW, Size: 32, AADB64: "aGk"}, 400, api.CodeBadRequest),
		wrap("aad over 8 KiB", api.WrapRequest{KID: nameW, Size: 32, AADB64: b64n(api.MaxAAD + 1)}, 400, api.CodeBadRequest),
		wrap("kid missing", `{"size":32}`, 400, api.CodeBadRequest),
		wrap("signing key", api.WrapRequest{KID: nameA, Size: 32}, 400, api.CodeUnsupported),
		wrap("hybrid signing key", api.WrapRequest{KID: nameC, Size: 32}, 400, api.CodeUnsupported),
		wrap("aes key", api.WrapRequest{KID: nameE, PlaintextKeyB64: b64n(32)}, 400, api.CodeUnsupported),
		wrap("older version", api.WrapRequest{KID: kidW1, Size: 32}, 409, api.CodeConflict),
		wrap("older version with plaintext", api.WrapRequest{KID: kidW1, PlaintextKeyB64: b64n(32)}, 409, api.CodeConflict),
		wrap("absent version", api.WrapRequest{KID: nameW + "#v9", Size: 32}, 404, api.CodeNotFound),
		wrap("absent key", api.WrapRequest{KID: absentW, Size: 32}, 404, api.CodeNotFound),
		withToken(wrap("acme-only token, other's key", api.WrapRequest{KID: nameWB, Size: 32}, 403, api.CodeNoCapability), acmeOnly),
		withToken(wrap("key-prefix token", wrapReq, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{KeyPrefix: "acme/other/"})),
		withToken(wrap("alg-limited token", wrapReq, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{Algs: []string{"x25519", "ml-kem-768"}})),
		withCheck(wrap("control: size", wrapReq, 200, ""), wrapped(kidW2, true)),
		withCheck(wrap("control: size 1 with the current kid", api.WrapRequest{KID: kidW2, Size: 1}, 200, ""), wrapped(kidW2, true)),
		withCheck(wrap("control: size 1024", api.WrapRequest{KID: nameW, Size: api.MaxDataKey}, 200, ""), wrapped(kidW2, true)),
		withCheck(wrap("control: plaintext of 1024 bytes and 8 KiB aad", api.WrapRequest{KID: nameW, PlaintextKeyB64: b64n(api.MaxDataKey), AADB64: b64n(api.MaxAAD)}, 200, ""), wrapped(kidW2, false)),
		withCheck(wrap("control: plaintext of 1 byte", api.WrapRequest{KID: nameW, PlaintextKeyB64: "AA=="}, 200, ""), wrapped(kidW2, false)),
		withToken(wrap("control: other tenant token on its own key", api.WrapRequest{KID: nameWB, Size: 16}, 200, ""), otherTenant),

		// unwrap
		unwrapEnv("garbage", []byte("garbage, not an envelope"), aad, 400, api.CodeBadRequest),
		unwrap("bad base64", api.UnwrapRequest{WrappedB64: "%%%%"}, 400, api.CodeBadRequest),
		unwrap("newline inside", api.UnwrapRequest{WrappedB64: api.EncodeB64(envW)[:40] + "\n" + api.EncodeB64(envW)[40:], AADB64: aad}, 400, api.CodeBadRequest),
		unwrap("leading space", api.UnwrapRequest{WrappedB64: " " + api.EncodeB64(envW), AADB64: aad}, 400, api.CodeBadRequest),
		unwrap("url alphabet", api.UnwrapRequest{WrappedB64: base64.URLEncoding.EncodeToString(envW) + "-_==", AADB64: aad}, 400, api.CodeBadRequest),
		unwrap("wrapped missing", `{"aad_b64":"`+aad+`"}`, 400, api.CodeBadRequest),
		unwrap("wrapped wrong type", `{"wrapped_b64":42}`, 400, api.CodeBadRequest),
		unwrap("kid given", `{"kid":"`+kidW2+`","wrapped_b64":"`+api.EncodeB64(envW)+`"}`, 400, api.CodeBadRequest),
		unwrapEnv("truncated to the magic", envW[:4], aad, 400, api.CodeBadRequest),
		unwrapEnv("truncated in the name", envW[:6+nW/2], aad, 400, api.CodeBadRequest),
		unwrapEnv("truncated to the header", envW[:12+nW], aad, 400, api.CodeBadRequest),
		unwrapEnv("truncated in the enc", envW[:14+nW+10], aad, 400, api.CodeBadRequest),
		unwrapEnv("truncated by one byte", envW[:len(envW)-1], aad, 400, api.CodeBadRequest),
		unwrapEnv("tag cut off", envW[:len(envW)-16], aad, 400, api.CodeBadRequest),
		unwrapEnv("trailing byte", append(bytes.Clone(envW), 0), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the magic", flip(envW, 0), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the format version", flip(envW, 3), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the KEM id", flip(envW, 11+nW), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the enc", flip(envW, 14+nW+7), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the ciphertext", flip(envW, -20), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the tag", flip(envW, -1), aad, 400, api.CodeBadRequest),
		unwrapEnv("wrong aad", envW, api.EncodeB64([]byte("order=43")), 400, api.CodeBadRequest),
		unwrapEnv("aad missing", envW, "", 400, api.CodeBadRequest),
		unwrapEnv("aad given where none was", envWB, aad, 400, api.CodeBadRequest),
		unwrapEnv("aad bad base64", envW, "a===", 400, api.CodeBadRequest),
		unwrapEnv("aad over 8 KiB", envW, b64n(api.MaxAAD+1), 400, api.CodeBadRequest),
		unwrapEnv("relabelled to the older version", relabel(envW, nameW, 1), aad, 400, api.CodeBadRequest),
		unwrapEnv("v1 envelope relabelled to v2", relabel(envW1, nameW, 2), aad, 400, api.CodeBadRequest),
		unwrapEnv("relabelled to version 0", relabel(envW, nameW, 0), aad, 400, api.CodeBadRequest),
		unwrapEnv("relabelled to an absent version", relabel(envW, nameW, 9), aad, 404, api.CodeNotFound),
		unwrapEnv("relabelled to an absent key", relabel(envW, absentW, 2), aad, 404, api.CodeNotFound),
		unwrapEnv("relabelled to a signing key", relabel(envW, nameA, 2), aad, 400, api.CodeUnsupported),
		unwrapEnv("relabelled to an aes key", relabel(envW, nameE, 2), aad, 400, api.CodeUnsupported),
		unwrapEnv("relabelled to an invalid key name", relabel(envW, "ACME/payments/mlkem768-x25519/"+uuidA, 2), aad, 400, api.CodeBadRequest),
		unwrapEnv("relabelled to a kid", relabel(envW, kidW2, 2), aad, 400, api.CodeBadRequest),
		unwrapEnv("a ciphertext", ctE, aad, 400, api.CodeBadRequest),
		withToken(unwrapEnv("acme-only token, other's envelope", envWB, "", 403, api.CodeNoCapability), acmeOnly),
		withToken(unwrapEnv("acme-only token, envelope relabelled to other's key", relabel(envW, nameWB, 1), aad, 403, api.CodeNoCapability), acmeOnly),
		withToken(unwrapEnv("alg-limited token", envW, aad, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{Algs: []string{"x25519"}})),
		withCheck(unwrap("control", unwrapReq, 200, ""), unwrapped(kidW2, "mlkem768-x25519")),
		withCheck(unwrapEnv("control: v1 envelope after rotation", envW1, aad, 200, ""), unwrapped(kidW1, "mlkem768-x25519")),
		withCheck(withToken(unwrapEnv("control: other tenant token on its own envelope", envWB, "", 200, ""), otherTenant), unwrapped(kidWB, "x25519")),

		// encrypt
		encrypt("KEM key", api.EncryptRequest{KID: nameW, PlaintextB64: "aGk="}, 400, api.CodeUnsupported),
		encrypt("x25519 key", api.EncryptRequest{KID: nameWB, PlaintextB64: "aGk="}, 400, api.CodeUnsupported),
		encrypt("signing key", api.EncryptRequest{KID: nameA, PlaintextB64: "aGk="}, 400, api.CodeUnsupported),
		encrypt("ml-dsa key", api.EncryptRequest{KID: nameM, PlaintextB64: "aGk="}, 400, api.CodeUnsupported),
		encrypt("plaintext over 64 KiB", api.EncryptRequest{KID: nameE, PlaintextB64: b64n(api.MaxPlaintext + 1)}, 400, api.CodeBadRequest),
		encrypt("plaintext 64 KiB + 2", api.EncryptRequest{KID: nameE, PlaintextB64: b64n(api.MaxPlaintext + 2)}, 400, api.CodeBadRequest),
		encrypt("plaintext 700 KiB", api.EncryptRequest{KID: nameE, PlaintextB64: b64n(700 << 10)}, 400, api.CodeBadRequest),
		encrypt("plaintext bad base64", api.EncryptRequest{KID: nameE, PlaintextB64: "%%%%"}, 400, api.CodeBadRequest),
		encrypt("plaintext unpadded", api.EncryptRequest{KID: nameE, PlaintextB64: "aGk"}, 400, api.CodeBadRequest),
		encrypt("plaintext trailing bits", api.EncryptRequest{KID: nameE, PlaintextB64: "aGl="}, 400, api.CodeBadRequest),
		encrypt("plaintext wrong type", `{"kid":"`+nameE+`","plaintext_b64":1}`, 400, api.CodeBadRequest),
		encrypt("aad bad base64", api.EncryptRequest{KID: nameE, PlaintextB64: "aGk=", AADB64: "a==="}, 400, api.CodeBadRequest),
		encrypt("aad over 8 KiB", api.EncryptRequest{KID: nameE, PlaintextB64: "aGk=", AADB64: b64n(api.MaxAAD + 1)}, 400, api.CodeBadRequest),
		encrypt("kid missing", `{"plaintext_b64":"aGk="}`, 400, api.CodeBadRequest),
		encrypt("older version", api.EncryptRequest{KID: kidE1, PlaintextB64: "aGk="}, 409, api.CodeConflict),
		encrypt("absent version", api.EncryptRequest{KID: nameE + "#v9", PlaintextB64: "aGk="}, 404, api.CodeNotFound),
		encrypt("absent key", api.EncryptRequest{KID: absentE, PlaintextB64: "aGk="}, 404, api.CodeNotFound),
		withToken(encrypt("acme-only token, other's key", api.EncryptRequest{KID: nameEB, PlaintextB64: "aGk="}, 403, api.CodeNoCapability), acmeOnly),
		withToken(encrypt("alg-limited token", encryptReq, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{Algs: []string{"mlkem768-x25519"}})),
		withCheck(encrypt("control", encryptReq, 200, ""), encrypted(kidE2)),
		withCheck(encrypt("control: 64 KiB and 8 KiB aad with the current kid", api.EncryptRequest{KID: kidE2, PlaintextB64: b64n(api.MaxPlaintext), AADB64: b64n(api.MaxAAD)}, 200, ""), encrypted(kidE2)),

		// decrypt
		decryptCT("garbage", []byte("garbage, not a ciphertext"), aad, 400, api.CodeBadRequest),
		decrypt("bad base64", api.DecryptRequest{CiphertextB64: "%%%%"}, 400, api.CodeBadRequest),
		decrypt("ciphertext missing", `{"aad_b64":"`+aad+`"}`, 400, api.CodeBadRequest),
		decrypt("kid given", `{"kid":"`+kidE2+`","ciphertext_b64":"`+api.EncodeB64(ctE)+`"}`, 400, api.CodeBadRequest),
		decryptCT("truncated to the magic", ctE[:4], aad, 400, api.CodeBadRequest),
		decryptCT("truncated to the header", ctE[:10+nE], aad, 400, api.CodeBadRequest),
		decryptCT("truncated in the nonce", ctE[:10+nE+6], aad, 400, api.CodeBadRequest),
		decryptCT("truncated by one byte", ctE[:len(ctE)-1], aad, 400, api.CodeBadRequest),
		decryptCT("tag cut off", ctE[:len(ctE)-16], aad, 400, api.CodeBadRequest),
		decryptCT("trailing byte", append(bytes.Clone(ctE), 0), aad, 400, api.CodeBadRequest),
		decryptCT("bit flipped in the magic", flip(ctE, 0), aad, 400, api.CodeBadRequest),
		decryptCT("bit flipped in the nonce", flip(ctE, 10+nE+3), aad, 400, api.CodeBadRequest),
		decryptCT("bit flipped in the ciphertext", flip(ctE, 10+nE+12), aad, 400, api.CodeBadRequest),
		decryptCT("bit flipped in the tag", flip(ctE, -1), aad, 400, api.CodeBadRequest),
		decryptCT("wrong aad", ctE, api.EncodeB64([]byte("order=43")), 400, api.CodeBadRequest),
		decryptCT("aad missing", ctE, "", 400, api.CodeBadRequest),
		decryptCT("aad given where none was", ctEB, aad, 400, api.CodeBadRequest),
		decryptCT("aad bad base64", ctE, "a===", 400, api.CodeBadRequest),
		decryptCT("aad over 8 KiB", ctE, b64n(api.MaxAAD+1), 400, api.CodeBadRequest),
		decryptCT("relabelled to the older version", relabel(ctE, nameE, 1), aad, 400, api.CodeBadRequest),
		decryptCT("v1 ciphertext relabelled to v2", relabel(ctE1, nameE, 2), aad, 400, api.CodeBadRequest),
		decryptCT("relabelled to an absent version", relabel(ctE, nameE, 9), aad, 404, api.CodeNotFound),
		decryptCT("relabelled to an absent key", relabel(ctE, absentE, 2), aad, 404, api.CodeNotFound),
		decryptCT("relabelled to a KEM key", relabel(ctE, nameW, 2), aad, 400, api.CodeUnsupported),
		decryptCT("relabelled to a signing key", relabel(ctE, nameA, 2), aad, 400, api.CodeUnsupported),
		decryptCT("an envelope", envW, aad, 400, api.CodeBadRequest),
		withToken(decryptCT("acme-only token, other's ciphertext", ctEB, "", 403, api.CodeNoCapability), acmeOnly),
		withToken(decryptCT("acme-only token, ciphertext relabelled to other's key", relabel(ctE, nameEB, 1), aad, 403, api.CodeNoCapability), acmeOnly),
		withToken(decryptCT("alg-limited token", ctE, aad, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{Algs: []string{"ed25519"}})),
		withCheck(decrypt("control", decryptReq, 200, ""), decrypted(kidE2, "hi")),
		withCheck(decryptCT("control: v1 ciphertext after rotation", ctE1, aad, 200, ""), decrypted(kidE1, "hi")),
		withCheck(withToken(decryptCT("control: other tenant token on its own ciphertext", ctEB, "", 200, ""), otherTenant), decrypted(kidEB, "hi")),

		// sign and verify with keys of other kinds and algorithms
		sign("KEM key", api.SignRequest{KID: nameW, PayloadB3: payload}, 400, api.CodeUnsupported),
		sign("x25519 key", api.SignRequest{KID: nameWB, PayloadB3: payload}, 400, api.CodeUnsupported),
		sign("aes key", api.SignRequest{KID: nameE, PayloadB3: payload}, 400, api.CodeUnsupported),
		sign("context on ed25519", api.SignRequest{KID: nameA, PayloadB3: payload, ContextB64: "Y3R4"}, 400, api.CodeUnsupported),
		sign("context 256 bytes on ml-dsa-65", api.SignRequest{KID: nameM, PayloadB3: payload, ContextB64: b64n(api.MaxContext + 1)}, 400, api.CodeBadRequest),
		sign("context 256 bytes on the hybrid", api.SignRequest{KID: nameC, PayloadB3: payload, ContextB64: b64n(api.MaxContext + 1)}, 400, api.CodeBadRequest),
		sign("control: context 255 bytes on ml-dsa-65", api.SignRequest{KID: nameM, PayloadB3: payload, ContextB64: ctx255}, 200, ""),
		sign("control: hybrid", api.SignRequest{KID: nameC, MessageB64: "aGk="}, 200, ""),
		verify("KEM key", api.VerifyRequest{KID: nameW, PayloadB3: payload, Sigs: sig.Sigs}, 400, api.CodeUnsupported),
		verify("context on ed25519", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, ContextB64: "Y3R4"}, 400, api.CodeUnsupported),
		verify("context 256 bytes on ml-dsa-65", api.VerifyRequest{KID: nameM, PayloadB3: payload, Sigs: sigMOut.Sigs, ContextB64: b64n(api.MaxContext + 1)}, 400, api.CodeBadRequest),
		verify("policy mode bogus on the hybrid", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs, Policy: &api.VerifyPolicy{Mode: "bogus"}}, 400, api.CodeBadRequest),
		verify("policy mode empty on the hybrid", `{"kid":"`+nameC+`","payload_b3":"`+payload+`","sigs":`+js(sigC.Sigs)+`,"policy":{}}`, 400, api.CodeBadRequest),
		verify("policy or under the floor and", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs, Policy: &api.VerifyPolicy{Mode: "or"}}, 400, api.CodeUnsupported),
		verify("policy pq_only on ed25519 with its kid", api.VerifyRequest{KID: kidA2, PayloadB3: payload, Sigs: sig.Sigs, Policy: &api.VerifyPolicy{Mode: "pq_only"}}, 400, api.CodeUnsupported),
		verify("hybrid duplicate ml-dsa component", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[0], sigC.Sigs[0]}}, 400, api.CodeBadRequest),
		verify("hybrid duplicate ed25519 component", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[1], sigC.Sigs[1]}}, 400, api.CodeBadRequest),
		verify("hybrid duplicate component, pq_only", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[1], sigC.Sigs[1]}, Policy: &api.VerifyPolicy{Mode: "pq_only"}}, 400, api.CodeBadRequest),
		verify("hybrid three components", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[0], sigC.Sigs[1], sigC.Sigs[0]}}, 400, api.CodeBadRequest),
		verify("hybrid component of another alg", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[0], {Alg: "ml-dsa-44", SignatureB64: zeroSig}}}, 400, api.CodeBadRequest),
		verify("hybrid named as one alg", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{{Alg: "mldsa65-ed25519", SignatureB64: sigC.Sigs[0].SignatureB64}}}, 400, api.CodeBadRequest),
		withCheck(verify("control: hybrid without policy", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs}, 200, ""), verifiedHybrid(true, "and", "ml-dsa-65", "ed25519")),
		withCheck(verify("control: hybrid and", api.VerifyRequest{KID: kidC, PayloadB3: payload, Sigs: sigC.Sigs, Policy: &api.VerifyPolicy{Mode: "and"}}, 200, ""), verifiedHybrid(true, "and", "ml-dsa-65", "ed25519")),
		withCheck(verify("control: hybrid pq_only", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs, Policy: &api.VerifyPolicy{Mode: "pq_only"}}, 200, ""), verifiedHybrid(true, "pq_only", "ml-dsa-65")),
		withCheck(verify("hybrid and without the ed25519 component is ok false", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs[:1]}, 200, ""), verifiedHybrid(false, "", "ml-dsa-65")),
		withCheck(verify("hybrid and with a zero ed25519 component is ok false", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[0], {Alg: "ed25519", SignatureB64: zeroSig}}}, 200, ""), verifiedHybrid(false, "", "ml-dsa-65", "ed25519")),
		withCheck(verify("hybrid pq_only with only the ed25519 component is ok false", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs[1:], Policy: &api.VerifyPolicy{Mode: "pq_only"}}, 200, ""), verifiedHybrid(false, "")),
		withCheck(verify("hybrid component alone under ed25519 key is ok false", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sigC.Sigs[1:]}, 200, ""), wantVerified(false)),
		withCheck(verify("control: ml-dsa-65 with context", api.VerifyRequest{KID: nameM, PayloadB3: payload, Sigs: sigMOut.Sigs, ContextB64: ctx255}, 200, ""), verifiedHybrid(true, "", "ml-dsa-65")),
		withCheck(verify("ml-dsa-65 without its context is ok false", api.VerifyRequest{KID: nameM, PayloadB3: payload, Sigs: sigMOut.Sigs}, 200, ""), verifiedHybrid(false, "", "ml-dsa-65")),
	)

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

	// Create rows whose token is what is wrong (a token that may create, but
	// not this key).
	for i := range rows {
		switch rows[i].name {
		case "create/key-prefix token for another purpose":
			rows[i].token = h.mint(t, captoken.Restrictions{KeyPrefix: "acme/other/"})
			rows[i].body, rows[i].status, rows[i].code = routes[0].body, 403, api.CodeNoCapability
		case "create/alg-limited token":
			rows[i].token = h.mint(t, captoken.Restrictions{Algs: []string{"ml-dsa-65"}})
			rows[i].body, rows[i].status, rows[i].code = routes[0].body, 403, api.CodeNoCapability
		}
	}

	before := h.snapshot(t)
	seen := map[string]bool{}
	for i, row := range rows {
		if seen[row.name] {
			t.Fatalf("duplicate row name %q", row.name)
		}
		seen[row.name] = true
		if row.status == 0 || (row.status >= 300 && row.code == "") {
			t.Fatalf("row %q has no expectation", row.name)
		}
		t.Run(row.name, func(t *testing.T) {
			corr := fmt.Sprintf("corr-%d", i)
			r := h.do(t, row.method, row.path, row.token, row.body, append([]string{"X-Corr-Id", corr}, row.hdr...)...)
			checkCommon(t, r, corr)
			if r.Status != row.status {
				t.Fatalf("status = %d, want %d: %.300s", r.Status, row.status, r.Raw)
			}
			if r.Status >= 300 {
				checkEnvelope(t, r, row.code)
			}
			if row.status == http.StatusMethodNotAllowed {
				if got := r.Header.Get("Allow"); got != row.allow {
					t.Errorf("Allow = %q, want %q", got, row.allow)
				}
			} else if got := r.Header.Get("Allow"); got != "" {
				t.Errorf("unexpected Allow %q", got)
			}
			if row.items != nil {
				checkBatchSlots(t, r, row.items)
			}
			if row.check != nil {
				row.check(t, r)
			}
		})
	}
	// Nothing in the table may change the store, with one exception: a
	// successful encrypt (a control row) takes an encryption count, and the
	// keystore reserves counts in blocks under c/<kid>; a reservation is
	// bookkeeping, not a change of any key. The setup above already made
	// the first encryption with each current version, so no reservation is
	// expected here, but one is allowed: the c/ records are compared apart
	// and, when one moved, the store revision (which any write moves) is
	// not compared; every other record still is, with its own revision.
	after := h.snapshot(t)
	if !before.equal(after) {
		b, a := before.withoutCounters(), after.withoutCounters()
		if !reflect.DeepEqual(b.Items, a.Items) || reflect.DeepEqual(before.counters(), after.counters()) {
			t.Errorf("the hostile table changed the store (revision %d → %d): %v", before.Revision, after.Revision, before.diff(after))
		}
		for _, it := range after.counters() {
			if !strings.HasPrefix(it.Key, "c/"+nameE+"#v") && !strings.HasPrefix(it.Key, "c/"+nameEB+"#v") {
				t.Errorf("an encryption counter for a key no control row encrypted with: %s", it.Key)
			}
		}
	}
	t.Logf("%d rows", len(rows))
}

var requestIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)

// checkCommon checks what every answer carries: a request id, the echoed
// correlation id, and never a 500 or a redirect.
func checkCommon(t *testing.T, r response, corr string) {
	t.Helper()
	if r.Status >= 500 && r.Status != http.StatusServiceUnavailable {
		t.Errorf("status %d: %s", r.Status, r.Raw)
	}
	if r.Status >= 300 && r.Status < 400 {
		t.Errorf("redirect %d to %q", r.Status, r.Header.Get("Location"))
	}
	if id := r.Header.Get("X-Request-Id"); !requestIDRE.MatchString(id) {
		t.Errorf("X-Request-Id = %q", id)
	}
	if got := r.Header.Get("X-Corr-Id"); got != corr {
		t.Errorf("X-Corr-Id = %q, want %q echoed", got, corr)
	}
}

func wantVerified(ok bool) func(t *testing.T, r response) {
	return func(t *testing.T, r response) {
		var out api.VerifyResponse
		r.decodeInto(t, &out)
		if out.OK != ok {
			t.Errorf("ok = %v, want %v", out.OK, ok)
		}
		if len(out.Details.Checked) != 1 || out.Details.Checked[0] != "ed25519" {
			t.Errorf("details.checked = %v", out.Details.Checked)
		}
	}
}

// checkBatchSlots checks a 200 batch answer: one slot per item, in order;
// a failed slot is exactly {"error":{"code","message"}} with the wanted
// code; a slot that ran has no error.
func checkBatchSlots(t *testing.T, r response, want []api.Code) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.Raw, &top); err != nil {
		t.Fatalf("batch answer: %v", err)
	}
	var slots []map[string]json.RawMessage
	if err := json.Unmarshal(top["results"], &slots); err != nil {
		t.Fatalf("results: %v: %.300s", err, r.Raw)
	}
	if len(slots) != len(want) {
		t.Fatalf("%d results for %d items", len(slots), len(want))
	}
	allOK := true
	for i, slot := range slots {
		if want[i] == "" {
			if _, ok := slot["error"]; ok {
				t.Errorf("slot %d: unexpected error %s", i, slot["error"])
			}
			if ok, has := slot["ok"]; has && string(ok) != "true" {
				allOK = false
			}
			continue
		}
		allOK = false
		if len(slot) != 1 || slot["error"] == nil {
			t.Errorf("slot %d must be exactly {\"error\":{...}}, got %v", i, keysOf(slot))
			continue
		}
		var e map[string]json.RawMessage
		if err := json.Unmarshal(slot["error"], &e); err != nil || len(e) != 2 || e["code"] == nil || e["message"] == nil {
			t.Errorf("slot %d: error must be exactly {code, message}: %s", i, slot["error"])
			continue
		}
		var ie api.ItemError
		json.Unmarshal(slot["error"], &ie)
		if ie.Code != want[i] || ie.Message == "" {
			t.Errorf("slot %d: code %s (%q), want %s", i, ie.Code, ie.Message, want[i])
		}
	}
	if v, ok := top["all_ok"]; ok && string(v) != fmt.Sprint(allOK) {
		t.Errorf("all_ok = %s, want %v", v, allOK)
	}
}

func keysOf(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestBatchItemsFailIndependently: one bad item among good ones gets
// {"error":{code,message}} in its own slot; the others run, in order.
func TestBatchItemsFailIndependently(t *testing.T) {
	h := newHarness(t)
	kidA := h.createKey(t, "acme", "payments", "ed25519")
	kidB := h.createKey(t, "acme", "billing", "ed25519")
	nameB := strings.TrimSuffix(kidB, "#v1")
	p1, p2 := strings.Repeat("0a", 32), strings.Repeat("0b", 32)
	msg := api.EncodeB64([]byte("hello"))

	r := h.do(t, "POST", "/v1/kms/sign/batch", h.Admin, api.SignBatchRequest{Items: []api.SignRequest{
		{KID: kidA, PayloadB3: p1},
		{KID: "ACME/payments/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", PayloadB3: p1},
		{KID: nameB, PayloadB3: p2},
		{KID: kidA, PayloadB3: strings.ToUpper(p1)},
		{KID: nameB, MessageB64: msg},
		{KID: "acme/payments/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", PayloadB3: p1},
		{KID: kidA, PayloadB3: p2},
	}})
	if r.Status != http.StatusOK {
		t.Fatalf("sign batch: %d %s", r.Status, r.Raw)
	}
	checkBatchSlots(t, r, []api.Code{"", api.CodeBadRequest, "", api.CodeBadRequest, "", api.CodeNotFound, ""})
	var sb api.SignBatchResponse
	r.decodeInto(t, &sb)
	wantKID := []string{kidA, "", kidB, "", kidB, "", kidA}
	for i, res := range sb.Results {
		if res.KID != wantKID[i] {
			t.Errorf("slot %d: kid %q, want %q", i, res.KID, wantKID[i])
		}
		if (res.Error == nil) != (len(res.Sigs) == 1) {
			t.Errorf("slot %d: %d signatures and error %v", i, len(res.Sigs), res.Error)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// Every signature is the one its own item asked for (Ed25519 is
	// deterministic), and verifies for its own input only.
	good := []struct {
		slot     int
		kid      string
		payload  string
		message  string
		neighbor string
	}{{0, kidA, p1, "", p2}, {2, kidB, p2, "", p1}, {4, kidB, "", msg, p1}, {6, kidA, p2, "", p1}}
	var vitems []api.VerifyRequest
	for _, g := range good {
		single := h.do(t, "POST", "/v1/kms/sign", h.Admin, api.SignRequest{KID: g.kid, PayloadB3: g.payload, MessageB64: g.message})
		var one api.SignResponse
		single.decodeInto(t, &one)
		if !reflect.DeepEqual(one.Sigs, sb.Results[g.slot].Sigs) {
			t.Errorf("slot %d: batch signature differs from a single sign of the same item", g.slot)
		}
		vitems = append(vitems,
			api.VerifyRequest{KID: g.kid, PayloadB3: g.payload, MessageB64: g.message, Sigs: sb.Results[g.slot].Sigs},
			api.VerifyRequest{KID: g.kid, PayloadB3: g.neighbor, Sigs: sb.Results[g.slot].Sigs})
	}

	// Verify: good, wrong, and failing items side by side.
	items := []api.VerifyRequest{
		vitems[0], // ok
		{KID: "acme/payments/ed25519/not-a-uuid", PayloadB3: p1, Sigs: vitems[0].Sigs}, // BadRequest
		vitems[1], // wrong payload: ok false, no error
		vitems[2], // ok
		{KID: "acme/payments/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", PayloadB3: p1, Sigs: vitems[0].Sigs}, // NotFound
		vitems[4], // ok (message)
		vitems[5], // wrong
		{KID: kidA, PayloadB3: p1, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: "not base64"}}}, // BadRequest
		vitems[6], // ok
	}
	r = h.do(t, "POST", "/v1/kms/verify/batch", h.Admin, api.VerifyBatchRequest{Items: items})
	if r.Status != http.StatusOK {
		t.Fatalf("verify batch: %d %s", r.Status, r.Raw)
	}
	checkBatchSlots(t, r, []api.Code{"", api.CodeBadRequest, "", "", api.CodeNotFound, "", "", api.CodeBadRequest, ""})
	var vb api.VerifyBatchResponse
	r.decodeInto(t, &vb)
	wantOK := []bool{true, false, false, true, false, true, false, false, true}
	for i, res := range vb.Results {
		if res.OK != wantOK[i] {
			t.Errorf("verify slot %d: ok = %v, want %v", i, res.OK, wantOK[i])
		}
	}
	if vb.AllOK {
		t.Error("all_ok is true with failed items")
	}

	// The good items alone: all_ok.
	r = h.do(t, "POST", "/v1/kms/verify/batch", h.Admin, api.VerifyBatchRequest{Items: []api.VerifyRequest{vitems[0], vitems[2], vitems[4], vitems[6]}})
	vb = api.VerifyBatchResponse{}
	r.decodeInto(t, &vb)
	if r.Status != http.StatusOK || !vb.AllOK || len(vb.Results) != 4 {
		t.Errorf("good items alone: %d %s", r.Status, r.Raw)
	}
}

// counterPrefix is the store prefix of the keystore's encryption counters
// (keystore counterPath).
const counterPrefix = "c/"

// withoutCounters is the snapshot without the encryption counter records.
func (a storeState) withoutCounters() storeState {
	out := storeState{Revision: a.Revision}
	for _, it := range a.Items {
		if !strings.HasPrefix(it.Key, counterPrefix) {
			out.Items = append(out.Items, it)
		}
	}
	return out
}

// counters is the encryption counter records of the snapshot.
func (a storeState) counters() []storage.Item {
	var out []storage.Item
	for _, it := range a.Items {
		if strings.HasPrefix(it.Key, counterPrefix) {
			out = append(out, it)
		}
	}
	return out
}
