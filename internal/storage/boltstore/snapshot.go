package boltstore

import (
	"context"
	"errors"

	bolt "go.etcd.io/bbolt"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// Snapshot implements storage.Snapshotter with one bbolt read transaction:
// the view is consistent, and writers go on while it runs. A writer that
// must grow the file's memory map waits for read transactions to end, so fn
// should not block for long (the backup route bounds it with a write
// deadline). Errors returned by fn come back unwrapped.
func (s *Store) Snapshot(ctx context.Context, fn func(storage.Item) error) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, storage.ErrClosed
	}
	return snapshot(ctx, s.db, fn)
}

// snapshot calls fn with every item of db in one read transaction.
func snapshot(ctx context.Context, db *bolt.DB, fn func(storage.Item) error) (int64, error) {
	var (
		rev   int64
		fnErr error
	)
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		if rev, err = readRevision(tx.Bucket(metaBucket)); err != nil {
			return err
		}
		c := tx.Bucket(dataBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				fnErr = err
				return err
			}
			it, err := decodeItem(string(k), v)
			if err != nil {
				return err
			}
			if err := fn(it); err != nil {
				fnErr = err
				return err
			}
		}
		return nil
	})
	if fnErr != nil && errors.Is(err, fnErr) {
		return 0, fnErr
	}
	if err != nil {
		return 0, unavailable(err)
	}
	return rev, nil
}
