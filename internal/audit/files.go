package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ron-kms/ron-kms/internal/fsutil"
)

const (
	// DirName is the audit log's directory inside the server's data directory.
	DirName = "audit"
	// PublicKeyFile is the file in the server's data directory that holds the
	// audit public key (the Ed25519 key checkpoints are signed with), as 64
	// lower-case hex characters and a newline. ReadPublicKeyFile also accepts
	// the raw 32 bytes.
	PublicKeyFile = "audit.pub"

	filePrefix = "audit-"
	fileSuffix = ".log"
)

// FileName returns the name of the log's n-th file (n ≥ 1): audit-000001.log,
// audit-000002.log, ... Names sort in order up to 999999 files; beyond that
// they grow a digit, and the package orders them by number, not by name.
func FileName(n int) string { return fmt.Sprintf("%s%06d%s", filePrefix, n, fileSuffix) }

// parseFileName returns n for a name FileName(n) would produce.
func parseFileName(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, fileSuffix)
	if !ok || len(s) < 6 {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || FileName(n) != name {
		return 0, false
	}
	return n, true
}

// listFiles returns the numbers of the log files in dir, ascending. Other
// names are ignored.
func listFiles(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ns []int
	for _, e := range ents {
		if n, ok := parseFileName(e.Name()); ok && e.Type().IsRegular() {
			ns = append(ns, n)
		}
	}
	slices.Sort(ns)
	return ns, nil
}

// logFile is what the writer needs from an open log file; tests substitute a
// failing one.
type logFile interface {
	WriteAt(b []byte, off int64) (int, error)
	Sync() error
	Datasync() error // fdatasync: data only, for writes that change neither size nor block map
	Truncate(size int64) error
	Close() error
}

// WritePublicKeyFile writes pub to dataDir/PublicKeyFile (mode 0600), through
// a temporary file and a rename, and fsyncs the directory. An existing file
// is replaced.
func WritePublicKeyFile(dataDir string, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("audit: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	tmp, err := os.CreateTemp(dataDir, "."+PublicKeyFile+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.WriteString(hex.EncodeToString(pub) + "\n"); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dataDir, PublicKeyFile)); err != nil {
		return err
	}
	return fsutil.SyncDir(dataDir)
}

// ReadPublicKeyFile reads the audit public key from dataDir/PublicKeyFile:
// hex (with or without a final newline) or the raw 32 bytes.
func ReadPublicKeyFile(dataDir string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, PublicKeyFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("audit: no audit public key: %w", err)
		}
		return nil, err
	}
	return ParsePublicKey(b)
}

// ErrPublicKey reports bytes that are not an audit public key.
var ErrPublicKey = errors.New("audit: public key is neither 64 hex characters nor 32 bytes")

// ParsePublicKey parses an audit public key written as 64 hex characters
// (surrounding white space allowed) or as the raw 32 bytes. The key does not
// alias b. Anything else is ErrPublicKey.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	if len(b) == ed25519.PublicKeySize {
		return ed25519.PublicKey(bytes.Clone(b)), nil
	}
	s := bytes.TrimSpace(b)
	if len(s) == 2*ed25519.PublicKeySize {
		k := make([]byte, ed25519.PublicKeySize)
		if _, err := hex.Decode(k, s); err == nil {
			return ed25519.PublicKey(k), nil
		}
	}
	return nil, ErrPublicKey
}
