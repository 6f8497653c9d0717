package keystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// Snapshot calls fn with every record of the store (metadata, sealed seeds,
// op results, server secrets, counters), exactly as stored and in key
// order, all from one consistent view, and returns the store revision of
// that view. Sealed records stay sealed: nothing is opened. It needs a store
// with the storage.Snapshotter capability; others give ErrUnsupported. An
// error from fn is returned as it is; a store failure wraps ErrUnavailable.
// Safe for concurrent use with every other method.
func (ks *Keystore) Snapshot(ctx context.Context, fn func(key string, value []byte) error) (int64, error) {
	if err := ks.requireHealthy("take a snapshot"); err != nil {
		return 0, err
	}
	sn, ok := ks.raw.(storage.Snapshotter)
	if !ok {
		return 0, fmt.Errorf("%w: this store cannot take a consistent snapshot", ErrUnsupported)
	}
	var fnErr error
	rev, err := sn.Snapshot(ctx, func(it storage.Item) error {
		if err := fn(it.Key, it.Value); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	switch {
	case err == nil:
		return rev, nil
	case fnErr != nil && errors.Is(err, fnErr):
		return 0, fnErr
	default:
		ks.health.failed(err)
		return 0, storeErr(err)
	}
}
