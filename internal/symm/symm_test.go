package symm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"testing"
)

func newKey(t testing.TB) (*Key, []byte) {
	raw := make([]byte, KeySize)
	rand.Read(raw)
	k, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k, raw
}

const name = "acme/data/aes-256-gcm/0190b8a4-4f7c-7b7e-8a1d-1234567890ab"

func TestRoundTripAndTamper(t *testing.T) {
	k, _ := newKey(t)
	pt, aad := []byte("attack at dawn"), []byte("ctx")
	ct, err := k.Encrypt(name, 3, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(ct)
	if err != nil || c.Name != name || c.Version != 3 {
		t.Fatalf("parse: %+v %v", c, err)
	}
	if !bytes.Equal(c.Marshal(), ct) {
		t.Fatal("Marshal(Parse(ct)) != ct")
	}
	got, err := k.Decrypt(c, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt: %q %v", got, err)
	}
	if _, err := k.Decrypt(c, []byte("other")); !errors.Is(err, ErrOpen) {
		t.Fatalf("wrong aad: %v", err)
	}
	other, _ := newKey(t)
	if _, err := other.Decrypt(c, aad); !errors.Is(err, ErrOpen) {
		t.Fatalf("wrong key: %v", err)
	}
	// Every byte position, flipped, fails to parse or to open.
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		c, err := Parse(bad)
		if err != nil {
			continue
		}
		if pt, err := k.Decrypt(c, aad); err == nil {
			t.Fatalf("byte %d flipped: opened to %q", i, pt)
		}
	}
	// Relabelled to another version: the header is authenticated.
	c.Version = 4
	if _, err := k.Decrypt(c, aad); !errors.Is(err, ErrOpen) {
		t.Fatalf("relabelled version: %v", err)
	}
}

// TestFormatIndependently opens a ciphertext with crypto/cipher and the
// associated data built from the documented layout, so that the docs and
// the code cannot drift apart.
func TestFormatIndependently(t *testing.T) {
	k, raw := newKey(t)
	ct, _ := k.Encrypt(name, 7, []byte("pt"), []byte("aad"))
	hdr := append([]byte("RKE\x01"), byte(len(name)>>8), byte(len(name)))
	hdr = append(hdr, name...)
	hdr = binary.BigEndian.AppendUint32(hdr, 7)
	if !bytes.HasPrefix(ct, hdr) {
		t.Fatal("header differs from the documented layout")
	}
	block, _ := aes.NewCipher(raw)
	gcm, _ := cipher.NewGCM(block)
	nonce := ct[len(hdr) : len(hdr)+12]
	ad := append(append([]byte("ron-kms/encrypt/v1"), hdr...), "aad"...)
	pt, err := gcm.Open(nil, nonce, ct[len(hdr)+12:], ad)
	if err != nil || string(pt) != "pt" {
		t.Fatalf("independent open: %q %v", pt, err)
	}
}

func TestParseStrict(t *testing.T) {
	k, _ := newKey(t)
	ct, _ := k.Encrypt(name, 1, nil, nil)
	for _, bad := range [][]byte{
		nil, []byte("RKE"), []byte("XKE\x01\x00\x01a"), append([]byte("RKE\x02"), ct[4:]...),
		ct[:len(ct)-1][:20], []byte("RKE\x01\x00\x00"),
	} {
		if _, err := Parse(bad); !errors.Is(err, ErrFormat) {
			t.Errorf("Parse(%x): %v", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	k, _ := newKey(f)
	seeds := map[string]bool{}
	for _, pt := range []string{"", "x", "a longer plaintext of some bytes"} {
		ct, _ := k.Encrypt(name, 2, []byte(pt), nil)
		f.Add(ct)
		seeds[string(ct)] = true
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if !bytes.Equal(c.Marshal(), b) {
			t.Fatal("Marshal(Parse(b)) != b")
		}
		if _, err := k.Decrypt(c, nil); err == nil && !seeds[string(b)] {
			t.Fatal("a forged ciphertext opened")
		}
	})
}
