package api

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestDecodeB64(t *testing.T) {
	valid := []struct {
		in   string
		want []byte
	}{
		{"", []byte{}},
		{"QQ==", []byte("A")},
		{"QUI=", []byte("AB")},
		{"QUJD", []byte("ABC")},
		{"+/+/", []byte{0xfb, 0xff, 0xbf}},
		{"AAAAAA==", []byte{0, 0, 0, 0}},
	}
	for _, tc := range valid {
		got, err := DecodeB64("f", tc.in)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("DecodeB64(%q) = %x, %v; want %x", tc.in, got, err, tc.want)
		}
	}
	invalid := []struct{ name, in string }{
		{"unpadded 1", "QQ"},
		{"unpadded 2", "QUI"},
		{"short padding", "QQ="},
		{"extra padding", "QUJD===="},
		{"padding in the middle", "QQ==QUJD"},
		{"url alphabet minus", "-_-_"},
		{"url alphabet underscore", "QUJD_w=="},
		{"embedded newline", "QUJD\nREVG"},
		{"embedded CR", "QUJD\rREVG"},
		{"trailing newline", "QUJD\n"},
		{"leading newline", "\nQUJD"},
		{"embedded space", "QUJD REVG"},
		{"trailing space", "QUJD "},
		{"tab", "QU\tJD"},
		{"non-zero trailing bits 1", "QR=="},
		{"non-zero trailing bits 2", "QUJ="},
		{"non-zero trailing bits 3", "//=="},
		{"single char", "Q"},
		{"only padding", "===="},
		{"non-ascii", "QUJé"},
		{"NUL", "QU\x00D"},
		{"dot", "QU.D"},
	}
	for _, tc := range invalid {
		got, err := DecodeB64("signature_b64", tc.in)
		if !errors.Is(err, ErrEncoding) {
			t.Errorf("%s: DecodeB64(%q) = %x, %v; want ErrEncoding", tc.name, tc.in, got, err)
			continue
		}
		if got != nil {
			t.Errorf("%s: DecodeB64(%q) returned bytes with an error", tc.name, tc.in)
		}
		if !strings.Contains(err.Error(), "signature_b64") {
			t.Errorf("%s: error %q does not name the field", tc.name, err)
		}
		if strings.Contains(err.Error(), tc.in) && tc.in != "" {
			t.Errorf("%s: error %q echoes the input", tc.name, err)
		}
	}
}

func TestEncodeDecodeB64RoundTrip(t *testing.T) {
	for n := 0; n < 70; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*37 + n)
		}
		s := EncodeB64(b)
		if s != base64.StdEncoding.EncodeToString(b) {
			t.Fatalf("EncodeB64 is not standard padded base64")
		}
		got, err := DecodeB64("f", s)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("round trip of %d bytes: %x, %v", n, got, err)
		}
	}
}

func TestDecodePayloadB3(t *testing.T) {
	good := "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	b, err := DecodePayloadB3(good)
	if err != nil || len(b) != 32 || b[1] != 0x11 || b[31] != 0xff {
		t.Fatalf("DecodePayloadB3(%q) = %x, %v", good, b, err)
	}
	invalid := []struct{ name, in string }{
		{"empty", ""},
		{"63 chars", good[:63]},
		{"65 chars", good + "0"},
		{"62 chars", good[:62]},
		{"66 chars", good + "00"},
		{"128 chars", good + good},
		{"upper case", strings.ToUpper(good)},
		{"one upper-case digit", "A" + good[1:]},
		{"non-hex", "g" + good[1:]},
		{"0x prefix", "0x" + good[2:]},
		{"space", " " + good[1:]},
		{"newline", good[:63] + "\n"},
		{"base64 of 32 bytes padded to 64", strings.Repeat("A", 43) + "=" + strings.Repeat("A", 20)},
		{"non-ascii", "é" + good[2:]},
	}
	for _, tc := range invalid {
		got, err := DecodePayloadB3(tc.in)
		if !errors.Is(err, ErrEncoding) || got != nil {
			t.Errorf("%s: DecodePayloadB3(%q) = %x, %v; want ErrEncoding", tc.name, tc.in, got, err)
		}
	}
}
