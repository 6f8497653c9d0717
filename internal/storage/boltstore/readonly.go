package boltstore

import (
	"context"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// ErrLocked reports a store file another process holds (a server running on
// it). The errors of Open and OpenReadOnly match it with errors.Is, and
// storage.ErrUnavailable too.
var ErrLocked = errors.New("boltstore: the store file is locked by another process")

// lockedError is the error of a held file; hint says what to do.
type lockedError struct{ path, hint string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("boltstore: %s is locked by another process%s: %v", e.path, e.hint, storage.ErrUnavailable)
}

func (e *lockedError) Is(target error) bool {
	return target == ErrLocked || target == storage.ErrUnavailable
}

// ReadOnly is a store file opened for reading only, by tools that copy a
// stopped server's store (ron-kms migrate). It takes bbolt's shared file
// lock, so it cannot open a file a server holds (the server's lock is
// exclusive), and a server cannot open the file while it is held. It writes
// nothing: not even the buckets Open creates. It is safe for concurrent use.
type ReadOnly struct {
	db   *bolt.DB
	path string
}

var _ storage.Snapshotter = (*ReadOnly)(nil)

// OpenReadOnly opens the existing store file at path for reading. A file
// held by another process is refused after one second with an error
// wrapping ErrLocked; a missing file with one wrapping fs.ErrNotExist; a
// file that is not a store written by Open with storage.ErrUnavailable.
// Every error wraps storage.ErrUnavailable.
func OpenReadOnly(path string) (*ReadOnly, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, &lockedError{path: path, hint: " (is a server running on it? stop it first)"}
	}
	if err != nil {
		return nil, unavailable(fmt.Errorf("open %s: %w", path, err))
	}
	err = db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(metaBucket)
		if tx.Bucket(dataBucket) == nil || meta == nil {
			return errors.New("not a ron-kms store (no data or meta bucket)")
		}
		_, err := readRevision(meta)
		return err
	})
	if err != nil {
		db.Close()
		return nil, unavailable(fmt.Errorf("open %s: %w", path, err))
	}
	return &ReadOnly{db: db, path: path}, nil
}

// Path returns the file the store was opened on.
func (r *ReadOnly) Path() string { return r.path }

// Get returns the item stored under key (storage.Store.Get): an error
// wrapping storage.ErrNotFound if there is none.
func (r *ReadOnly) Get(ctx context.Context, key string) (storage.Item, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.Item{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Item{}, err
	}
	var it storage.Item
	err := r.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(dataBucket).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("%w: key %q", storage.ErrNotFound, key)
		}
		var err error
		it, err = decodeItem(key, v)
		return err
	})
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.Item{}, unavailable(err)
	}
	return it, err
}

// Revision returns the store revision (storage.Store.Revision).
func (r *ReadOnly) Revision(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev int64
	err := r.db.View(func(tx *bolt.Tx) error {
		var err error
		rev, err = readRevision(tx.Bucket(metaBucket))
		return err
	})
	if err != nil {
		return 0, unavailable(err)
	}
	return rev, nil
}

// Snapshot implements storage.Snapshotter, like Store.Snapshot. Nobody
// writes the file while it is open, so fn may take its time.
func (r *ReadOnly) Snapshot(ctx context.Context, fn func(storage.Item) error) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return snapshot(ctx, r.db, fn)
}

// Close releases the file and its lock.
func (r *ReadOnly) Close() error {
	if err := r.db.Close(); err != nil {
		return unavailable(err)
	}
	return nil
}
