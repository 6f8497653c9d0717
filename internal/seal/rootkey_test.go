package seal

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/internal/fsutil"
)

func TestRootKeyCreateAndReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "root.key")
	kek, created, err := LoadOrCreateRootKey(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateRootKey: created=%v err=%v", created, err)
	}
	if len(kek) != KEKSize || bytes.Equal(kek, make([]byte, KEKSize)) {
		t.Fatalf("bad KEK: %d bytes", len(kek))
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Fatalf("root key mode %v, want 0600", fi.Mode())
	}
	onDisk, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(onDisk, kek) {
		t.Fatalf("file does not hold the returned KEK (err %v)", err)
	}
	again, created, err := LoadOrCreateRootKey(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreateRootKey: created=%v err=%v", created, err)
	}
	if !bytes.Equal(again, kek) {
		t.Fatal("reloaded KEK differs")
	}
	if _, err := NewAESGCM(again); err != nil {
		t.Fatal(err)
	}
	// Nothing but the key file is left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("directory holds %v, want only root.key", names)
	}
}

func TestRootKeyDistinct(t *testing.T) {
	a, _, err := LoadOrCreateRootKey(filepath.Join(t.TempDir(), "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := LoadOrCreateRootKey(filepath.Join(t.TempDir(), "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("two new root keys are equal")
	}
}

func writeKeyFile(t *testing.T, data []byte, mode fs.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "root.key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// Chmod explicitly: WriteFile's mode is filtered by the umask.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRootKeyInsecurePermissions(t *testing.T) {
	secret := bytes.Repeat([]byte{0x5a}, KEKSize)
	for _, mode := range []fs.FileMode{0o640, 0o604, 0o644, 0o660, 0o606, 0o610, 0o601, 0o620, 0o602, 0o700 | 0o077, 0o400 | 0o040} {
		path := writeKeyFile(t, secret, mode)
		kek, created, err := LoadOrCreateRootKey(path)
		if !errors.Is(err, ErrInsecurePermissions) || kek != nil || created {
			t.Errorf("mode %04o: kek=%v created=%v err=%v, want ErrInsecurePermissions", mode, kek != nil, created, err)
			continue
		}
		if strings.Contains(err.Error(), hex.EncodeToString(secret)) || strings.Contains(err.Error(), string(secret)) {
			t.Errorf("error %q contains the key", err)
		}
		// The refused file is left alone.
		if got, _ := os.ReadFile(path); !bytes.Equal(got, secret) {
			t.Errorf("mode %04o: refused file was modified", mode)
		}
	}
	for _, mode := range []fs.FileMode{0o600, 0o400} {
		path := writeKeyFile(t, secret, mode)
		if kek, _, err := LoadOrCreateRootKey(path); err != nil || !bytes.Equal(kek, secret) {
			t.Errorf("mode %04o refused: %v", mode, err)
		}
	}
}

func TestRootKeyWrongLength(t *testing.T) {
	for _, n := range []int{0, 1, 16, KEKSize - 1, KEKSize + 1, 64, 4096} {
		data := bytes.Repeat([]byte{0x33}, n)
		path := writeKeyFile(t, data, 0o600)
		kek, created, err := LoadOrCreateRootKey(path)
		if !errors.Is(err, ErrKeyLength) || kek != nil || created {
			t.Errorf("%d-byte file: kek=%v created=%v err=%v, want ErrKeyLength", n, kek != nil, created, err)
		}
		if got, _ := os.ReadFile(path); !bytes.Equal(got, data) {
			t.Errorf("%d-byte file was modified", n)
		}
	}
}

func TestRootKeyNotRegular(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateRootKey(path); err == nil {
		t.Fatal("directory accepted as root key")
	}
}

func TestRootKeyMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "such", "root.key")
	if kek, created, err := LoadOrCreateRootKey(path); err == nil || kek != nil || created {
		t.Fatalf("missing directory: created=%v err=%v", created, err)
	}
}

func TestRootKeyExistingNotReplaced(t *testing.T) {
	// CreateFileAtomic never replaces a file that exists.
	path := writeKeyFile(t, bytes.Repeat([]byte{1}, KEKSize), 0o600)
	if err := fsutil.CreateFileAtomic(path, bytes.Repeat([]byte{2}, KEKSize)); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("createFileAtomic over existing file: %v", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, bytes.Repeat([]byte{1}, KEKSize)) {
		t.Fatal("existing file replaced")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary file left behind: %d entries", len(entries))
	}
}
