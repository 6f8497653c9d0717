package storage

import "context"

// Snapshotter is an optional capability of a Store, found by type assertion
// (the way age finds the extra powers of a recipient):
//
//	if sn, ok := st.(storage.Snapshotter); ok { ... }
//
// Backups use it: List pages are separate reads, so a listing of a store
// that is being written is not a state the store was ever in; a snapshot is.
type Snapshotter interface {
	// Snapshot calls fn for every stored item, in ascending key order, all
	// read from one consistent view of the store: the state right after the
	// Apply that produced revision, which Snapshot returns. Applies that
	// complete while Snapshot runs are not seen, and every Apply is seen
	// entirely or not at all. Each Item's Value belongs to fn.
	//
	// If fn returns an error, Snapshot stops and returns it as it is. The
	// context is checked before the first item and between items; a done
	// context ends the snapshot with ctx.Err(). After Close, Snapshot
	// returns ErrClosed.
	//
	// A store may hold its read view open while fn runs (bbolt keeps one
	// read transaction), so fn should not block for long.
	Snapshot(ctx context.Context, fn func(Item) error) (revision int64, err error)
}
