package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"testing"
)

func TestRecordMarshalParse(t *testing.T) {
	s := newTestSealer(t, 1)
	for _, pt := range [][]byte{nil, []byte("seed"), make([]byte, 64)} {
		rec := mustSeal(t, s, testBinding, pt)
		r, err := ParseRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Marshal(); !bytes.Equal(got, rec) {
			t.Fatalf("Marshal(ParseRecord(rec)) = %x, want %x", got, rec)
		}
		if len(r.Ciphertext) != len(pt)+TagSize {
			t.Fatalf("ciphertext length %d, want %d", len(r.Ciphertext), len(pt)+TagSize)
		}
		// ParseRecord must not alias its input.
		rec[len(rec)-1] ^= 1
		if r.Ciphertext[len(r.Ciphertext)-1] == rec[len(rec)-1] {
			t.Fatal("Record.Ciphertext aliases the parsed bytes")
		}
	}
}

func TestRecordLayout(t *testing.T) {
	r := Record{Ciphertext: bytes.Repeat([]byte{0xcc}, TagSize+2)}
	for i := range r.KEKID {
		r.KEKID[i] = 0xaa
	}
	for i := range r.Nonce {
		r.Nonce[i] = 0xbb
	}
	want := []byte("RKS\x01" +
		"\xaa\xaa\xaa\xaa\xaa\xaa\xaa\xaa" +
		"\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb\xbb" +
		"\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc\xcc")
	if got := r.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("Marshal = %q, want %q", got, want)
	}
	if Overhead != 40 || HeaderSize != 12 {
		t.Fatalf("Overhead %d HeaderSize %d", Overhead, HeaderSize)
	}
}

func TestParseRecordRejects(t *testing.T) {
	good := mustSeal(t, newTestSealer(t, 1), testBinding, []byte("seed"))
	with := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	for name, b := range map[string][]byte{
		"empty":      nil,
		"magic only": []byte("RKS\x01"),
		"short":      good[:Overhead-1],
		"magic":      with(0, 'r'),
		"magic 3":    with(2, 'T'),
		"version 0":  with(3, 0),
		"version 2":  with(3, 2),
		"version ff": with(3, 0xff),
		"all zero":   make([]byte, 64),
	} {
		if _, err := ParseRecord(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v, want ErrFormat", name, err)
		}
	}
	if _, err := ParseRecord(good[:Overhead]); err != nil {
		t.Errorf("minimum length record: %v", err)
	}
}

// TestWireFormatIndependent opens a sealed record with plain crypto/cipher
// and associated data built by hand from the package documentation, so the
// documented format and the code cannot drift apart.
func TestWireFormatIndependent(t *testing.T) {
	kek := testKEK(3)
	s, err := NewAESGCM(kek)
	if err != nil {
		t.Fatal(err)
	}
	b := Binding{Name: "server/token-root", Version: 0x01020304, Alg: "hmac-sha256"}
	pt := []byte("thirty-two bytes of secret seed!")
	rec := mustSeal(t, s, b, pt)

	ad := []byte("ron-kms/seal/v1")
	ad = append(ad, rec[:12]...)
	ad = append(ad, 0, byte(len(b.Name)))
	ad = append(ad, b.Name...)
	ad = append(ad, 1, 2, 3, 4)
	ad = append(ad, 0, byte(len(b.Alg)))
	ad = append(ad, b.Alg...)

	block, err := aes.NewCipher(kek)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gcm.Open(nil, rec[12:24], rec[24:], ad)
	if err != nil {
		t.Fatalf("record does not open with the documented associated data: %v", err)
	}
	if !bytes.Equal(got, pt) {
		t.Fatalf("plaintext %q", got)
	}
}
