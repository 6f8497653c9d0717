package api

import (
	"bytes"
	"errors"
	"testing"
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
