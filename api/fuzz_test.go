package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"unicode/utf8"
)

func FuzzParseKeyRef(f *testing.F) {
	for _, s := range validKIDs {
		f.Add(s)
	}
	for _, s := range validNames {
		f.Add(s)
	}
	for _, tc := range invalidRefs {
		f.Add(tc.s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKeyRef(s)
		if err != nil {
			if !errors.Is(err, ErrBadKID) {
				t.Fatalf("ParseKeyRef(%q): error %v does not wrap ErrBadKID", s, err)
			}
			if k != (KID{}) {
				t.Fatalf("ParseKeyRef(%q) returned %+v with an error", s, k)
			}
			return
		}
		if got := k.String(); got != s {
			t.Fatalf("ParseKeyRef(%q).String() = %q", s, got)
		}
		k2, err := ParseKeyRef(k.String())
		if err != nil || k2 != k {
			t.Fatalf("reparse of %q = %+v, %v; want %+v", s, k2, err, k)
		}
		// The stricter parsers agree with ParseKeyRef.
		if kid, err := ParseKID(s); (err == nil) != (k.Version != 0) || (err == nil && kid != k) {
			t.Fatalf("ParseKID(%q) = %+v, %v disagrees with ParseKeyRef %+v", s, kid, err, k)
		}
		if n, err := ParseKeyName(s); (err == nil) != (k.Version == 0) || (err == nil && n != k.KeyName) {
			t.Fatalf("ParseKeyName(%q) = %+v, %v disagrees with ParseKeyRef %+v", s, n, err, k)
		}
		if !KnownAlg(k.Alg) || CheckLabel("tenant", k.Tenant) != nil || CheckLabel("purpose", k.Purpose) != nil {
			t.Fatalf("ParseKeyRef(%q) accepted invalid parts %+v", s, k)
		}
	})
}

func FuzzDecodeB64(f *testing.F) {
	for _, s := range []string{"", "QQ==", "QUI=", "QUJD", "QQ", "QR==", "-_-_", "QUJD\nREVG", "QUJD\r\n", "===="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeB64("f", s)
		if err != nil {
			if !errors.Is(err, ErrEncoding) || b != nil {
				t.Fatalf("DecodeB64(%q) = %x, %v", s, b, err)
			}
			return
		}
		// Strict: exactly one encoding per byte string.
		if EncodeB64(b) != s {
			t.Fatalf("DecodeB64(%q) accepted a non-canonical encoding of %x", s, b)
		}
	})
}

func FuzzDecodePayloadB3(f *testing.F) {
	f.Add("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	f.Add("00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff")
	f.Add("0011")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodePayloadB3(s)
		if err != nil {
			if !errors.Is(err, ErrEncoding) || b != nil {
				t.Fatalf("DecodePayloadB3(%q) = %x, %v", s, b, err)
			}
			return
		}
		if len(b) != 32 {
			t.Fatalf("DecodePayloadB3(%q) gave %d bytes", s, len(b))
		}
		var hex bytes.Buffer
		for _, c := range b {
			hex.WriteByte("0123456789abcdef"[c>>4])
			hex.WriteByte("0123456789abcdef"[c&15])
		}
		if hex.String() != s {
			t.Fatalf("DecodePayloadB3(%q) accepted a non-canonical encoding", s)
		}
	})
}

// FuzzUnmarshalSelfDecoders: the request types that decode themselves,
// through any json.Unmarshal, never panic, accept only UTF-8 (RFC 8259
// §8.1) and lists CheckText allows, and what they accept re-encodes to a
// body that decodes again to the same encoding.
func FuzzUnmarshalSelfDecoders(f *testing.F) {
	kid := `"kid":"acme/p/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b#v1"`
	for _, s := range []string{
		`{` + kid + `,"payload_b3":"00","op_id":"op-1"}`,
		`{` + kid + `,"message_b64":"","sigs":[{"alg":"ed25519","signature_b64":"AA=="}],"policy":{"mode":"or"}}`,
		`{"items":[{` + kid + `,"message_b64":"aGk="},{}]}`, `{"items":null}`, `{"items":[]}`,
		`{` + kid + `,"op_id":"` + "\xc0\xaf" + `"}`, `{"items":[{"kid":"` + "\xed\xa0\x80" + `"}]}`,
		`{"sigs":[{"alg":"` + "\xff" + `"}]}`, `{"` + "\x80" + `":1}`, "{}\xff",
		`{"items":` + elements(MaxBatch+1, `{}`) + `}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []any{new(SignRequest), new(VerifyRequest), new(SignBatchRequest), new(VerifyBatchRequest)} {
			if err := json.Unmarshal(b, v); err != nil {
				continue
			}
			if !utf8.Valid(b) {
				t.Fatalf("%T accepted %q, which is not UTF-8", v, b)
			}
			if err := CheckText(b); err != nil {
				t.Fatalf("%T accepted %q, which CheckText refuses: %v", v, b, err)
			}
			enc, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("re-encoding %T: %v", v, err)
			}
			w := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := json.Unmarshal(enc, w); err != nil {
				t.Fatalf("%T accepted %q but not its encoding %q: %v", v, b, enc, err)
			}
			if enc2, err := json.Marshal(w); err != nil || !bytes.Equal(enc, enc2) {
				t.Fatalf("%T: %q re-encodes to %q (%v)", v, enc, enc2, err)
			}
		}
	})
}
