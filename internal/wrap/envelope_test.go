package wrap

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// buildEnvelope encodes the fields by hand, independently of Marshal, so
// that the parse table can describe malformed envelopes.
func buildEnvelope(magicVer string, nameLen int, name string, version uint32, kemID uint16, encLen int, enc, ct []byte) []byte {
	b := []byte(magicVer)
	b = binary.BigEndian.AppendUint16(b, uint16(nameLen))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, version)
	b = binary.BigEndian.AppendUint16(b, kemID)
	b = binary.BigEndian.AppendUint16(b, uint16(encLen))
	b = append(b, enc...)
	return append(b, ct...)
}

func TestEnvelopeLayout(t *testing.T) {
	// The documented layout, byte for byte, for a small X25519 envelope.
	e := Envelope{
		KeyName:    "a/b",
		Version:    0x01020304,
		KEMID:      0x0020,
		Enc:        bytes.Repeat([]byte{0xee}, 32),
		Ciphertext: bytes.Repeat([]byte{0xcc}, 17),
	}
	want := "524b5701" + "0003" + "612f62" + "01020304" + "0020" + "0020" +
		strings.Repeat("ee", 32) + strings.Repeat("cc", 17)
	if got := hex.EncodeToString(e.Marshal()); got != want {
		t.Fatalf("Marshal = %s\nwant      %s", got, want)
	}
	h := e.appendHeader(nil)
	if got := hex.EncodeToString(h); got != want[:2*(12+3)] {
		t.Errorf("header = %s", got)
	}
	if got := string(info(h)); got != "ron-kms/wrap/v1"+string(h) {
		t.Errorf("info = %q", got)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	for _, name := range kemNames {
		k := newKey(t, name)
		for _, kn := range []string{"t/p/a/u", testKeyName, "ünïcødé/☃", strings.Repeat("x", MaxNameLen)} {
			for _, v := range []uint32{1, 2, 1 << 31, 1<<32 - 1} {
				b := mustWrap(t, k.Public(), kn, v, nil, []byte("data key"))
				e, err := Parse(b)
				if err != nil {
					t.Fatal(err)
				}
				if e.KeyName != kn || e.Version != v {
					t.Fatalf("parsed %q v%d, want %q v%d", e.KeyName, e.Version, kn, v)
				}
				if got := e.Marshal(); !bytes.Equal(got, b) {
					t.Fatalf("Marshal(Parse(b)) != b")
				}
				// Parse does not alias its input.
				orig := bytes.Clone(b)
				for i := range b {
					b[i] ^= 0xff
				}
				if !bytes.Equal(e.Marshal(), orig) {
					t.Fatal("parsed envelope changed with its input")
				}
			}
		}
	}
}

func TestParseStrict(t *testing.T) {
	enc32, enc1088, enc1120 := make([]byte, 32), make([]byte, 1088), make([]byte, 1120)
	tag := make([]byte, TagSize)
	for _, c := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"minimal x25519", buildEnvelope("RKW\x01", 1, "n", 1, 0x0020, 32, enc32, tag), true},
		{"minimal ml-kem-768", buildEnvelope("RKW\x01", 1, "n", 1, 0x0041, 1088, enc1088, tag), true},
		{"minimal hybrid", buildEnvelope("RKW\x01", 1, "n", 1, 0x647a, 1120, enc1120, tag), true},
		{"longest name", buildEnvelope("RKW\x01", MaxNameLen, strings.Repeat("n", MaxNameLen), 1, 0x0020, 32, enc32, tag), true},
		{"empty", nil, false},
		{"magic only", []byte("RKW\x01"), false},
		{"bad magic", buildEnvelope("RKX\x01", 1, "n", 1, 0x0020, 32, enc32, tag), false},
		{"lower-case magic", buildEnvelope("rkw\x01", 1, "n", 1, 0x0020, 32, enc32, tag), false},
		{"format version 0", buildEnvelope("RKW\x00", 1, "n", 1, 0x0020, 32, enc32, tag), false},
		{"format version 2", buildEnvelope("RKW\x02", 1, "n", 1, 0x0020, 32, enc32, tag), false},
		{"empty name", buildEnvelope("RKW\x01", 0, "", 1, 0x0020, 32, enc32, tag), false},
		{"name too long", buildEnvelope("RKW\x01", MaxNameLen+1, strings.Repeat("n", MaxNameLen+1), 1, 0x0020, 32, enc32, tag), false},
		{"name length past the end", buildEnvelope("RKW\x01", 0xffff, "n", 1, 0x0020, 32, enc32, tag), false},
		{"name length one short", buildEnvelope("RKW\x01", 1, "nn", 1, 0x0020, 32, enc32, tag), false},
		{"name not UTF-8", buildEnvelope("RKW\x01", 2, "\xc3\x28", 1, 0x0020, 32, enc32, tag), false},
		{"name overlong UTF-8", buildEnvelope("RKW\x01", 2, "\xc0\xaf", 1, 0x0020, 32, enc32, tag), false},
		{"name surrogate", buildEnvelope("RKW\x01", 3, "\xed\xa0\x80", 1, 0x0020, 32, enc32, tag), false},
		{"version 0", buildEnvelope("RKW\x01", 1, "n", 0, 0x0020, 32, enc32, tag), false},
		{"unknown KEM P-256", buildEnvelope("RKW\x01", 1, "n", 1, 0x0010, 65, make([]byte, 65), tag), false},
		{"unknown KEM ML-KEM-1024", buildEnvelope("RKW\x01", 1, "n", 1, 0x0042, 1568, make([]byte, 1568), tag), false},
		{"KEM 0", buildEnvelope("RKW\x01", 1, "n", 1, 0, 32, enc32, tag), false},
		{"enc length short", buildEnvelope("RKW\x01", 1, "n", 1, 0x0020, 31, enc32[:31], tag), false},
		{"enc length long", buildEnvelope("RKW\x01", 1, "n", 1, 0x0020, 33, make([]byte, 33), tag), false},
		{"enc of another KEM", buildEnvelope("RKW\x01", 1, "n", 1, 0x0041, 1120, enc1120, tag), false},
		{"enc length past the end", buildEnvelope("RKW\x01", 1, "n", 1, 0x0020, 32, enc32[:20], nil), false},
		{"no ciphertext", buildEnvelope("RKW\x01", 1, "n", 1, 0x0020, 32, enc32, nil), false},
		{"ciphertext shorter than a tag", buildEnvelope("RKW\x01", 1, "n", 1, 0x0020, 32, enc32, tag[:TagSize-1]), false},
		{"hybrid truncated", buildEnvelope("RKW\x01", 1, "n", 1, 0x647a, 1120, enc1120, tag)[:1120], false},
	} {
		e, err := Parse(c.b)
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.ok && !bytes.Equal(e.Marshal(), c.b):
			t.Errorf("%s: Marshal(Parse(b)) != b", c.name)
		case !c.ok && !errors.Is(err, ErrFormat):
			t.Errorf("%s: Parse = %v, want ErrFormat", c.name, err)
		case !c.ok && (e.KeyName != "" || e.Enc != nil || e.Ciphertext != nil):
			t.Errorf("%s: Parse returned a partial envelope with its error", c.name)
		}
	}
}

func TestMarshalInvalidPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Marshal of an envelope with an empty name did not panic")
		}
	}()
	Envelope{Version: 1, KEMID: 0x0020, Enc: make([]byte, 32), Ciphertext: make([]byte, 16)}.Marshal()
}
