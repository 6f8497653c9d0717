package httpapi

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/testvectors"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wrappingKey fetches the import wrapping key and parses it with crypto/hpke.
func (h *harness) wrappingKey(t testing.TB) hpke.PublicKey {
	t.Helper()
	r := h.do(t, "GET", "/v1/kms/import/wrapping-key", h.Admin, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("wrapping key: %d %s", r.Status, r.Raw)
	}
	var wk api.WrappingKeyResponse
	r.decodeInto(t, &wk)
	if wk.Alg != "mlkem768-x25519" {
		t.Fatalf("wrapping key alg %q", wk.Alg)
	}
	pk, err := hpke.MLKEM768X25519().NewPublicKey(mustB64(t, wk.PublicKeyB64))
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// sealSeed seals seed exactly as SPEC §4 says, with crypto/hpke itself.
func sealSeed(t testing.TB, pk hpke.PublicKey, seed []byte) string {
	t.Helper()
	ct, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("ron-kms/import/v1"), seed)
	if err != nil {
		t.Fatal(err)
	}
	return api.EncodeB64(ct)
}

// importOK imports with the admin token and requires 201.
func (h *harness) importOK(t testing.TB, req api.ImportKeyRequest) api.CreateKeyResponse {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/keys/import", h.Admin, req)
	if r.Status != http.StatusCreated {
		t.Fatalf("import %s: %d %s", req.Alg, r.Status, r.Raw)
	}
	var out api.CreateKeyResponse
	r.decodeInto(t, &out)
	return out
}

// TestImportRFC8032: the RFC 8032 test seeds, sealed with hpke.Seal and
// imported, give the RFC public keys and, over HTTP, the RFC signatures byte
// for byte. The imported key then rotates to a generated version.
func TestImportRFC8032(t *testing.T) {
	h := newHarness(t)
	pk := h.wrappingKey(t)
	for _, v := range testvectors.RFC8032 {
		t.Run(v.Name, func(t *testing.T) {
			res := h.importOK(t, api.ImportKeyRequest{Tenant: "rfc", Purpose: "test", Alg: "ed25519",
				WrappedPrivateB64: sealSeed(t, pk, unhex(t, v.Seed))})
			k := res.Key
			if res.KID != k.Name+"#v1" || k.VerifyOnly || len(k.Versions) != 1 {
				t.Fatalf("import answered %+v", res)
			}
			if got := hex.EncodeToString(mustB64(t, k.Versions[0].PublicKeyB64)); got != v.Pub {
				t.Errorf("public key %s, want the RFC's %s", got, v.Pub)
			}
			if k.Versions[0].Origin != "imported" || k.Versions[0].State != "enabled" {
				t.Errorf("version 1: origin %q state %q", k.Versions[0].Origin, k.Versions[0].State)
			}
			r := h.do(t, "POST", "/v1/kms/sign", h.Admin, api.SignRequest{KID: k.Name}.WithMessage(unhex(t, v.Msg)))
			if r.Status != http.StatusOK {
				t.Fatalf("sign: %d %s", r.Status, r.Raw)
			}
			var s api.SignResponse
			r.decodeInto(t, &s)
			if got := hex.EncodeToString(mustB64(t, s.Sigs[0].SignatureB64)); s.KID != res.KID || got != v.Sig {
				t.Errorf("sign answered %s %s, want %s and the RFC signature %s", s.KID, got, res.KID, v.Sig)
			}

			// Rotation makes a generated version; the imported one still
			// verifies the RFC signature.
			kid2 := h.rotate(t, k.Name)
			r = h.do(t, "GET", "/v1/kms/keys/"+k.Name, h.Admin, nil)
			var info api.KeyInfo
			r.decodeInto(t, &info)
			if info.KID != kid2 || info.Versions[0].Origin != "imported" || info.Versions[1].Origin != "generated" {
				t.Errorf("after rotation: %+v", info)
			}
			r = h.do(t, "POST", "/v1/kms/verify", h.Admin, api.VerifyRequest{KID: res.KID,
				Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: api.EncodeB64(unhex(t, v.Sig))}}}.WithMessage(unhex(t, v.Msg)))
			wantVerified(true)(t, r)
		})
	}
}

// TestImportIdempotent: the same op_id and body answer the same key; the
// same op_id with another body is 409.
func TestImportIdempotent(t *testing.T) {
	h := newHarness(t)
	pk := h.wrappingKey(t)
	req := api.ImportKeyRequest{Tenant: "acme", Purpose: "p", Alg: "ed25519",
		WrappedPrivateB64: sealSeed(t, pk, unhex(t, testvectors.RFC8032[0].Seed)), OpID: "import-1"}
	a, b := h.importOK(t, req), h.importOK(t, req)
	if a.KID != b.KID {
		t.Errorf("replay answered %s, first %s", b.KID, a.KID)
	}
	req.WrappedPrivateB64 = sealSeed(t, pk, unhex(t, testvectors.RFC8032[0].Seed)) // new encapsulation
	r := h.do(t, "POST", "/v1/kms/keys/import", h.Admin, req)
	checkEnvelope(t, r, api.CodeConflict)
}

// TestImportVerifyOnly: a key imported from a public key verifies, refuses
// to sign and to rotate, and says so in KeyInfo.
func TestImportVerifyOnly(t *testing.T) {
	h := newHarness(t)
	v := testvectors.RFC8032[1]
	res := h.importOK(t, api.ImportKeyRequest{Tenant: "acme", Purpose: "p", Alg: "ed25519", PublicKeyB64: api.EncodeB64(unhex(t, v.Pub))})
	if !res.Key.VerifyOnly || res.Key.Versions[0].Origin != "imported" {
		t.Errorf("KeyInfo %+v: want verify_only and origin imported", res.Key)
	}
	if !bytes.Contains(h.do(t, "GET", "/v1/kms/keys/"+res.Key.Name, h.Admin, nil).Raw, []byte(`"verify_only":true`)) {
		t.Error("GET does not say verify_only")
	}
	msg := api.EncodeB64(unhex(t, v.Msg))
	r := h.do(t, "POST", "/v1/kms/verify", h.Admin, api.VerifyRequest{KID: res.Key.Name,
		Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: api.EncodeB64(unhex(t, v.Sig))}}}.WithMessage(unhex(t, v.Msg)))
	wantVerified(true)(t, r)
	checkEnvelope(t, h.do(t, "POST", "/v1/kms/sign", h.Admin, api.SignRequest{KID: res.Key.Name, MessageB64: msg}), api.CodeUnsupported)
	checkBatchSlots(t, h.do(t, "POST", "/v1/kms/sign/batch", h.Admin, api.SignBatchRequest{Items: []api.SignRequest{{KID: res.KID, MessageB64: msg}}}), []api.Code{api.CodeUnsupported})
	checkEnvelope(t, h.do(t, "POST", "/v1/kms/keys/"+res.Key.Name+"/rotate", h.Admin, nil), api.CodeUnsupported)
	checkEnvelope(t, h.do(t, "GET", "/v1/kms/keys/"+res.Key.Name+"/attestation", h.Admin, nil), api.CodeUnsupported)
}

// wycheproofFile is the common part of the Wycheproof verify files.
type wycheproofFile[G any] struct {
	Algorithm     string                     `json:"algorithm"`
	Schema        string                     `json:"schema"`
	NumberOfTests int                        `json:"numberOfTests"`
	Header        []string                   `json:"header"`
	Notes         map[string]json.RawMessage `json:"notes"`
	TestGroups    []G                        `json:"testGroups"`
}

type eddsaGroup struct {
	Type      string          `json:"type"`
	Source    json.RawMessage `json:"source"`
	PublicKey struct {
		Type    string `json:"type"`
		Curve   string `json:"curve"`
		KeySize int    `json:"keySize"`
		PK      string `json:"pk"`
	} `json:"publicKey"`
	PublicKeyDer string          `json:"publicKeyDer"`
	PublicKeyPem string          `json:"publicKeyPem"`
	PublicKeyJwk json.RawMessage `json:"publicKeyJwk"`
	Tests        []struct {
		TcID    int      `json:"tcId"`
		Comment string   `json:"comment"`
		Flags   []string `json:"flags"`
		Msg     string   `json:"msg"`
		Sig     string   `json:"sig"`
		Result  string   `json:"result"`
	} `json:"tests"`
}

type mldsaVerifyGroup struct {
	Type         string          `json:"type"`
	PublicKey    string          `json:"publicKey"`
	PublicKeyDer string          `json:"publicKeyDer"`
	Source       json.RawMessage `json:"source"`
	Tests        []struct {
		TcID    int      `json:"tcId"`
		Comment string   `json:"comment"`
		Flags   []string `json:"flags"`
		Msg     string   `json:"msg"`
		Ctx     *string  `json:"ctx"`
		Sig     string   `json:"sig"`
		Result  string   `json:"result"`
	} `json:"tests"`
}

// readWycheproof decodes one file of the pinned Wycheproof module strictly.
// A fetch failure fails the test.
func readWycheproof[G any](t *testing.T, name, schema string) *wycheproofFile[G] {
	t.Helper()
	dir := testvectors.ModuleDir(t, testvectors.Wycheproof)
	data, err := os.ReadFile(filepath.Join(dir, "testvectors_v1", name))
	if err != nil {
		t.Fatalf("Wycheproof vectors are required: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	f := new(wycheproofFile[G])
	if err := dec.Decode(f); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if f.Schema != schema || len(f.TestGroups) == 0 {
		t.Fatalf("%s: schema %q with %d groups, want %q", name, f.Schema, len(f.TestGroups), schema)
	}
	return f
}

// verifyOnce posts one verify request and returns ok, or the error code.
func (h *harness) verifyOnce(t *testing.T, req api.VerifyRequest) (bool, api.Code) {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/verify", h.Admin, req)
	if r.Status != http.StatusOK {
		var e api.Error
		r.decodeInto(t, &e)
		return false, e.Err.Code
	}
	var out api.VerifyResponse
	r.decodeInto(t, &out)
	return out.OK, ""
}

// zip215Divergence lists the Wycheproof ed25519_test.json cases marked
// invalid that the server accepts because SPEC §3 mandates the ZIP-215
// rules, with why. The test requires exactly these to verify over HTTP
// and to be refused by crypto/ed25519 (RFC 8032 decoding), and every other
// case to follow the file.
var zip215Divergence = map[int]string{
	151: "R is 01 00…00 80: y = 1 with the sign bit of x set; the only point with y = 1 has x = 0, " +
		"so RFC 8032 §5.1.3 decoding fails, while ZIP-215 accepts non-canonical encodings of R, this one included",
}

// TestImportWycheproofEd25519: every group's public key imported as a
// verify-only key; every case of ed25519_test.json through POST /verify
// with message_b64. Valid cases verify, invalid ones answer ok false.
func TestImportWycheproofEd25519(t *testing.T) {
	known := map[string]bool{"CompressedSignature": true, "InvalidEncoding": true, "InvalidKtv": true, "InvalidSignature": true,
		"Ktv": true, "SignatureMalleability": true, "SignatureWithGarbage": true, "TinkOverflow": true, "TruncatedSignature": true, "Valid": true}
	f := readWycheproof[eddsaGroup](t, "ed25519_test.json", "eddsa_verify_schema_v1.json")
	h := newHarness(t)
	names := map[string]string{} // pk hex → key name
	var n, valid, invalid, diverged int
	for _, g := range f.TestGroups {
		if g.PublicKey.Curve != "edwards25519" {
			t.Fatalf("group with curve %q", g.PublicKey.Curve)
		}
		name, ok := names[g.PublicKey.PK]
		if !ok {
			res := h.importOK(t, api.ImportKeyRequest{Tenant: "wycheproof", Purpose: "ed25519", Alg: "ed25519",
				PublicKeyB64: api.EncodeB64(unhex(t, g.PublicKey.PK))})
			if hex.EncodeToString(mustB64(t, res.Key.Versions[0].PublicKeyB64)) != g.PublicKey.PK || !res.Key.VerifyOnly {
				t.Fatalf("imported key %+v", res.Key)
			}
			name = res.Key.Name
			names[g.PublicKey.PK] = name
		}
		for _, c := range g.Tests {
			n++
			for _, fl := range c.Flags {
				if !known[fl] {
					t.Errorf("tcId %d: unknown flag %q", c.TcID, fl)
				}
			}
			msg, sig := unhex(t, c.Msg), unhex(t, c.Sig)
			ok, code := h.verifyOnce(t, api.VerifyRequest{KID: name,
				Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: api.EncodeB64(sig)}}}.WithMessage(msg))
			if why, pinned := zip215Divergence[c.TcID]; pinned {
				// ZIP-215 accepts it, RFC 8032 (crypto/ed25519) does not.
				diverged++
				if c.Result != "invalid" || !ok || ed25519.Verify(unhex(t, g.PublicKey.PK), msg, sig) {
					t.Errorf("tcId %d (%s): pinned as accepted under ZIP-215 and refused by crypto/ed25519 (%s); got ok %v %s, result %s",
						c.TcID, c.Comment, why, ok, code, c.Result)
				}
				continue
			}
			switch c.Result {
			case "valid":
				valid++
				if !ok {
					t.Errorf("tcId %d (%s, %v): valid case answered ok false %s", c.TcID, c.Comment, c.Flags, code)
				}
			case "invalid":
				invalid++
				if ok || code != "" {
					t.Errorf("tcId %d (%s, %v): invalid case answered ok %v %s, want 200 ok false", c.TcID, c.Comment, c.Flags, ok, code)
				}
			default:
				t.Errorf("tcId %d: unknown result %q", c.TcID, c.Result)
			}
		}
	}
	if n != f.NumberOfTests {
		t.Errorf("%d cases, the file says %d", n, f.NumberOfTests)
	}
	if diverged != len(zip215Divergence) {
		t.Errorf("%d pinned ZIP-215 divergences met, want %d", diverged, len(zip215Divergence))
	}
	t.Logf("%d keys imported; %d cases: %d valid verified, %d invalid refused, %d invalid accepted under ZIP-215 (pinned)", len(names), n, valid, invalid, diverged)
}

// TestImportWycheproofMLDSA: the ML-DSA verify files, every group's public
// key imported as a verify-only key (a key of the wrong length, or one with
// t1 = 0 under which anyone can sign, is refused with 400 BadRequest),
// every case through POST /verify. A context over 255 bytes is 400
// BadRequest; every other invalid case answers ok false.
func TestImportWycheproofMLDSA(t *testing.T) {
	known := map[string]bool{"ValidSignature": true, "ManySteps": true, "BoundaryCondition": true, "ZeroPublicKey": true,
		"InvalidPrivateKey": true, "InvalidSignature": true, "ModifiedSignature": true, "InfinityNormViolation": true,
		"InvalidHintsEncoding": true, "MissingReduction": true, "IncorrectSignatureLength": true,
		"IncorrectPublicKeyLength": true, "InvalidContext": true}
	h := newHarness(t)
	for _, alg := range []string{"ml-dsa-44", "ml-dsa-65", "ml-dsa-87"} {
		file := "mldsa_" + strings.TrimPrefix(alg, "ml-dsa-") + "_verify_test.json"
		t.Run(alg, func(t *testing.T) {
			f := readWycheproof[mldsaVerifyGroup](t, file, "mldsa_verify_schema.json")
			var n, valid, invalid, badKey, zeroKey int
			for _, g := range f.TestGroups {
				pub := unhex(t, g.PublicKey)
				r := h.do(t, "POST", "/v1/kms/keys/import", h.Admin, api.ImportKeyRequest{Tenant: "wycheproof", Purpose: "mldsa", Alg: alg,
					PublicKeyB64: api.EncodeB64(pub)})
				if r.Status != http.StatusCreated {
					checkEnvelope(t, r, api.CodeBadRequest)
					for _, c := range g.Tests {
						n++
						switch {
						case slices.Contains(c.Flags, "ZeroPublicKey"):
							// Valid signatures too: the key itself is refused.
							zeroKey++
						case c.Result == "invalid" && slices.Contains(c.Flags, "IncorrectPublicKeyLength"):
							badKey++
						default:
							t.Errorf("tcId %d: key refused (%s) but the case is %s %v", c.TcID, r.Raw, c.Result, c.Flags)
						}
					}
					continue
				}
				var res api.CreateKeyResponse
				r.decodeInto(t, &res)
				for _, c := range g.Tests {
					n++
					for _, fl := range c.Flags {
						if !known[fl] {
							t.Errorf("tcId %d: unknown flag %q", c.TcID, fl)
						}
					}
					if slices.Contains(c.Flags, "ZeroPublicKey") {
						t.Errorf("tcId %d: a key with t1 = 0 was imported", c.TcID)
					}
					req := api.VerifyRequest{KID: res.KID,
						Sigs: []api.Signature{{Alg: alg, SignatureB64: api.EncodeB64(unhex(t, c.Sig))}}}.WithMessage(unhex(t, c.Msg))
					if c.Ctx != nil {
						req.ContextB64 = api.EncodeB64(unhex(t, *c.Ctx))
					}
					ok, code := h.verifyOnce(t, req)
					switch {
					case c.Result == "valid":
						valid++
						if !ok {
							t.Errorf("tcId %d (%s, %v): valid case answered ok false %s", c.TcID, c.Comment, c.Flags, code)
						}
					case slices.Contains(c.Flags, "InvalidContext"):
						invalid++
						if code != api.CodeBadRequest {
							t.Errorf("tcId %d: context of %d bytes answered ok %v %s, want 400 BadRequest", c.TcID, len(*c.Ctx)/2, ok, code)
						}
					default:
						invalid++
						if ok || code != "" {
							t.Errorf("tcId %d (%s, %v): invalid case answered ok %v %s, want 200 ok false", c.TcID, c.Comment, c.Flags, ok, code)
						}
					}
				}
			}
			if n != f.NumberOfTests {
				t.Errorf("%d cases, the file says %d", n, f.NumberOfTests)
			}
			if zeroKey == 0 {
				t.Error("no ZeroPublicKey case met")
			}
			t.Logf("%d cases: %d valid verified, %d invalid refused, %d refused at import (wrong key length), %d refused at import (t1 = 0)", n, valid, invalid, badKey, zeroKey)
		})
	}
}

// TestAttestation: the statement of a version is canonical JSON with the
// contract's fields, signed by the attestation key GET /audit/key names;
// a tampered statement does not verify.
func TestAttestation(t *testing.T) {
	h := newHarness(t)
	kid1 := h.createKey(t, "acme", "payments", "ml-dsa-65")
	name := strings.TrimSuffix(kid1, "#v1")
	kid2 := h.rotate(t, name)
	var info api.KeyInfo
	h.do(t, "GET", "/v1/kms/keys/"+name, h.Admin, nil).decodeInto(t, &info)

	r := h.do(t, "GET", "/v1/kms/audit/key", h.Admin, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("audit key: %d %s", r.Status, r.Raw)
	}
	var ak api.AuditKeyResponse
	r.decodeInto(t, &ak)
	attKey, auditKey := mustB64(t, ak.AttestationPublicKeyB64), mustB64(t, ak.AuditPublicKeyB64)
	if len(attKey) != 32 || len(auditKey) != 32 || bytes.Equal(attKey, auditKey) {
		t.Fatalf("audit key answer %s: want two distinct 32-byte keys", r.Raw)
	}

	for _, tc := range []struct {
		query string
		kid   string
		v     uint32
	}{{"", kid2, 2}, {"?version=1", kid1, 1}, {"?version=2", kid2, 2}} {
		r := h.do(t, "GET", "/v1/kms/keys/"+name+"/attestation"+tc.query, h.Admin, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("attest%s: %d %s", tc.query, r.Status, r.Raw)
		}
		var att api.AttestationResponse
		r.decodeInto(t, &att)
		st, err := client.VerifyAttestation(&att, attKey)
		if err != nil {
			t.Fatalf("attest%s: %v", tc.query, err)
		}
		stmt := mustB64(t, att.StatementB64)
		var compact bytes.Buffer
		if err := json.Compact(&compact, stmt); err != nil || !bytes.Equal(compact.Bytes(), stmt) {
			t.Errorf("statement has insignificant space: %s", stmt)
		}
		var keys []string
		dec := json.NewDecoder(bytes.NewReader(stmt))
		dec.Token()
		for dec.More() {
			k, _ := dec.Token()
			keys = append(keys, k.(string))
			var skip json.RawMessage
			dec.Decode(&skip)
		}
		want := []string{"backend", "created_at", "exportable", "kid", "origin", "public_key_sha256", "server", "version"}
		if !slices.Equal(keys, want) {
			t.Errorf("statement keys %v, want exactly %v in that order", keys, want)
		}
		ver := info.Versions[tc.v-1]
		sum := sha256.Sum256(mustB64(t, ver.PublicKeyB64))
		if st.KID != tc.kid || st.Version != tc.v || st.PublicKeySHA256 != hex.EncodeToString(sum[:]) ||
			st.Backend != "software" || st.Exportable || st.Origin != "generated" || st.CreatedAt != ver.CreatedAt {
			t.Errorf("statement %s does not describe %s (KeyInfo %+v)", stmt, tc.kid, ver)
		}
		if !ed25519.Verify(attKey, stmt, mustB64(t, att.SignatureB64)) {
			t.Error("crypto/ed25519 does not verify the statement")
		}

		// Tampering: a flipped byte, a changed field, the audit key.
		for what, bad := range map[string]api.AttestationResponse{
			"flipped byte": {StatementB64: api.EncodeB64(flip(stmt, 10)), SignatureB64: att.SignatureB64, Alg: att.Alg},
			"origin changed": {StatementB64: api.EncodeB64(func() []byte {
				s := *st
				s.Origin = "imported"
				return s.Canonical()
			}()), SignatureB64: att.SignatureB64, Alg: att.Alg},
			"exportable changed": {StatementB64: api.EncodeB64(bytes.Replace(stmt, []byte(`"exportable":false`), []byte(`"exportable":true`), 1)), SignatureB64: att.SignatureB64, Alg: att.Alg},
			"signature flipped":  {StatementB64: att.StatementB64, SignatureB64: api.EncodeB64(flip(mustB64(t, att.SignatureB64), 0)), Alg: att.Alg},
			"alg changed":        {StatementB64: att.StatementB64, SignatureB64: att.SignatureB64, Alg: "ml-dsa-65"},
		} {
			if _, err := client.VerifyAttestation(&bad, attKey); !errors.Is(err, client.ErrAttestation) {
				t.Errorf("%s: VerifyAttestation = %v, want ErrAttestation", what, err)
			}
		}
		if _, err := client.VerifyAttestation(&att, auditKey); !errors.Is(err, client.ErrAttestation) {
			t.Errorf("verified with the audit key: %v", err)
		}
	}

	// An imported private key attests origin imported.
	pk := h.wrappingKey(t)
	res := h.importOK(t, api.ImportKeyRequest{Tenant: "acme", Purpose: "p", Alg: "ed25519", WrappedPrivateB64: sealSeed(t, pk, unhex(t, testvectors.RFC8032[2].Seed))})
	var att api.AttestationResponse
	h.do(t, "GET", "/v1/kms/keys/"+res.Key.Name+"/attestation", h.Admin, nil).decodeInto(t, &att)
	st, err := client.VerifyAttestation(&att, attKey)
	if err != nil || st.Origin != "imported" || st.KID != res.KID {
		t.Errorf("imported key attested %+v, %v", st, err)
	}
	// The server's keys stay the same.
	var ak2 api.AuditKeyResponse
	h.do(t, "GET", "/v1/kms/audit/key", h.Admin, nil).decodeInto(t, &ak2)
	if ak2 != ak {
		t.Errorf("audit keys changed: %+v then %+v", ak, ak2)
	}
}
