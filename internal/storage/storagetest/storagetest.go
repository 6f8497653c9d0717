// Package storagetest is the conformance suite for storage.Store. Every
// implementation runs it from its own tests:
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Store { return memstore.New() })
//	}
//
// and a persistent store also runs RunReopen. The suite holds each
// implementation to the contract written on storage.Store, so a test here
// fails exactly when a store disagrees with that contract.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// Option tells the suite what a store promises beyond the contract's
// minimum.
type Option func(*config)

// SharedRevision declares a store whose revision is shared with writers
// outside it (etcd: one revision for the whole cluster): a new store's
// revision need not be 0, and an Apply's revision is only greater than the
// one before, not necessarily by one. Without it the suite holds a store to
// dense revisions: 0 when new, then exactly one more per Apply (memstore,
// boltstore).
func SharedRevision() Option { return func(c *config) { c.dense = false } }

// config is what the suite checks of revisions.
type config struct {
	dense bool
}

func newConfig(opts []Option) config {
	c := config{dense: true}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// initial returns the revision of a new store: 0 for a dense store.
func (c config) initial(t *testing.T, s storage.Store) int64 {
	t.Helper()
	rev, err := s.Revision(t.Context())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	if rev < 0 || c.dense && rev != 0 {
		t.Fatalf("Revision of a new store = %d", rev)
	}
	return rev
}

// next checks that an Apply after one at revision prev returned a later
// revision: exactly prev+1 for a dense store.
func (c config) next(t *testing.T, prev, got int64) {
	t.Helper()
	if got <= prev || c.dense && got != prev+1 {
		t.Fatalf("Apply after revision %d returned revision %d", prev, got)
	}
}

// Opener returns a new, empty store for one subtest. The suite closes the
// store when the subtest ends; the opener may also register its own cleanup.
type Opener func(t *testing.T) storage.Store

// Run runs the conformance suite against stores returned by open, each
// check in its own subtest on a fresh store.
func Run(t *testing.T, open Opener, opts ...Option) {
	c := newConfig(opts)
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Store, config)
	}{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"MustNotExistTwice", testMustNotExistTwice},
		{"CompareAndSwap", testCompareAndSwap},
		{"AnyRevision", testAnyRevision},
		{"Delete", testDelete},
		{"Atomicity", testAtomicity},
		{"Revision", testRevision},
		{"List", testList},
		{"ListPaging", testListPaging},
		{"CopySemantics", testCopySemantics},
		{"InvalidArguments", testInvalidArguments},
		{"ConcurrentCAS", testConcurrentCAS},
		{"ContextDone", testContextDone},
		{"Closed", testClosed},
		{"Watch", testWatch},
		{"WatchPrefix", testWatchPrefix},
		{"WatchOnlyLaterChanges", testWatchOnlyLaterChanges},
		{"WatchCancel", testWatchCancel},
		{"WatchClosedByClose", testWatchClosedByClose},
		{"WatchOverflow", testWatchOverflow},
		{"Snapshot", testSnapshot},
		{"SnapshotStops", testSnapshotStops},
		{"SnapshotConsistent", testSnapshotConsistent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s, c)
		})
	}
}

func put(key, value string, expect int64) storage.Mutation {
	return storage.Mutation{Key: key, Value: []byte(value), Expect: expect}
}

func del(key string, expect int64) storage.Mutation {
	return storage.Mutation{Key: key, Expect: expect}
}

// mustApply applies muts and fails the test on error.
func mustApply(t *testing.T, s storage.Store, muts ...storage.Mutation) int64 {
	t.Helper()
	rev, err := s.Apply(t.Context(), muts...)
	if err != nil {
		t.Fatalf("Apply(%v): %v", keysOf(muts), err)
	}
	return rev
}

// mustConflict applies muts and fails the test unless the error wraps
// ErrConflict and names wantKey.
func mustConflict(t *testing.T, s storage.Store, wantKey string, muts ...storage.Mutation) {
	t.Helper()
	rev, err := s.Apply(t.Context(), muts...)
	if !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("Apply(%v) = %d, %v; want ErrConflict", keysOf(muts), rev, err)
	}
	if want := fmt.Sprintf("%q", wantKey); !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("conflict error %q does not name key %s", err, want)
	}
}

func mustGet(t *testing.T, s storage.Store, key string) storage.Item {
	t.Helper()
	it, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if it.Key != key {
		t.Fatalf("Get(%q).Key = %q", key, it.Key)
	}
	return it
}

func mustNotFound(t *testing.T, s storage.Store, key string) {
	t.Helper()
	if it, err := s.Get(t.Context(), key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) = %+v, %v; want ErrNotFound", key, it, err)
	}
}

func mustRevision(t *testing.T, s storage.Store, want int64) {
	t.Helper()
	got, err := s.Revision(t.Context())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	if got != want {
		t.Fatalf("Revision = %d, want %d", got, want)
	}
}

func keysOf(muts []storage.Mutation) []string {
	ks := make([]string, len(muts))
	for i, m := range muts {
		ks[i] = m.Key
	}
	return ks
}

func testGetMissing(t *testing.T, s storage.Store, c config) {
	mustNotFound(t, s, "missing")
	c.initial(t, s)
	items, err := s.List(t.Context(), "", "", 0)
	if err != nil || len(items) != 0 {
		t.Fatalf("List on empty store = %v, %v", items, err)
	}
}

func testPutGet(t *testing.T, s storage.Store, c config) {
	rev := mustApply(t, s, put("k", "v1", storage.MustNotExist))
	it := mustGet(t, s, "k")
	if string(it.Value) != "v1" || it.Revision != rev || rev <= 0 {
		t.Fatalf("Get = %+v, want value v1 at revision %d > 0", it, rev)
	}
	// A non-nil empty value is a put, not a delete.
	rev = mustApply(t, s, storage.Mutation{Key: "empty", Value: []byte{}, Expect: storage.MustNotExist})
	it = mustGet(t, s, "empty")
	if it.Value == nil || len(it.Value) != 0 || it.Revision != rev {
		t.Fatalf("Get(empty) = %+v, want non-nil empty value at revision %d", it, rev)
	}
	// Keys are byte strings: any non-NUL byte is allowed.
	odd := "\xff/ünï/\x01"
	mustApply(t, s, put(odd, "x", storage.MustNotExist))
	if it := mustGet(t, s, odd); string(it.Value) != "x" {
		t.Fatalf("Get(odd key) = %+v", it)
	}
}

func testMustNotExistTwice(t *testing.T, s storage.Store, c config) {
	r1 := mustApply(t, s, put("k", "v1", storage.MustNotExist))
	mustConflict(t, s, "k", put("k", "v2", storage.MustNotExist))
	if it := mustGet(t, s, "k"); string(it.Value) != "v1" {
		t.Fatalf("value after conflict = %q, want v1", it.Value)
	}
	mustRevision(t, s, r1)
}

func testCompareAndSwap(t *testing.T, s storage.Store, c config) {
	r1 := mustApply(t, s, put("k", "v1", storage.MustNotExist))
	r2 := mustApply(t, s, put("k", "v2", r1))
	c.next(t, r1, r2)
	mustConflict(t, s, "k", put("k", "v3", r1))   // stale
	mustConflict(t, s, "k", put("k", "v3", r2+5)) // from the future
	mustConflict(t, s, "absent", put("absent", "v", r2))
	it := mustGet(t, s, "k")
	if string(it.Value) != "v2" || it.Revision != r2 {
		t.Fatalf("Get = %+v, want v2 at %d", it, r2)
	}
	mustRevision(t, s, r2)
}

func testAnyRevision(t *testing.T, s storage.Store, c config) {
	r1 := mustApply(t, s, put("k", "v1", storage.AnyRevision)) // absent
	r2 := mustApply(t, s, put("k", "v2", storage.AnyRevision)) // present
	c.next(t, r1, r2)
	it := mustGet(t, s, "k")
	if string(it.Value) != "v2" || it.Revision != r2 {
		t.Fatalf("Get = %+v after revisions %d, %d", it, r1, r2)
	}
}

func testDelete(t *testing.T, s storage.Store, c config) {
	r1 := mustApply(t, s, put("k", "v", storage.MustNotExist))
	mustConflict(t, s, "k", del("k", storage.MustNotExist))
	mustConflict(t, s, "k", del("k", r1+1))
	r2 := mustApply(t, s, del("k", r1))
	mustNotFound(t, s, "k")
	mustRevision(t, s, r2)

	// Deleting an absent key follows the put rules and succeeds; in a
	// dense store it still counts as an Apply, in a shared one it may
	// leave the revision where it was.
	r3 := mustApply(t, s, del("k", storage.MustNotExist))
	r4 := mustApply(t, s, del("k", storage.AnyRevision))
	if c.dense && (r3 != r2+1 || r4 != r3+1) || r3 < r2 || r4 < r3 {
		t.Fatalf("revisions of absent deletes = %d, %d after %d", r3, r4, r2)
	}
	mustConflict(t, s, "k", del("k", r1))

	r5 := mustApply(t, s, put("k", "again", storage.MustNotExist))
	r6 := mustApply(t, s, del("k", storage.AnyRevision))
	c.next(t, r5, r6)
	mustNotFound(t, s, "k")
	mustRevision(t, s, r6)
}

func testAtomicity(t *testing.T, s storage.Store, c config) {
	r1 := mustApply(t, s, put("a", "a1", storage.MustNotExist), put("b", "b1", storage.MustNotExist))
	// The failing expectation comes last, so a store that applied mutations
	// one by one would already have written the others.
	mustConflict(t, s, "c",
		put("a", "a2", r1),
		del("b", r1),
		put("new", "n", storage.MustNotExist),
		put("c", "c2", r1), // c does not exist
	)
	mustRevision(t, s, r1)
	for _, k := range []string{"a", "b"} {
		if it := mustGet(t, s, k); string(it.Value) != k+"1" || it.Revision != r1 {
			t.Fatalf("Get(%q) = %+v after failed Apply", k, it)
		}
	}
	mustNotFound(t, s, "new")
	mustNotFound(t, s, "c")

	// The same batch with correct expectations applies as one revision.
	r2 := mustApply(t, s,
		put("a", "a2", r1),
		del("b", r1),
		put("new", "n", storage.MustNotExist),
		put("c", "c2", storage.MustNotExist),
	)
	c.next(t, r1, r2)
	for _, k := range []string{"a", "new", "c"} {
		if it := mustGet(t, s, k); it.Revision != r2 {
			t.Fatalf("Get(%q).Revision = %d, want %d", k, it.Revision, r2)
		}
	}
	mustNotFound(t, s, "b")
}

func testRevision(t *testing.T, s storage.Store, c config) {
	revs := []int64{c.initial(t, s)}
	for i := 1; i <= 5; i++ {
		k := fmt.Sprintf("k%d", i%2)
		rev := mustApply(t, s, put(k, "v", storage.AnyRevision))
		c.next(t, revs[i-1], rev)
		revs = append(revs, rev)
		mustRevision(t, s, rev)
		if it := mustGet(t, s, k); it.Revision != rev {
			t.Fatalf("Get(%q).Revision = %d, want %d", k, it.Revision, rev)
		}
	}
	// An untouched key keeps the revision of its last write.
	if it := mustGet(t, s, "k0"); it.Revision != revs[4] {
		t.Fatalf("Get(k0).Revision = %d, want %d", it.Revision, revs[4])
	}
	// A failed Apply does not move the revision.
	mustConflict(t, s, "k0", put("k0", "v", storage.MustNotExist))
	mustRevision(t, s, revs[5])
}

func testCopySemantics(t *testing.T, s storage.Store, c config) {
	ctx := t.Context()
	in := []byte("original")
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, storage.Mutation{Key: "k", Value: in, Expect: storage.MustNotExist})
	in[0] = 'X'

	ev := recv(t, ch)
	got := mustGet(t, s, "k")
	got.Value[0] = 'Y'
	ev.Value[1] = 'Z'
	items, err := s.List(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	items[0].Value[2] = 'W'

	if it := mustGet(t, s, "k"); string(it.Value) != "original" {
		t.Fatalf("stored value changed by a caller to %q", it.Value)
	}
}

func testConcurrentCAS(t *testing.T, s storage.Store, c config) {
	const n = 16
	rev := mustApply(t, s, put("counter", "0", storage.MustNotExist))
	start := make(chan struct{})
	type result struct {
		rev int64
		err error
	}
	results := make(chan result, n)
	for i := range n {
		go func() {
			<-start
			r, err := s.Apply(context.Background(), put("counter", fmt.Sprint(i+1), rev))
			results <- result{r, err}
		}()
	}
	close(start)
	wins, won := 0, int64(0)
	for range n {
		res := <-results
		switch err := res.err; {
		case err == nil:
			wins++
			won = res.rev
		case !errors.Is(err, storage.ErrConflict):
			t.Errorf("Apply: %v, want nil or ErrConflict", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent CAS writers won, want exactly 1", wins, n)
	}
	c.next(t, rev, won)
	mustRevision(t, s, won)
	if it := mustGet(t, s, "counter"); it.Revision != won || string(it.Value) == "0" {
		t.Fatalf("Get = %+v", it)
	}
}
