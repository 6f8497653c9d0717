package httpapi

import (
	"crypto/hpke"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/testvectors"
)

// hostileFixture is the state the hostile-input table is built on: keys,
// signatures, envelopes and ciphertexts made before the store snapshot,
// tokens of every kind, and the routes the generated rows cover.
type hostileFixture struct {
	h             *harness
	kidA1         string
	nameA         string
	kidA2         string
	kidB          string
	nameB         string
	uuidA         string
	absent        string
	payload       string
	sig           api.SignResponse
	zeroSig       string
	signReq       api.SignRequest
	verifyReq     api.VerifyRequest
	kidW1         string
	nameW         string
	aad           string
	envW1         []byte
	kidW2         string
	envW          []byte
	kidWB         string
	nameWB        string
	envWB         []byte
	kidE1         string
	nameE         string
	ctE1          []byte
	kidE2         string
	ctE           []byte
	kidEB         string
	nameEB        string
	ctEB          []byte
	absentW       string
	absentE       string
	wrapReq       api.WrapRequest
	unwrapReq     api.UnwrapRequest
	encryptReq    api.EncryptRequest
	decryptReq    api.DecryptRequest
	acmeOnly      string
	kidC          string
	nameC         string
	sigC          api.SignResponse
	kidM          string
	nameM         string
	ctx255        string
	sigMOut       api.SignResponse
	badKIDs       map[string]string
	forged        string
	expired       string
	expiredAdmin  string
	tampered      string
	otherTenant   string
	unknownCaveat string
	readOnly      string
	wkPub         hpke.PublicKey
	edPub         string
	importReq     api.ImportKeyRequest
	nameV         string
	sealedSeed    func(n int) string
	sealedWith    func(pk hpke.PublicKey, aead hpke.AEAD, info string) string
	otherKEM      hpke.PrivateKey
	routes        []route
}

// newHostileFixture makes the keys and tokens of the hostile-input table.
func newHostileFixture(t *testing.T, h *harness) *hostileFixture {
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
	edPub := api.EncodeB64(unhex(t, testvectors.RFC8032[0].Pub))
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
		{name: "tokens-revoke", method: "POST", path: "/v1/kms/tokens/revoke", scope: captoken.ScopeAdmin,
			body: api.RevokeTokenRequest{ID: "0123456789abcdef0123456789abcdef"}},
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

	return &hostileFixture{
		h:             h,
		kidA1:         kidA1,
		nameA:         nameA,
		kidA2:         kidA2,
		kidB:          kidB,
		nameB:         nameB,
		uuidA:         uuidA,
		absent:        absent,
		payload:       payload,
		sig:           sig,
		zeroSig:       zeroSig,
		signReq:       signReq,
		verifyReq:     verifyReq,
		kidW1:         kidW1,
		nameW:         nameW,
		aad:           aad,
		envW1:         envW1,
		kidW2:         kidW2,
		envW:          envW,
		kidWB:         kidWB,
		nameWB:        nameWB,
		envWB:         envWB,
		kidE1:         kidE1,
		nameE:         nameE,
		ctE1:          ctE1,
		kidE2:         kidE2,
		ctE:           ctE,
		kidEB:         kidEB,
		nameEB:        nameEB,
		ctEB:          ctEB,
		absentW:       absentW,
		absentE:       absentE,
		wrapReq:       wrapReq,
		unwrapReq:     unwrapReq,
		encryptReq:    encryptReq,
		decryptReq:    decryptReq,
		acmeOnly:      acmeOnly,
		kidC:          kidC,
		nameC:         nameC,
		sigC:          sigC,
		kidM:          kidM,
		nameM:         nameM,
		ctx255:        ctx255,
		sigMOut:       sigMOut,
		badKIDs:       badKIDs,
		forged:        forged,
		expired:       expired,
		expiredAdmin:  expiredAdmin,
		tampered:      tampered,
		otherTenant:   otherTenant,
		unknownCaveat: unknownCaveat,
		readOnly:      readOnly,
		wkPub:         wkPub,
		edPub:         edPub,
		importReq:     importReq,
		nameV:         nameV,
		sealedSeed:    sealedSeed,
		sealedWith:    sealedWith,
		otherKEM:      otherKEM,
		routes:        routes,
	}
}

// Row builders shared by the hand-written rows: each is a request with the
// unrestricted admin token.
func (f *hostileFixture) sign(name string, body any, status int, code api.Code) hostileRow {
	return hostileRow{name: "sign/" + name, method: "POST", path: "/v1/kms/sign", token: f.h.Admin, body: body, status: status, code: code}
}

func (f *hostileFixture) verify(name string, body any, status int, code api.Code) hostileRow {
	return hostileRow{name: "verify/" + name, method: "POST", path: "/v1/kms/verify", token: f.h.Admin, body: body, status: status, code: code}
}

func (f *hostileFixture) create(name string, body any, status int, code api.Code) hostileRow {
	return hostileRow{name: "create/" + name, method: "POST", path: "/v1/kms/keys", token: f.h.Admin, body: body, status: status, code: code}
}

func (f *hostileFixture) rotate(name, key string, body any, status int, code api.Code) hostileRow {
	return hostileRow{name: "rotate/" + name, method: "POST", path: "/v1/kms/keys/" + key + "/rotate", token: f.h.Admin, body: body, status: status, code: code}
}

func (f *hostileFixture) get(name, path string, status int, code api.Code) hostileRow {
	return hostileRow{name: "get/" + name, method: "GET", path: path, token: f.h.Admin, status: status, code: code}
}

func (f *hostileFixture) list(name, query string, status int, code api.Code) hostileRow {
	return hostileRow{name: "list/" + name, method: "GET", path: "/v1/kms/keys" + query, token: f.h.Admin, status: status, code: code}
}

func (f *hostileFixture) backupRow(name, token string, status int, code api.Code) hostileRow {
	return hostileRow{name: "backup/" + name, method: "GET", path: "/v1/kms/backup", token: token, status: status, code: code}
}

func (f *hostileFixture) tokens(name string, body any, status int, code api.Code) hostileRow {
	return hostileRow{name: "tokens/" + name, method: "POST", path: "/v1/kms/tokens", token: f.h.Admin, body: body, status: status, code: code}
}

func (f *hostileFixture) signBatch(name string, body any, status int, code api.Code, items ...api.Code) hostileRow {
	return hostileRow{name: "sign-batch/" + name, method: "POST", path: "/v1/kms/sign/batch", token: f.h.Admin, body: body, status: status, code: code, items: items}
}

func (f *hostileFixture) verifyBatch(name string, body any, status int, code api.Code, items ...api.Code) hostileRow {
	return hostileRow{name: "verify-batch/" + name, method: "POST", path: "/v1/kms/verify/batch", token: f.h.Admin, body: body, status: status, code: code, items: items}
}

func (f *hostileFixture) config(name, key string, body any, status int, code api.Code) hostileRow {
	return hostileRow{name: "config/" + name, method: "POST", path: "/v1/kms/keys/" + key + "/config", token: f.h.Admin, body: body, status: status, code: code}
}

func (f *hostileFixture) version(name, key, n, action string, status int, code api.Code) hostileRow {
	return hostileRow{name: action + "/" + name, method: "POST", path: "/v1/kms/keys/" + key + "/versions/" + n + "/" + action, token: f.h.Admin, status: status, code: code}
}
