// Package storecopy copies a ron-kms store, item by item and as stored, into
// an empty store: what `ron-kms migrate` (a single node's kms.db into an
// etcd prefix) and `ron-kms restore --to` (a backup file into an etcd
// prefix) share.
//
// Values are copied as they are: sealed seeds stay sealed, nothing is
// unsealed, and no key-encryption key is needed or read. Revisions are not
// copied (the target store numbers its own writes); no value holds one.
//
// A copy goes in five steps:
//
//  1. The target must be empty: not one item (CheckEmpty).
//  2. deployment.CopyingKey is written, holding the marker of this copy.
//  3. Every source item is written with Expect MustNotExist, in Applies of
//     at most storage.MaxApplyMutations mutations and about MaxBatchBytes
//     bytes, so that a concurrent writer of any copied key is detected.
//     The items in Options.Extra that the source lacks follow.
//  4. Everything is read back from one snapshot of the target and compared
//     with the source: the same keys, counts and SHA-256 digest (Summary),
//     the added items byte for byte, and nothing else.
//  5. Only then, in one transaction, is the deployment marker written (the
//     source's own, or Options.Marker) and CopyingKey deleted: the copy's
//     commit point. A copy interrupted before it leaves items and
//     CopyingKey but no marker, which a starting node and a second copy
//     both refuse (see package deployment); CheckEmpty recognizes it, and
//     it is removed by hand (etcdctl del --prefix P) before trying again.
//     There is no resume: a copy is fast, and starting from empty is
//     simple to check.
package storecopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ron-kms/ron-kms/internal/deployment"
	"github.com/ron-kms/ron-kms/internal/storage"
)

// MaxBatchBytes bounds the keys and values of one Apply (etcd refuses
// requests over 1.5 MiB by default, --max-request-bytes). A single item
// larger than that goes alone.
const MaxBatchBytes = 1 << 20

// Target is a store that a copy writes and reads back from one snapshot.
// Every store of the project is one.
type Target interface {
	storage.Store
	storage.Snapshotter
}

// Source calls yield with every item to copy, in strictly ascending key
// order, and returns the revision the source was read at. An error from
// yield is returned as it is.
type Source func(ctx context.Context, yield func(key string, value []byte) error) (revision int64, err error)

// FromSnapshot is the Source of a store that can take a snapshot (a
// boltstore.ReadOnly of a stopped server's kms.db).
func FromSnapshot(sn storage.Snapshotter) Source {
	return func(ctx context.Context, yield func(string, []byte) error) (int64, error) {
		return sn.Snapshot(ctx, func(it storage.Item) error { return yield(it.Key, it.Value) })
	}
}

var (
	// ErrNotEmpty: the target holds items; nothing was written. The error
	// is a *NotEmptyError.
	ErrNotEmpty = errors.New("storecopy: the target is not empty")
	// ErrSource: the source yielded an invalid key or keys out of order.
	ErrSource = errors.New("storecopy: the source is not a valid store")
	// ErrConcurrentWrite: something else wrote the target during the copy
	// (a key the copy writes existed, or a key it did not write appeared).
	ErrConcurrentWrite = errors.New("storecopy: something else wrote the target during the copy")
	// ErrMismatch: what was read back differs from what was copied.
	ErrMismatch = errors.New("storecopy: the target read back differs from the source")
)

// NotEmptyError describes a target that is not empty.
type NotEmptyError struct {
	// FirstKey is the least key found.
	FirstKey string
	// Marker is the target's deployment marker, when it has one that
	// parses; MarkerErr says why one that is there does not.
	Marker    *deployment.Marker
	MarkerErr error
	// Interrupted reports an interrupted copy: deployment.CopyingKey and no
	// marker. CopyOf is the marker that copy would have written, if it
	// parses. Such a target can be removed whole.
	Interrupted bool
	CopyOf      *deployment.Marker
	// Inner, when set, is a longer prefix (relative to the target's) that
	// holds a deployment, found along FirstKey; InnerMarker is its marker.
	Inner       string
	InnerMarker *deployment.Marker
	// Prefix is the target's own prefix, for messages, when the store has
	// one (etcdstore).
	Prefix string
}

func (e *NotEmptyError) Error() string {
	switch {
	case e.Marker != nil:
		return fmt.Sprintf("%v: it holds ron-kms deployment %s (created %s by %s)", ErrNotEmpty, e.Marker.ID, e.Marker.CreatedAt, e.Marker.CreatedBy)
	case e.MarkerErr != nil:
		return fmt.Sprintf("%v: it holds items (the first is %.80q) and a deployment marker that does not parse (%v)", ErrNotEmpty, e.FirstKey, e.MarkerErr)
	case e.Interrupted && e.CopyOf != nil:
		return fmt.Sprintf("%v: it holds an interrupted %s (deployment %s, started %s): no node serves from it", ErrNotEmpty, e.CopyOf.CreatedBy, e.CopyOf.ID, e.CopyOf.CreatedAt)
	case e.Interrupted:
		return fmt.Sprintf("%v: it holds an interrupted migrate or restore: no node serves from it", ErrNotEmpty)
	case e.InnerMarker != nil:
		return fmt.Sprintf("%v: it holds ron-kms deployment %s under the longer prefix %.80q", ErrNotEmpty, e.InnerMarker.ID, e.Prefix+e.Inner)
	case e.Inner != "":
		return fmt.Sprintf("%v: it holds a ron-kms deployment under the longer prefix %.80q", ErrNotEmpty, e.Prefix+e.Inner)
	default:
		return fmt.Sprintf("%v: it holds items (the first is %.80q) but no deployment marker: not a ron-kms deployment", ErrNotEmpty, e.FirstKey)
	}
}

func (e *NotEmptyError) Unwrap() error { return ErrNotEmpty }

// CheckEmpty returns nil if dst holds no item, else a *NotEmptyError that
// says what it holds: a deployment, an interrupted copy, a deployment under
// a longer prefix (looked for along the first key), or other items.
func CheckEmpty(ctx context.Context, dst storage.Store) error {
	items, err := dst.List(ctx, "", "", 1)
	if err != nil {
		return fmt.Errorf("storecopy: reading the target: %w", err)
	}
	if len(items) == 0 {
		return nil
	}
	ne := &NotEmptyError{FirstKey: items[0].Key}
	if p, ok := dst.(interface{ Prefix() string }); ok {
		ne.Prefix = p.Prefix()
	}
	get := func(key string) ([]byte, bool, error) {
		it, err := dst.Get(ctx, key)
		switch {
		case err == nil:
			return it.Value, true, nil
		case errors.Is(err, storage.ErrNotFound):
			return nil, false, nil
		default:
			return nil, false, fmt.Errorf("storecopy: reading the target: %w", err)
		}
	}
	if v, ok, err := get(deployment.MarkerKey); err != nil {
		return err
	} else if ok {
		if m, perr := deployment.Parse(v); perr == nil {
			ne.Marker = &m
		} else {
			ne.MarkerErr = perr
		}
		return ne
	}
	if v, ok, err := get(deployment.CopyingKey); err != nil {
		return err
	} else if ok {
		ne.Interrupted = true
		if m, perr := deployment.Parse(v); perr == nil {
			ne.CopyOf = &m
		}
		return ne
	}
	for i := 0; i < len(ne.FirstKey); i++ {
		if ne.FirstKey[i] != '/' {
			continue
		}
		inner := ne.FirstKey[:i+1]
		if len(inner)+len(deployment.MarkerKey) > storage.MaxKeyLen {
			break
		}
		v, ok, err := get(inner + deployment.MarkerKey)
		if err != nil {
			return err
		}
		if !ok {
			if v, ok, err = get(inner + deployment.CopyingKey); err != nil {
				return err
			}
		}
		if ok {
			ne.Inner = inner
			if m, perr := deployment.Parse(v); perr == nil {
				ne.InnerMarker = &m
			}
			break
		}
	}
	return ne
}

// Options configure Copy.
type Options struct {
	// Extra are items to write when the source lacks them (such as
	// deployment.ParamsKey from a data directory's kek.params). A source
	// item of the same key wins. Not for deployment.MarkerKey.
	Extra map[string][]byte
	// Marker is the deployment marker of this copy, required: it is held
	// under deployment.CopyingKey while the copy runs, and written last as
	// deployment.MarkerKey unless the source has a marker of its own.
	Marker []byte
	// BatchItems and BatchBytes bound one Apply; storage.MaxApplyMutations
	// and MaxBatchBytes when 0.
	BatchItems, BatchBytes int
	// Retries is how many times an Apply that failed with
	// storage.ErrUnavailable (its outcome unknown) is tried again, after
	// checking whether it landed; 5 when 0.
	Retries int
}

// Report says what a copy did.
type Report struct {
	// Source summarizes every source item; Target the items read back
	// from the target under the same keys. A successful copy has equal
	// summaries (apart from Revision).
	Source, Target Summary
	// Added are the keys the copy wrote that the source did not hold
	// (extras, and the marker when the source had none), in key order.
	Added []string
	// Marker is the deployment marker the target now holds, if any.
	Marker *deployment.Marker
	// Applies counts the Applies that wrote the target.
	Applies int
	// Written reports that an Apply was sent, so the target may hold
	// items of this copy (on error: the prefix must be cleaned before a
	// new copy).
	Written bool
}

// Copy copies every item of src into the empty dst (see the package
// comment). On any error the target holds no marker written by Copy; past
// CheckEmpty, the Report comes back with the error, and its Written says
// whether the target may hold some of the items, which the caller must
// report.
func Copy(ctx context.Context, dst Target, src Source, opts Options) (*Report, error) {
	if opts.Marker == nil {
		return nil, errors.New("storecopy: Options.Marker is required")
	}
	for _, k := range []string{deployment.MarkerKey, deployment.CopyingKey} {
		if _, ok := opts.Extra[k]; ok {
			return nil, fmt.Errorf("storecopy: %s cannot be an extra item", k)
		}
	}
	if opts.BatchItems <= 0 || opts.BatchItems > storage.MaxApplyMutations {
		opts.BatchItems = storage.MaxApplyMutations
	}
	if opts.BatchBytes <= 0 {
		opts.BatchBytes = MaxBatchBytes
	}
	if opts.Retries <= 0 {
		opts.Retries = 5
	}
	if err := CheckEmpty(ctx, dst); err != nil {
		return nil, err
	}
	c := &copier{dst: dst, opts: opts}
	rep := &Report{}

	// Step 2: the copy is under way.
	if err := c.apply(ctx, []storage.Mutation{{Key: deployment.CopyingKey, Value: opts.Marker, Expect: storage.MustNotExist}}); err != nil {
		return c.report(rep), err
	}
	copying, err := dst.Get(ctx, deployment.CopyingKey)
	if err != nil || !bytes.Equal(copying.Value, opts.Marker) {
		return c.report(rep), fmt.Errorf("%w: %s was not as written (%v)", ErrConcurrentWrite, deployment.CopyingKey, err)
	}

	// Step 3: the source, then the extras it lacks.
	var (
		srcSum     summer
		lastKey    string
		heldMarker []byte
		present    = make(map[string]bool, len(opts.Extra))
	)
	rev, err := src(ctx, func(k string, v []byte) error {
		if err := storage.CheckKey(k); err != nil {
			return fmt.Errorf("%w: item %d: %v", ErrSource, srcSum.items+1, err)
		}
		if srcSum.items > 0 && k <= lastKey {
			return fmt.Errorf("%w: key %.80q does not sort after %.80q", ErrSource, k, lastKey)
		}
		if v == nil {
			v = []byte{}
		}
		lastKey = k
		srcSum.add(k, v)
		switch k {
		case deployment.MarkerKey:
			heldMarker = bytes.Clone(v) // written last, step 5
			return nil
		case deployment.CopyingKey:
			return fmt.Errorf("%w: it holds %s: it is an interrupted copy itself", ErrSource, k)
		}
		if _, ok := opts.Extra[k]; ok {
			present[k] = true
		}
		return c.add(ctx, k, v)
	})
	if err != nil {
		return c.report(rep), err
	}
	srcSum.rev = rev
	added := map[string][]byte{deployment.CopyingKey: opts.Marker}
	for _, k := range sortedKeys(opts.Extra) {
		if !present[k] {
			added[k] = opts.Extra[k]
			if err := c.add(ctx, k, opts.Extra[k]); err != nil {
				return c.report(rep), err
			}
		}
	}
	if err := c.flush(ctx); err != nil {
		return c.report(rep), err
	}

	// Step 4: read back.
	tgtSum, err := readBack(ctx, dst, added, heldMarker)
	if err != nil {
		return c.report(rep), err
	}
	rep.Source, rep.Target = srcSum.summary(), tgtSum.summary()
	if !rep.Source.Same(rep.Target) {
		return c.report(rep), fmt.Errorf("%w: source %d items, %d bytes, sha256 %s; target %d items, %d bytes, sha256 %s",
			ErrMismatch, rep.Source.Items, rep.Source.Bytes, rep.Source.SHA256, rep.Target.Items, rep.Target.Bytes, rep.Target.SHA256)
	}

	// Step 5: the marker, the commit point.
	delete(added, deployment.CopyingKey)
	marker := heldMarker
	if marker == nil {
		marker = opts.Marker
		added[deployment.MarkerKey] = marker
	}
	commit := []storage.Mutation{
		{Key: deployment.MarkerKey, Value: marker, Expect: storage.MustNotExist},
		{Key: deployment.CopyingKey, Expect: copying.Revision},
	}
	if err := c.apply(ctx, commit); err != nil {
		return c.report(rep), err
	}
	it, err := dst.Get(ctx, deployment.MarkerKey)
	if err != nil {
		return c.report(rep), fmt.Errorf("storecopy: reading the marker back: %w", err)
	}
	if !bytes.Equal(it.Value, marker) {
		return c.report(rep), fmt.Errorf("%w: the marker read back is not the one written", ErrConcurrentWrite)
	}
	if m, err := deployment.Parse(marker); err == nil {
		rep.Marker = &m
	}
	rep.Target.Revision = it.Revision
	rep.Added = sortedKeys(added)
	return c.report(rep), nil
}

// readBack reads the whole target from one snapshot: every item must be a
// copied one (summed) or an added one (equal to what was added), and the
// held marker, not yet written, is summed where it sorts.
func readBack(ctx context.Context, dst Target, added map[string][]byte, heldMarker []byte) (summer, error) {
	var (
		sum       summer
		seenAdded int
		injected  = heldMarker == nil
	)
	inject := func(before string) {
		if !injected && (before == "" || deployment.MarkerKey < before) {
			sum.add(deployment.MarkerKey, heldMarker)
			injected = true
		}
	}
	rev, err := dst.Snapshot(ctx, func(it storage.Item) error {
		if it.Key == deployment.MarkerKey {
			return fmt.Errorf("%w: a deployment marker appeared", ErrConcurrentWrite)
		}
		if want, ok := added[it.Key]; ok {
			if !bytes.Equal(it.Value, want) {
				return fmt.Errorf("%w: %s holds another value", ErrConcurrentWrite, it.Key)
			}
			seenAdded++
			return nil
		}
		inject(it.Key)
		sum.add(it.Key, it.Value)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrConcurrentWrite) {
			return sum, err
		}
		return sum, fmt.Errorf("storecopy: reading the target back: %w", err)
	}
	inject("")
	if seenAdded != len(added) {
		return sum, fmt.Errorf("%w: %d of the %d added items are missing", ErrMismatch, len(added)-seenAdded, len(added))
	}
	sum.rev = rev
	return sum, nil
}

// copier batches and applies the mutations of a copy.
type copier struct {
	dst     storage.Store
	opts    Options
	batch   []storage.Mutation
	size    int
	applies int
	written bool
}

// report fills in what the copier knows.
func (c *copier) report(rep *Report) *Report {
	rep.Applies, rep.Written = c.applies, c.written
	return rep
}

func (c *copier) add(ctx context.Context, k string, v []byte) error {
	n := len(k) + len(v)
	if len(c.batch) > 0 && (len(c.batch) >= c.opts.BatchItems || c.size+n > c.opts.BatchBytes) {
		if err := c.flush(ctx); err != nil {
			return err
		}
	}
	c.batch = append(c.batch, storage.Mutation{Key: k, Value: v, Expect: storage.MustNotExist})
	c.size += n
	return nil
}

func (c *copier) flush(ctx context.Context) error {
	if len(c.batch) == 0 {
		return nil
	}
	if err := c.apply(ctx, c.batch); err != nil {
		return err
	}
	c.batch, c.size = c.batch[:0], 0
	return nil
}

// apply applies muts. An Apply whose outcome is unknown (ErrUnavailable)
// is tried again; if the retry conflicts, the keys are read: all of them as
// written (put with that value, or deleted) means the earlier attempt
// landed.
func (c *copier) apply(ctx context.Context, muts []storage.Mutation) error {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		c.written = true
		_, err := c.dst.Apply(ctx, muts...)
		switch {
		case err == nil:
			c.applies++
			return nil
		case errors.Is(err, storage.ErrConflict):
			if attempt > 0 && c.landed(ctx, muts) {
				c.applies++
				return nil
			}
			return fmt.Errorf("%w: %v", ErrConcurrentWrite, err)
		case !errors.Is(err, storage.ErrUnavailable) || attempt >= c.opts.Retries:
			return fmt.Errorf("storecopy: writing the target: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// landed reports whether every key of muts is as written: holding the
// value put, or absent after a delete.
func (c *copier) landed(ctx context.Context, muts []storage.Mutation) bool {
	for _, m := range muts {
		it, err := c.dst.Get(ctx, m.Key)
		if m.Value == nil {
			if !errors.Is(err, storage.ErrNotFound) {
				return false
			}
			continue
		}
		if err != nil || !bytes.Equal(it.Value, m.Value) {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
