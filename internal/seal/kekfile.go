package seal

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrKEKFile reports a KEK file (serve --kek-file) whose contents are
// neither of the two accepted forms. The error never shows the contents.
var ErrKEKFile = errors.New("seal: KEK file must hold 32 raw bytes, or 64 hex characters and a newline")

// kekHexLen is the length of the hex form of a KEK.
const kekHexLen = 2 * KEKSize

// ParseKEKFile returns the key-encryption key held in b, the contents of a
// KEK file given with serve --kek-file. Two forms are accepted:
//
//   - exactly [KEKSize] (32) raw bytes, e.g. from
//     `head -c 32 /dev/urandom > kek`;
//   - exactly 64 hexadecimal characters (either case), optionally followed
//     by one "\n", e.g. from `openssl rand -hex 32 > kek`.
//
// Anything else is refused with [ErrKEKFile]. The lengths of the two forms
// differ (32 against 64 or 65), so the form is never ambiguous. The returned
// slice is a copy and secret: the caller should clear it once a [Sealer]
// has been made from it. b is not modified.
func ParseKEKFile(b []byte) ([]byte, error) {
	switch {
	case len(b) == KEKSize:
		return append([]byte(nil), b...), nil
	case len(b) == kekHexLen+1 && b[kekHexLen] == '\n':
		b = b[:kekHexLen]
	case len(b) == kekHexLen:
	default:
		return nil, fmt.Errorf("%w (it has %d bytes)", ErrKEKFile, len(b))
	}
	kek := make([]byte, KEKSize)
	if _, err := hex.Decode(kek, b); err != nil {
		clear(kek)
		return nil, fmt.Errorf("%w (64 bytes, but not all hexadecimal)", ErrKEKFile)
	}
	return kek, nil
}

// maxKEKFileSize is the most LoadKEKFile reads: enough to see that a file
// is too long.
const maxKEKFileSize = kekHexLen + 2

// LoadKEKFile reads the key-encryption key from the file at path, the KEK
// file an operator gives every node of a cluster (serve --kek-file), in
// one of the forms of [ParseKEKFile]. The file is never created or
// modified.
//
// It is refused with [ErrInsecurePermissions] if its mode grants any
// permission to group or others (0600 or 0400 are the modes to use; the
// check follows symlinks and applies to the file opened), if it is not a
// regular file, and with [ErrKEKFile] if its contents are of neither form.
// Errors name the file, never its contents. The returned slice is secret.
func LoadKEKFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seal: --kek-file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("seal: --kek-file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("seal: --kek-file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: --kek-file %s has mode %04o; fix it with: chmod 600 %s", ErrInsecurePermissions, path, perm, path)
	}
	buf := make([]byte, maxKEKFileSize)
	n, err := io.ReadFull(f, buf)
	defer clear(buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("seal: --kek-file: %w", err)
	}
	kek, err := ParseKEKFile(buf[:n])
	if err != nil {
		if n == maxKEKFileSize {
			return nil, fmt.Errorf("%w (--kek-file %s is longer than %d bytes)", ErrKEKFile, path, kekHexLen+1)
		}
		return nil, fmt.Errorf("%w (--kek-file %s)", err, path)
	}
	return kek, nil
}
