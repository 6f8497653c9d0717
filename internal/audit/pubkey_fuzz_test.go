package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// writtenPublicKeyFile returns the bytes of the audit.pub file that
// WritePublicKeyFile writes for the key of a log opened with seed.
func writtenPublicKeyFile(t testing.TB, seed []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	opts := testOptions()
	opts.AuditKeySeed = seed
	l := mustOpen(t, filepath.Join(dir, DirName), opts)
	defer l.Close()
	if err := WritePublicKeyFile(dir, l.PublicKey()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzParsePublicKey: whatever parses is a 32-byte key that the file form
// WritePublicKeyFile writes (lower-case hex and a newline) gives back, that
// is the input itself (raw) or its hex up to case and surrounding space,
// and that does not alias the input; whatever does not parse is
// ErrPublicKey and no key.
func FuzzParsePublicKey(f *testing.F) {
	for _, seed := range [][]byte{testSeed, make([]byte, ed25519.SeedSize), bytes.Repeat([]byte{0xff}, ed25519.SeedSize)} {
		file := writtenPublicKeyFile(f, seed)
		key := bytes.TrimSpace(file)
		raw, err := hex.DecodeString(string(key))
		if err != nil {
			f.Fatalf("audit.pub %q is not hex: %v", file, err)
		}
		f.Add(file)
		f.Add(key)                                            // without the newline
		f.Add(raw)                                            // the raw form
		f.Add(bytes.ToUpper(file))                            // upper-case hex
		f.Add(append([]byte(" \t"), key...))                  // leading space
		f.Add(append(bytes.Clone(key), "\r\n"...))            // written on Windows
		f.Add(key[:len(key)-1])                               // 63 hex characters
		f.Add(append(bytes.Clone(key), '0'))                  // 65
		f.Add(append(bytes.Clone(raw), '\n'))                 // raw, 33 bytes
		f.Add([]byte(base64.StdEncoding.EncodeToString(raw))) // the --audit-key form, not a file form
		f.Add(append([]byte{'g'}, key[1:]...))                // not hex
	}
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := ParsePublicKey(b)
		if err != nil {
			if !errors.Is(err, ErrPublicKey) || pub != nil {
				t.Fatalf("ParsePublicKey(%q) = %x, %v; want nil, ErrPublicKey", b, pub, err)
			}
			return
		}
		if len(pub) != ed25519.PublicKeySize {
			t.Fatalf("ParsePublicKey(%q) gave %d bytes", b, len(pub))
		}
		if len(b) == ed25519.PublicKeySize {
			if !bytes.Equal(pub, b) {
				t.Fatalf("raw key %x parsed as %x", b, pub)
			}
		} else if s := bytes.TrimSpace(b); !bytes.EqualFold(s, []byte(hex.EncodeToString(pub))) {
			t.Fatalf("ParsePublicKey(%q) = %x, not the hex it holds", b, pub)
		}
		// The form WritePublicKeyFile writes parses back to the same key.
		file := hex.EncodeToString(pub) + "\n"
		again, err := ParsePublicKey([]byte(file))
		if err != nil || !again.Equal(pub) {
			t.Fatalf("file form %q of %x parsed as %x, %v", file, pub, again, err)
		}
		// The key is a copy: changing the input does not change it.
		want := bytes.Clone(pub)
		for i := range b {
			b[i] ^= 0xff
		}
		if !bytes.Equal(pub, want) {
			t.Fatalf("the key of %q aliases the input", want)
		}
	})
}
