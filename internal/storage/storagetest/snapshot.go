package storagetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// snapshotter returns s as a storage.Snapshotter, or skips the test for a
// store without that capability.
func snapshotter(t *testing.T, s storage.Store) storage.Snapshotter {
	t.Helper()
	sn, ok := s.(storage.Snapshotter)
	if !ok {
		t.Skipf("%T does not implement storage.Snapshotter", s)
	}
	return sn
}

func collect(t *testing.T, sn storage.Snapshotter) ([]storage.Item, int64) {
	t.Helper()
	var items []storage.Item
	rev, err := sn.Snapshot(t.Context(), func(it storage.Item) error {
		items = append(items, it)
		return nil
	})
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return items, rev
}

func testSnapshot(t *testing.T, s storage.Store, c config) {
	sn := snapshotter(t, s)
	r0 := c.initial(t, s)
	if items, rev := collect(t, sn); len(items) != 0 || rev < r0 || c.dense && rev != 0 {
		t.Fatalf("Snapshot of an empty store = %v at %d", items, rev)
	}
	mustApply(t, s, put("b", "2", storage.MustNotExist), put("a", "1", storage.MustNotExist), put("gone", "x", storage.MustNotExist))
	mustApply(t, s, put("c/\xff", "", storage.MustNotExist), del("gone", storage.AnyRevision))
	mustApply(t, s, put("a", "1b", storage.AnyRevision))

	items, rev := collect(t, sn)
	want, err := s.List(t.Context(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(items, want) {
		t.Fatalf("Snapshot items = %v, want what List gives: %v", items, want)
	}
	mustRevision(t, s, rev)
	if items[2].Key != "c/\xff" || items[2].Value == nil || len(items[2].Value) != 0 {
		t.Fatalf("empty value came back as %#v", items[2])
	}

	// Values belong to fn.
	if _, err := sn.Snapshot(t.Context(), func(it storage.Item) error {
		if len(it.Value) > 0 {
			it.Value[0] = 'X'
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if it := mustGet(t, s, "a"); string(it.Value) != "1b" {
		t.Fatalf("Snapshot handed out the stored value: now %q", it.Value)
	}
}

func testSnapshotStops(t *testing.T, s storage.Store, c config) {
	sn := snapshotter(t, s)
	mustApply(t, s, put("a", "1", storage.MustNotExist), put("b", "2", storage.MustNotExist), put("c", "3", storage.MustNotExist))

	// An error from fn stops the snapshot and comes back as it is.
	stop := errors.New("stop here")
	calls := 0
	_, err := sn.Snapshot(t.Context(), func(it storage.Item) error {
		calls++
		if it.Key == "b" {
			return stop
		}
		return nil
	})
	if err != stop || calls != 2 {
		t.Fatalf("Snapshot with fn failing at b = %v after %d calls; want the error itself after 2", err, calls)
	}

	// A context that ends stops it too.
	ctx, cancel := context.WithCancel(t.Context())
	calls = 0
	_, err = sn.Snapshot(ctx, func(storage.Item) error {
		calls++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Snapshot cancelled in fn = %v after %d calls; want context.Canceled after 1", err, calls)
	}
	if _, err := sn.Snapshot(ctx, func(storage.Item) error { t.Error("fn called with a done context"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Snapshot with a done context = %v", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Snapshot(t.Context(), func(storage.Item) error { return nil }); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Snapshot after Close = %v, want ErrClosed", err)
	}
}

// testSnapshotConsistent takes snapshots while writers run. Every Apply
// writes pair/a and pair/b with one value (and one more key of its writer),
// so a consistent view sees them equal, both at the snapshot's revision.
func testSnapshotConsistent(t *testing.T, s storage.Store, c config) {
	sn := snapshotter(t, s)
	ctx := t.Context()
	mustApply(t, s, put("pair/a", "init", storage.MustNotExist), put("pair/b", "init", storage.MustNotExist))

	const writers = 4
	var (
		applied atomic.Int64
		done    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				v := fmt.Sprintf("w%d-%d", w, i)
				_, err := s.Apply(context.Background(),
					put("pair/a", v, storage.AnyRevision),
					put("pair/b", v, storage.AnyRevision),
					put(fmt.Sprintf("w%d/%d", w, i%16), v, storage.AnyRevision))
				if err != nil {
					t.Errorf("Apply: %v", err)
					return
				}
				applied.Add(1)
			}
		})
	}
	defer func() {
		close(done)
		wg.Wait()
	}()

	for n := range 20 {
		before := applied.Load()
		var (
			pair  = map[string]storage.Item{}
			last  string
			items []storage.Item
		)
		rev, err := sn.Snapshot(ctx, func(it storage.Item) error {
			if len(items) == 0 {
				// Let writers commit while the view is open (bounded: a
				// store may make some writers wait for the view to end).
				for deadline := time.Now().Add(50 * time.Millisecond); applied.Load() == before && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			if len(items) > 0 && it.Key <= last {
				return fmt.Errorf("key %q after %q", it.Key, last)
			}
			last = it.Key
			items = append(items, it)
			if it.Key == "pair/a" || it.Key == "pair/b" {
				pair[it.Key] = it
			}
			return nil
		})
		if err != nil {
			t.Fatalf("snapshot %d: %v", n, err)
		}
		a, b := pair["pair/a"], pair["pair/b"]
		if string(a.Value) != string(b.Value) || a.Revision != b.Revision {
			t.Fatalf("snapshot %d is torn: pair/a = %q at %d, pair/b = %q at %d", n, a.Value, a.Revision, b.Value, b.Revision)
		}
		if a.Revision != rev {
			t.Fatalf("snapshot %d: revision %d, but its last write of pair/a is at %d", n, rev, a.Revision)
		}
		for _, it := range items {
			if it.Revision > rev {
				t.Fatalf("snapshot %d at revision %d holds %q from revision %d", n, rev, it.Key, it.Revision)
			}
		}
	}
	if applied.Load() == 0 {
		t.Fatal("no writer got through while snapshots ran")
	}
}
