package seal

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kekFileForms are the contents of real KEK files for one key: what
// `head -c 32 /dev/urandom`, `openssl rand -hex 32` and an editor write.
func kekFileForms(kek []byte) [][]byte {
	h := hex.EncodeToString(kek)
	return [][]byte{
		kek,
		[]byte(h + "\n"),
		[]byte(h),
		[]byte(strings.ToUpper(h) + "\n"),
	}
}

func TestLoadKEKFile(t *testing.T) {
	kek := bytes.Repeat([]byte{0xa7, 0x10}, KEKSize/2)
	dir := t.TempDir()
	for i, form := range kekFileForms(kek) {
		for _, mode := range []os.FileMode{0o600, 0o400} {
			path := filepath.Join(dir, "kek")
			os.Remove(path)
			if err := os.WriteFile(path, form, mode); err != nil {
				t.Fatal(err)
			}
			got, err := LoadKEKFile(path)
			if err != nil || !bytes.Equal(got, kek) {
				t.Fatalf("form %d mode %04o: %x, %v", i, mode, got, err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, form) {
				t.Fatalf("form %d: LoadKEKFile changed the file", i)
			}
		}
	}
}

func TestLoadKEKFileRefuses(t *testing.T) {
	dir := t.TempDir()
	h := strings.Repeat("ab", KEKSize)
	for _, tc := range []struct {
		name string
		data string
		mode os.FileMode
		want error
	}{
		{"group-readable", h + "\n", 0o640, ErrInsecurePermissions},
		{"world-readable", strings.Repeat("k", KEKSize), 0o644, ErrInsecurePermissions},
		{"empty", "", 0o600, ErrKEKFile},
		{"short", strings.Repeat("k", KEKSize-1), 0o600, ErrKEKFile},
		{"raw 33 bytes", strings.Repeat("k", KEKSize+1), 0o600, ErrKEKFile},
		{"hex with CRLF", h + "\r\n", 0o600, ErrKEKFile},
		{"hex with two newlines", h + "\n\n", 0o600, ErrKEKFile},
		{"hex with a space", h + " ", 0o600, ErrKEKFile},
		{"not hex", strings.Repeat("zz", KEKSize) + "\n", 0o600, ErrKEKFile},
		{"long", strings.Repeat("a", 4096), 0o600, ErrKEKFile},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		if err := os.WriteFile(path, []byte(tc.data), tc.mode); err != nil {
			t.Fatal(err)
		}
		got, err := LoadKEKFile(path)
		if !errors.Is(err, tc.want) || got != nil {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			continue
		}
		if tc.data != "" && strings.Contains(err.Error(), tc.data[:16]) {
			t.Errorf("%s: the error shows the file's contents: %v", tc.name, err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: the error does not name the file: %v", tc.name, err)
		}
	}
	if _, err := LoadKEKFile(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "--kek-file") {
		t.Errorf("absent file: %v", err)
	}
	if _, err := LoadKEKFile(dir); err == nil {
		t.Error("a directory was accepted as a KEK file")
	}
}

func FuzzParseKEKFile(f *testing.F) {
	kek := bytes.Repeat([]byte{0x5c}, KEKSize)
	for _, form := range kekFileForms(kek) {
		f.Add(form)
		f.Add(form[:len(form)-1])
		f.Add(append(append([]byte(nil), form...), '\n'))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := append([]byte(nil), b...)
		kek, err := ParseKEKFile(b)
		if !bytes.Equal(b, orig) {
			t.Fatal("ParseKEKFile modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrKEKFile) || kek != nil {
				t.Fatalf("error %v does not wrap ErrKEKFile (or a key came with it)", err)
			}
			return
		}
		if len(kek) != KEKSize {
			t.Fatalf("%d-byte KEK", len(kek))
		}
		// Re-encoding in the form that was parsed gives the input back
		// (hex up to case).
		switch len(b) {
		case KEKSize:
			if !bytes.Equal(kek, b) {
				t.Fatal("raw form not returned as it is")
			}
		case kekHexLen, kekHexLen + 1:
			if !bytes.EqualFold([]byte(hex.EncodeToString(kek)), b[:kekHexLen]) {
				t.Fatalf("hex form %q decoded to %x", b, kek)
			}
		default:
			t.Fatalf("accepted %d bytes", len(b))
		}
	})
}
