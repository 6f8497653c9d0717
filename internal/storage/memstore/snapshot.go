package memstore

import (
	"bytes"
	"context"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// Snapshot implements storage.Snapshotter. It copies the key list and the
// entries (not the values, which Apply never changes in place) under the
// read lock, then calls fn without holding any lock, so a slow fn never
// stalls writers.
func (s *Store) Snapshot(ctx context.Context, fn func(storage.Item) error) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return 0, storage.ErrClosed
	}
	rev := s.rev
	keys := make([]string, len(s.keys))
	copy(keys, s.keys)
	entries := make([]entry, len(keys))
	for i, k := range keys {
		entries[i] = s.items[k]
	}
	s.mu.RUnlock()

	for i, k := range keys {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		e := entries[i]
		if err := fn(storage.Item{Key: k, Value: bytes.Clone(e.value), Revision: e.rev}); err != nil {
			return 0, err
		}
	}
	return rev, nil
}
