// Package storage defines Store, the small key-value interface under the
// ron-kms keystore, and the errors every implementation shares.
//
// The model follows etcd so that the etcd implementation maps onto it
// directly: the store has one revision that only ever grows, and grows with
// every successful Apply that writes (the generation counter of SPEC §9);
// every key carries the revision of its last write (etcd's mod_revision);
// Apply is a transaction guarded by per-key revision compares; Watch
// streams changes under a prefix in revision order.
//
// The revision is dense in memstore and boltstore (0 when new, then exactly
// one more per Apply) but not in etcdstore, whose revision is the whole
// cluster's: writes outside the store's prefix move it too, and an Apply
// that only deletes absent keys may leave it where it was. The contract
// below promises only what both honour; callers compare revisions, never
// count them.
//
// Implementations live in subpackages (memstore, boltstore, etcdstore) and
// are all held to the same contract by storagetest.Run.
// Values are opaque bytes: callers store only sealed key material (SPEC §6),
// and stores neither inspect nor log values.
package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Implementations wrap them with %w, so callers test with
// errors.Is. Context errors (context.Canceled, context.DeadlineExceeded) are
// returned as they are, unwrapped.
var (
	// ErrNotFound means the key does not exist. Returned only by Get.
	ErrNotFound = errors.New("storage: not found")

	// ErrConflict means an Expect in Apply did not hold, so nothing was
	// written. The error names the first offending key:
	// fmt.Errorf("%w: key %q", ErrConflict, key). The caller should re-read
	// and retry if the operation still makes sense.
	ErrConflict = errors.New("storage: revision conflict")

	// ErrUnavailable means the backend failed: an I/O error, a lock held by
	// another process, an unreachable cluster, or a stored record that does
	// not decode. Implementations wrap their cause with %w. The outcome of an
	// Apply that fails with ErrUnavailable is unknown; the caller must re-read.
	ErrUnavailable = errors.New("storage: unavailable")

	// ErrClosed means the Store was closed. Every method except Close returns
	// it after Close.
	ErrClosed = errors.New("storage: closed")

	// ErrInvalid means the request itself is malformed: an invalid key (see
	// CheckKey), the same key twice in one Apply, an Expect below AnyRevision,
	// or an Apply with no mutations. It is a caller bug and is never retried.
	ErrInvalid = errors.New("storage: invalid argument")
)

// Special values of Mutation.Expect. Any value greater than zero is the exact
// Revision the key must currently have.
const (
	// MustNotExist requires the key to be absent.
	MustNotExist int64 = 0
	// AnyRevision applies the mutation whether or not the key exists.
	AnyRevision int64 = -1
)

// MaxKeyLen is the longest key, in bytes, that every Store accepts.
const MaxKeyLen = 4096

// MaxApplyMutations is the most mutations one Apply may carry on every
// Store: etcd's default limit of operations in one transaction
// (--max-txn-ops). A store may accept more (bbolt and memory do); callers
// that write in bulk and must work on every store stay at or under it.
const MaxApplyMutations = 128

// WatchBuffer is the number of events a watcher may fall behind before its
// channel is closed. Writers never wait for watchers.
const WatchBuffer = 1024

// Item is a stored key and its value.
type Item struct {
	Key string
	// Value is never nil for a stored item (an empty value is []byte{}).
	// It belongs to the caller.
	Value []byte
	// Revision is the store revision of the Apply that last wrote Key
	// (always > 0). Pass it as Mutation.Expect for compare-and-swap.
	Revision int64
}

// Mutation is one write inside an Apply.
type Mutation struct {
	Key string
	// Value is the new value; nil deletes the key. A non-nil empty slice
	// stores an empty value. Apply copies it.
	Value []byte
	// Expect is the condition on the key's current state: MustNotExist,
	// AnyRevision, or the exact current Item.Revision. Deletes use the same
	// rules as puts: deleting an absent key succeeds with MustNotExist or
	// AnyRevision (and changes nothing but the store revision), and fails
	// with ErrConflict for a positive Expect.
	Expect int64
}

// Event is one change seen by Watch.
type Event struct {
	Key string
	// Value is the new value, or nil when Deleted. It belongs to the
	// receiver.
	Value []byte
	// Revision is the store revision of the Apply that made the change. All
	// events of one Apply share it.
	Revision int64
	// Deleted reports a delete of an existing key. Deleting an absent key
	// produces no event.
	Deleted bool
}

// Store is a transactional, revisioned key-value store.
//
// Every implementation is safe for concurrent use by multiple goroutines.
// Values are copied in and out: a caller that modifies a slice it passed or
// received never affects the store. Keys are compared as byte strings.
// Methods that take a context check it before doing any work and return
// ctx.Err() if it is done; an operation already handed to the backend is not
// interrupted.
type Store interface {
	// Get returns the item stored under key, or an error wrapping
	// ErrNotFound if there is none, or ErrInvalid for an invalid key.
	Get(ctx context.Context, key string) (Item, error)

	// List returns the items whose keys start with prefix and sort strictly
	// after startAfter ("" means from the start), in ascending byte order, at
	// most limit of them (limit <= 0 means all). To page, pass the last key
	// returned as the next startAfter. An empty result has a nil error.
	List(ctx context.Context, prefix, startAfter string, limit int) ([]Item, error)

	// Apply applies muts atomically: either every Expect holds and every
	// mutation is applied, or nothing is written and the error wraps
	// ErrConflict (naming the first failing key) or ErrInvalid. On success
	// every written key gets one new revision, greater than any revision
	// the store returned before; the change is durable (fsync or the
	// engine's equivalent) before Apply returns; and Apply returns that
	// revision. (An Apply that only deletes absent keys writes nothing and
	// returns a revision at least the previous one.) A failed Apply does
	// not move the revision. At most MaxApplyMutations mutations are
	// accepted by every store.
	Apply(ctx context.Context, muts ...Mutation) (int64, error)

	// Revision returns the current store revision: at least every revision
	// an Apply has returned, and never less than an earlier Revision. It is
	// persisted with the data, so an older copy of the store has a lower
	// revision. A new dense store (memstore, boltstore) has revision 0.
	Revision(ctx context.Context) (int64, error)

	// Watch returns a channel of the changes to keys under prefix ("" means
	// all keys) made by every Apply that completes after Watch returns, in
	// revision order and, within one Apply, in mutation order. The channel
	// is closed when ctx is done, when the store is closed, or when the
	// receiver falls more than WatchBuffer events behind; after that the
	// receiver must re-read what it needs and watch again. Watch never slows
	// down writers.
	Watch(ctx context.Context, prefix string) (<-chan Event, error)

	// Close releases the store and closes every watch channel. Operations
	// in flight finish first. Later calls to Close return nil; every other
	// method returns ErrClosed.
	Close() error
}

// CheckKey reports whether key is acceptable to every Store: non-empty, at
// most MaxKeyLen bytes, and free of NUL bytes. The error wraps ErrInvalid and
// does not repeat the key, which may come from a request.
func CheckKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalid)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key longer than %d bytes", ErrInvalid, MaxKeyLen)
	case strings.IndexByte(key, 0) >= 0:
		return fmt.Errorf("%w: key contains a NUL byte", ErrInvalid)
	}
	return nil
}

// CheckMutations validates the arguments of an Apply before any state is
// read: at least one mutation, every key valid (CheckKey), no key twice, and
// every Expect at least AnyRevision. Implementations call it first; the
// error wraps ErrInvalid.
func CheckMutations(muts []Mutation) error {
	if len(muts) == 0 {
		return fmt.Errorf("%w: Apply with no mutations", ErrInvalid)
	}
	seen := make(map[string]struct{}, len(muts))
	for i, m := range muts {
		if err := CheckKey(m.Key); err != nil {
			return fmt.Errorf("mutation %d: %w", i, err)
		}
		if _, dup := seen[m.Key]; dup {
			return fmt.Errorf("%w: mutation %d repeats key %q", ErrInvalid, i, m.Key)
		}
		seen[m.Key] = struct{}{}
		if m.Expect < AnyRevision {
			return fmt.Errorf("%w: mutation %d has Expect %d", ErrInvalid, i, m.Expect)
		}
	}
	return nil
}

// CheckExpect reports whether a mutation expecting expect may apply to a key
// whose current revision is current (0 when the key is absent). It returns
// nil or an error wrapping ErrConflict that names key.
func CheckExpect(key string, expect, current int64) error {
	if expect == AnyRevision || expect == current {
		return nil
	}
	return fmt.Errorf("%w: key %q", ErrConflict, key)
}
