package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/ron-kms/ron-kms/internal/fsutil"
)

var (
	// ErrInsecurePermissions reports a key file whose mode grants any
	// permission to group or others.
	ErrInsecurePermissions = errors.New("seal: key file is readable by group or others")

	// ErrKeyLength reports a key-encryption key, or a root key file, that is
	// not [KEKSize] bytes long.
	ErrKeyLength = errors.New("seal: key-encryption key must be 32 bytes")
)

// LoadOrCreateRootKey returns the 32-byte KEK stored as raw bytes in the file
// at path (by convention <data-dir>/root.key), creating it from crypto/rand
// if it does not exist; created reports whether it was made by this call.
//
// The returned kek is secret: the caller should clear it once a [Sealer] has
// been made from it.
//
// An existing file is refused with [ErrInsecurePermissions] if its mode grants
// any permission to group or others (the check follows symlinks and applies
// to the file opened), with [ErrKeyLength] if it is not exactly 32 bytes, and
// with an error if it is not a regular file.
//
// A new file is written atomically with mode 0600: a temporary file in the
// same directory is written and fsynced, then hard-linked (or, where links
// are not supported, renamed) into place, and the directory is fsynced. If
// another process creates the file first, that file is loaded instead. The
// parent directory must exist.
func LoadOrCreateRootKey(path string) (kek []byte, created bool, err error) {
	kek, err = loadRootKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return kek, false, err
	}
	kek = make([]byte, KEKSize)
	rand.Read(kek)
	err = fsutil.CreateFileAtomic(path, kek)
	if errors.Is(err, fs.ErrExist) {
		clear(kek)
		kek, err = loadRootKey(path)
		return kek, false, err
	}
	if err != nil {
		clear(kek)
		return nil, false, fmt.Errorf("seal: creating root key: %w", err)
	}
	return kek, true, nil
}

func loadRootKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: root key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: root key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: root key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, want 0600", ErrInsecurePermissions, path, perm)
	}
	// Read one byte more than needed to detect a long file.
	buf := make([]byte, KEKSize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		clear(buf)
		return nil, fmt.Errorf("seal: root key: %w", err)
	}
	if n != KEKSize {
		clear(buf)
		return nil, fmt.Errorf("%w: root key file %s has the wrong length", ErrKeyLength, path)
	}
	return buf[:KEKSize:KEKSize], nil
}
