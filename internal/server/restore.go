package server

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ron-kms/ron-kms/internal/backup"
	"github.com/ron-kms/ron-kms/internal/fsutil"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/boltstore"
)

// RestoreOptions configure Restore.
type RestoreOptions struct {
	// DataDir is the data directory to restore into. It must be absent,
	// empty, or hold only a root.key (which is then checked like RootKey).
	DataDir string
	// RootKey, when set, is a copy of the original root.key: it is checked
	// against the backup's KEK id and copied to <DataDir>/root.key (0600).
	RootKey string
}

// RestoreResult says what Restore wrote.
type RestoreResult struct {
	Header backup.Header
	// Items is the number of records restored; Revision is the store
	// revision the backup was taken at (the new store counts its own).
	Items, Revision int64
	// RootKeyChecked reports that a root key was present and matched.
	RootKeyChecked bool
}

// restoreBatch bounds the records of one store transaction during restore.
const (
	restoreBatchItems = 1000
	restoreBatchBytes = 8 << 20
)

// ErrRestoreTarget reports a data directory restore will not write into.
var ErrRestoreTarget = errors.New("server: restore needs an empty data directory")

// Restore writes the backup in f into a new data directory, offline (no
// server may run on it). The whole file is read and checked (header,
// order, trailer hash) before anything is written; then it is read again
// into <DataDir>/kms.db, in batches, and checked again. On any error
// nothing is left behind: the files Restore created are removed.
//
// Values are restored exactly as stored, so sealed records need the
// original key-encryption key: the same root.key (RootKey, or copied into
// the directory later) or the same passphrase (kek.params is written from
// the backup header). A wrong KEK is refused when the server starts.
// Admin tokens of the old server stay valid (the token root secret is in
// the store); restore writes no admin.token, and the first start writes a
// new one.
func Restore(ctx context.Context, f io.ReadSeeker, opts RestoreOptions) (res RestoreResult, err error) {
	hdr, tr, err := backup.Verify(f)
	if err != nil {
		return res, fmt.Errorf("server: restore refused, nothing was written: %w", err)
	}
	res.Header, res.Items, res.Revision = hdr, tr.Items, tr.Revision

	var params seal.PassphraseParams
	if hdr.KEK == backup.KEKPassphrase {
		if params, err = seal.ParsePassphraseParams(hdr.KEKParams); err != nil {
			return res, fmt.Errorf("server: restore refused: kek_params in the backup: %w", err)
		}
		if opts.RootKey != "" {
			return res, fmt.Errorf("%w: the backup's key-encryption key comes from a passphrase; --root-key does not apply", ErrRestoreTarget)
		}
	}

	dir := opts.DataDir
	existingRootKey, err := checkRestoreTarget(dir)
	if err != nil {
		return res, err
	}
	rootKey := opts.RootKey
	if existingRootKey {
		if rootKey != "" {
			return res, fmt.Errorf("%w: %s already holds a %s; give --root-key or put the file there, not both", ErrRestoreTarget, dir, RootKeyFile)
		}
		if hdr.KEK != backup.KEKRootKey {
			return res, fmt.Errorf("%w: %s holds a %s but the backup's KEK comes from a passphrase", ErrRestoreTarget, dir, RootKeyFile)
		}
		rootKey = filepath.Join(dir, RootKeyFile)
	}
	var kek []byte
	if rootKey != "" {
		if kek, err = readRootKey(rootKey, hdr.KEKID); err != nil {
			return res, err
		}
		defer clear(kek)
		res.RootKeyChecked = true
	}

	// From here on, whatever this call creates is removed on failure.
	var created []string
	defer func() {
		if err != nil {
			for i := len(created) - 1; i >= 0; i-- {
				os.Remove(created[i])
			}
		}
	}()
	if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
		if err = os.MkdirAll(dir, 0o700); err != nil {
			return res, fmt.Errorf("server: restore: %w", err)
		}
		created = append(created, dir)
	}
	dbPath := filepath.Join(dir, DBFile)
	created = append(created, dbPath)
	if err = restoreStore(ctx, f, dbPath, tr); err != nil {
		return res, err
	}
	if kek != nil && !existingRootKey {
		path := filepath.Join(dir, RootKeyFile)
		created = append(created, path)
		if err = fsutil.CreateFileAtomic(path, kek); err != nil {
			return res, fmt.Errorf("server: restore: writing %s: %w", path, err)
		}
	}
	if hdr.KEK == backup.KEKPassphrase {
		path := filepath.Join(dir, ParamsFile)
		created = append(created, path)
		if err = fsutil.CreateFileAtomic(path, params.Marshal()); err != nil {
			return res, fmt.Errorf("server: restore: writing %s: %w", path, err)
		}
	}
	if err = fsutil.SyncDir(dir); err != nil {
		return res, fmt.Errorf("server: restore: %w", err)
	}
	return res, nil
}

// checkRestoreTarget accepts an absent or empty directory, or one holding
// only root.key (reported by the result).
func checkRestoreTarget(dir string) (rootKeyOnly bool, err error) {
	if dir == "" {
		return false, fmt.Errorf("%w: no data directory given", ErrRestoreTarget)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("server: restore: %w", err)
	}
	for _, e := range entries {
		if e.Name() == DBFile {
			return false, fmt.Errorf("%w: %s already exists; restore never overwrites a store", ErrRestoreTarget, filepath.Join(dir, DBFile))
		}
	}
	switch {
	case len(entries) == 0:
		return false, nil
	case len(entries) == 1 && entries[0].Name() == RootKeyFile:
		return true, nil
	}
	return false, fmt.Errorf("%w: %s is not empty", ErrRestoreTarget, dir)
}

// readRootKey reads a root key file and checks it is the backup's KEK.
func readRootKey(path, wantID string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("server: restore: root key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("server: restore: root key %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o, want 0600", seal.ErrInsecurePermissions, path, perm)
	}
	kek, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("server: restore: root key: %w", err)
	}
	if len(kek) != seal.KEKSize {
		clear(kek)
		return nil, fmt.Errorf("%w: %s has %d bytes", seal.ErrKeyLength, path, len(kek))
	}
	sealer, err := seal.NewAESGCM(kek)
	if err != nil {
		clear(kek)
		return nil, err
	}
	id := sealer.KEKID()
	sealer.Destroy()
	if got := hex.EncodeToString(id[:]); subtle.ConstantTimeCompare([]byte(got), []byte(wantID)) != 1 {
		clear(kek)
		return nil, fmt.Errorf("server: restore refused: %s is not the key-encryption key of this backup (its id is %s, the backup needs %s)", path, got, wantID)
	}
	return kek, nil
}

// restoreStore reads f again from the start and writes every record into a
// new bbolt store at path, checking the trailer once more at the end (the
// file may have changed since it was verified).
func restoreStore(ctx context.Context, f io.ReadSeeker, path string, want backup.Trailer) error {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("server: restore: %w", err)
	}
	r, err := backup.NewReader(f)
	if err != nil {
		return fmt.Errorf("server: restore: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%w: %s already exists", ErrRestoreTarget, path)
	}
	st, err := boltstore.Open(path)
	if err != nil {
		return err
	}
	defer st.Close()
	var (
		batch []storage.Mutation
		size  int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := st.Apply(ctx, batch...); err != nil {
			return fmt.Errorf("server: restore: writing the store: %w", err)
		}
		batch, size = batch[:0], 0
		return nil
	}
	for {
		k, v, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("server: restore: the backup changed while it was read: %w", err)
		}
		batch = append(batch, storage.Mutation{Key: k, Value: v, Expect: storage.MustNotExist})
		size += len(k) + len(v)
		if len(batch) >= restoreBatchItems || size >= restoreBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	if got, _ := r.Trailer(); got != want {
		return fmt.Errorf("server: restore: the backup changed while it was read: %w", backup.ErrChecksum)
	}
	return st.Close()
}
