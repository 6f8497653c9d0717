package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/ron-kms/ron-kms/api"
)

// Real request bodies, and near misses, to seed the decoder fuzz targets.
const (
	fuzzKID     = "acme/payments/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b#v2"
	fuzzPayload = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	fuzzSig     = `{"alg":"ed25519","signature_b64":"AAAA"}`
	fuzzSignReq = `{"kid":"` + fuzzKID + `","payload_b3":"` + fuzzPayload + `","op_id":"op-1"}`
	fuzzVerReq  = `{"kid":"` + fuzzKID + `","message_b64":"aGVsbG8=","sigs":[` + fuzzSig + `],"context_b64":"Y3R4","policy":{"mode":"and"}}`

	fuzzWrapKID = "acme/payments/mlkem768-x25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"
	fuzzAESKID  = "acme/payments/aes-256-gcm/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b#v3"
	// The start of a real envelope and of a real ciphertext ("RKW\x01",
	// "RKE\x01", the length of the name, the name).
	fuzzEnv = "UktXAQBCYWNtZS9wYXltZW50cy9tbGtlbTc2OC14MjU1MTkvMDE5MGE1YjItN2MzZC03ZTRmLThhMWItMmMzZDRlNWY2YTdiAAAAAmR6"
	fuzzCT  = "UktFAQA+YWNtZS9wYXltZW50cy9hZXMtMjU2LWdjbS8wMTkwYTViMi03YzNkLTdlNGYtOGExYi0yYzNkNGU1ZjZhN2IAAAADAAAAAAAAAAAAAAAA"
)

var commonSeeds = []string{
	``, `{}`, `null`, `[]`, `{"a":1}`, `{"kid":1}`, `{"KID":"x"}`, `{"kid":"a","kid":"b"}`,
	`{"kid":"\u212aid"}`, "{\"\xff\":1}", `{} {}`, `{"items":[{"kid":"x","kid":"y"}]}`,
	// Not UTF-8: encoding/json alone decodes each with U+FFFD.
	"{\"kid\":\"\xc0\xaf\"}", "{\"op_id\":\"\xed\xa0\x80\"}", "{\"tenant\":\"\xff\"}",
	"{\"items\":[{\"kid\":\"\x80\"}]}", "{\"labels\":{\"\xf4\x90\x80\x80\":\"v\"}}",
	"{\"labels\":{\"a\":\"\xe2\x82\"}}", "{}\xff", "\xef\xbb\xbf{}",
	// Lists at the cap and just past it.
	`{"items":` + jsonList(api.MaxElements, `{}`) + `}`, `{"items":` + jsonList(api.MaxElements+1, `{}`) + `}`,
	`{"sigs":` + jsonList(api.MaxElements+1, `{}`) + `}`, `{"scopes":` + jsonList(api.MaxElements+1, `""`) + `}`,
}

// fuzzDecode checks decodeBytes on T: it never panics; it fails only with a
// BadRequest, or a TooLarge for a body of more than api.MaxElements
// elements in some list; it accepts only UTF-8 (RFC 8259 §8.1); and what it
// accepts re-encodes with encoding/json to a body that decodes again to an
// equal value.
func fuzzDecode[T any](f *testing.F, seeds ...string) {
	for _, s := range append(seeds, commonSeeds...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v, o T
		err, oerr := decodeBytes(body, &v), tokenDecodeBytes(body, &o)
		if (err == nil) != (oerr == nil) {
			t.Fatalf("decodeBytes(%q) = %v, but the token-walking decoder says %v", body, err, oerr)
		}
		if err != nil {
			var he *httpError
			switch {
			case !errors.As(err, &he):
				t.Fatalf("decodeBytes(%q) = %v, not an httpError", body, err)
			case he.code == api.CodeTooLarge && bytes.Count(body, []byte(",")) >= api.MaxElements:
			case he.code != api.CodeBadRequest:
				t.Fatalf("decodeBytes(%q) = %v, want a BadRequest", body, err)
			}
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("decodeBytes accepted %q, which is not UTF-8", body)
		}
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", v, err)
		}
		var w T
		if err := decodeBytes(enc, &w); err != nil {
			t.Fatalf("decodeBytes accepted %q but not its re-encoding %q: %v", body, enc, err)
		}
		if !sameValue(reflect.ValueOf(v), reflect.ValueOf(w)) {
			t.Fatalf("%q decodes to %+v; its re-encoding %q to %+v", body, v, enc, w)
		}
		enc2, err := json.Marshal(w)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable: %q then %q (%v)", enc, enc2, err)
		}
	})
}

// sameValue is reflect.DeepEqual except that a nil slice or map equals an
// empty one: omitempty drops an empty list, and the server treats both
// alike.
func sameValue(a, b reflect.Value) bool {
	if a.Kind() != b.Kind() {
		return false
	}
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return sameValue(a.Elem(), b.Elem())
	case reflect.Struct:
		for i := 0; i < a.NumField(); i++ {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !sameValue(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	}
	return a.Equal(b)
}

func TestSameValue(t *testing.T) {
	a := api.CreateKeyRequest{Tenant: "a", Labels: map[string]string{}}
	if !sameValue(reflect.ValueOf(a), reflect.ValueOf(api.CreateKeyRequest{Tenant: "a"})) {
		t.Error("an empty map differs from nil")
	}
	b := api.CreateKeyRequest{Tenant: "a", Labels: map[string]string{"x": "y"}}
	c := api.CreateKeyRequest{Tenant: "a", Labels: map[string]string{"x": "z"}}
	if sameValue(reflect.ValueOf(b), reflect.ValueOf(c)) || sameValue(reflect.ValueOf(a), reflect.ValueOf(b)) {
		t.Error("different labels compare equal")
	}
	p := api.VerifyRequest{Policy: &api.VerifyPolicy{Mode: "and"}}
	if sameValue(reflect.ValueOf(p), reflect.ValueOf(api.VerifyRequest{})) {
		t.Error("a policy compares equal to none")
	}
}

// TestDecodeStrict pins what the fuzz targets rely on: decodeBytes rejects
// member names that encoding/json alone would accept.
func TestDecodeStrict(t *testing.T) {
	bad := []struct {
		name string
		body string
		v    any
	}{
		{"upper-case name", `{"KID":"x"}`, new(api.SignRequest)},
		{"mixed-case name", `{"Tenant":"acme","purpose":"p","alg":"ed25519"}`, new(api.CreateKeyRequest)},
		{"Kelvin sign folds to k", `{"\u212aid":"x"}`, new(api.SignRequest)},
		{"repeated name", `{"kid":"a","kid":"b"}`, new(api.SignRequest)},
		{"repeated name, other case", `{"kid":"a","Kid":"b"}`, new(api.SignRequest)},
		{"repeated name in an item", `{"items":[{"kid":"a","kid":"b"}]}`, new(api.SignBatchRequest)},
		{"upper-case name in an item", `{"items":[{"KID":"a"}]}`, new(api.VerifyBatchRequest)},
		{"upper-case name in a sig", `{"sigs":[{"ALG":"ed25519"}]}`, new(api.VerifyRequest)},
		{"upper-case name in policy", `{"policy":{"Mode":"or"}}`, new(api.VerifyRequest)},
		{"repeated label", `{"labels":{"a":"1","a":"2"}}`, new(api.CreateKeyRequest)},
		{"unknown field", `{"op_id":"x","x":1}`, new(api.RotateRequest)},
		{"trailing data", `{}x`, new(api.MintTokenRequest)},
		{"wrong type", `{"scopes":"kms:read"}`, new(api.MintTokenRequest)},
	}
	for _, tc := range bad {
		err := decodeBytes([]byte(tc.body), tc.v)
		var he *httpError
		if !errors.As(err, &he) || he.code != api.CodeBadRequest {
			t.Errorf("%s: decodeBytes(%s) = %v, want BadRequest", tc.name, tc.body, err)
		}
	}
	good := []struct {
		body string
		v    any
	}{
		{`{"labels":{"a":"1","A":"2"}}`, new(api.CreateKeyRequest)},
		{fuzzSignReq, new(api.SignRequest)},
		{fuzzVerReq, new(api.VerifyRequest)},
		{`{"items":[` + fuzzSignReq + `,` + fuzzSignReq + `]}`, new(api.SignBatchRequest)},
		{` {"op_id" : "x"} ` + "\n", new(api.RotateRequest)},
	}
	for _, tc := range good {
		if err := decodeBytes([]byte(tc.body), tc.v); err != nil {
			t.Errorf("decodeBytes(%s) = %v", tc.body, err)
		}
	}
}

func FuzzDecodeCreateKeyRequest(f *testing.F) {
	fuzzDecode[api.CreateKeyRequest](f,
		`{"tenant":"acme","purpose":"payments","alg":"ed25519"}`,
		`{"tenant":"acme","purpose":"payments","alg":"ml-dsa-65","op_id":"op-1","labels":{"team":"pay","env":"prod"}}`,
		`{"tenant":"acme","purpose":"payments","alg":"ed25519","labels":{}}`,
		`{"tenant":"acme","purpose":"payments","alg":"ed25519","labels":null}`,
		`{"tenant":"acme","labels":{"a":1}}`,
	)
}

func FuzzDecodeRotateRequest(f *testing.F) {
	fuzzDecode[api.RotateRequest](f, `{"op_id":"rotate-2026-01"}`, `{"op_id":""}`, `{"op_id":null}`, `{"OP_ID":"x"}`)
}

func FuzzDecodeSignRequest(f *testing.F) {
	fuzzDecode[api.SignRequest](f,
		fuzzSignReq,
		`{"kid":"`+fuzzKID+`","message_b64":"aGVsbG8gd29ybGQ=","context_b64":"Y3R4"}`,
		`{"kid":"`+fuzzKID+`","payload_b3":"\u0030\u0031"}`,
	)
}

func FuzzDecodeVerifyRequest(f *testing.F) {
	fuzzDecode[api.VerifyRequest](f,
		fuzzVerReq,
		`{"kid":"`+fuzzKID+`","payload_b3":"`+fuzzPayload+`","sigs":[`+fuzzSig+`,`+fuzzSig+`]}`,
		`{"kid":"`+fuzzKID+`","payload_b3":"`+fuzzPayload+`","sigs":[],"policy":null}`,
		`{"kid":"`+fuzzKID+`","sigs":[{}],"policy":{}}`,
	)
}

func FuzzDecodeSignBatchRequest(f *testing.F) {
	fuzzDecode[api.SignBatchRequest](f,
		`{"items":[`+fuzzSignReq+`]}`,
		`{"items":[`+fuzzSignReq+`,{"kid":"x","message_b64":"aGk="},{}]}`,
		`{"items":[]}`, `{"items":null}`,
	)
}

func FuzzDecodeVerifyBatchRequest(f *testing.F) {
	fuzzDecode[api.VerifyBatchRequest](f,
		`{"items":[`+fuzzVerReq+`]}`,
		`{"items":[`+fuzzVerReq+`,{"kid":"x","sigs":null},{}]}`,
	)
}

func FuzzDecodeMintTokenRequest(f *testing.F) {
	fuzzDecode[api.MintTokenRequest](f,
		`{"scopes":["kms:read","kms:sign"],"tenant":"acme","key_prefix":"acme/payments/","algs":["ed25519"],"ttl":"24h"}`,
		`{"scopes":[],"algs":null}`,
		`{"ttl":"1h30m"}`,
	)
}

func FuzzDecodeWrapRequest(f *testing.F) {
	fuzzDecode[api.WrapRequest](f,
		`{"kid":"`+fuzzWrapKID+`","size":32}`,
		`{"kid":"`+fuzzWrapKID+`#v2","plaintext_key_b64":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","aad_b64":"b3JkZXI9NDI="}`,
		`{"kid":"`+fuzzWrapKID+`","plaintext_key_b64":"AA==","size":32}`,
		`{"kid":"`+fuzzWrapKID+`","size":-1}`, `{"kid":"`+fuzzWrapKID+`","size":1025}`,
		`{"kid":"`+fuzzWrapKID+`","size":3.2e1}`, `{"kid":"`+fuzzWrapKID+`","size":9223372036854775808}`,
		`{"kid":"`+fuzzWrapKID+`","size":null,"aad_b64":""}`, `{"size":"32"}`, `{"Size":32}`,
	)
}

func FuzzDecodeUnwrapRequest(f *testing.F) {
	fuzzDecode[api.UnwrapRequest](f,
		`{"wrapped_b64":"`+fuzzEnv+`","aad_b64":"b3JkZXI9NDI="}`,
		`{"wrapped_b64":"`+fuzzEnv+`"}`,
		`{"wrapped_b64":""}`, `{"wrapped_b64":null}`, `{"wrapped_b64":1}`,
		`{"wrapped_b64":"x","kid":"`+fuzzWrapKID+`"}`, `{"Wrapped_b64":"x"}`,
	)
}

func FuzzDecodeEncryptRequest(f *testing.F) {
	fuzzDecode[api.EncryptRequest](f,
		`{"kid":"`+fuzzAESKID+`","plaintext_b64":"Y2FyZCA0MTEx","aad_b64":"b3JkZXI9NDI="}`,
		`{"kid":"`+fuzzAESKID+`","plaintext_b64":""}`,
		`{"kid":"`+fuzzAESKID+`"}`, `{"plaintext_b64":["x"]}`, `{"kid":"a","plaintext_b64":"\u0041A=="}`,
	)
}

func FuzzDecodeDecryptRequest(f *testing.F) {
	fuzzDecode[api.DecryptRequest](f,
		`{"ciphertext_b64":"`+fuzzCT+`","aad_b64":"b3JkZXI9NDI="}`,
		`{"ciphertext_b64":"`+fuzzCT+`"}`,
		`{"ciphertext_b64":"","aad_b64":null}`, `{"ciphertext_b64":{}}`, `{"CIPHERTEXT_B64":"x"}`,
	)
}

func FuzzDecodeImportKeyRequest(f *testing.F) {
	fuzzDecode[api.ImportKeyRequest](f,
		`{"tenant":"acme","purpose":"sig","alg":"ed25519","public_key_b64":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="}`,
		`{"tenant":"acme","purpose":"sig","alg":"ml-dsa-65","wrapped_private_b64":"AAEC","op_id":"imp-1"}`,
		`{"tenant":"acme","purpose":"sig","alg":"ed25519"}`, `{"tenant":1}`, `{"TENANT":"acme"}`,
	)
}
