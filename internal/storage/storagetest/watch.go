package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// waitTime bounds every wait for an event or a closed channel. It is long
// because the race detector and slow disks make stores slow, and a passing
// test never waits for it.
const waitTime = 10 * time.Second

// quietTime is how long a test watches for an event that must not come.
const quietTime = 50 * time.Millisecond

func recv(t *testing.T, ch <-chan storage.Event) storage.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed, want an event")
		}
		return ev
	case <-time.After(waitTime):
		t.Fatal("no watch event")
	}
	panic("unreachable")
}

func expectEvent(t *testing.T, ch <-chan storage.Event, want storage.Event) {
	t.Helper()
	got := recv(t, ch)
	if got.Key != want.Key || string(got.Value) != string(want.Value) ||
		got.Revision != want.Revision || got.Deleted != want.Deleted ||
		(want.Deleted && got.Value != nil) {
		t.Fatalf("event = %s, want %s", fmtEvent(got), fmtEvent(want))
	}
}

func expectQuiet(t *testing.T, ch <-chan storage.Event) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if ok {
			t.Fatalf("unexpected event %s", fmtEvent(ev))
		}
		t.Fatal("watch channel closed unexpectedly")
	case <-time.After(quietTime):
	}
}

// expectClosed drains ch until it is closed and returns how many events it
// held.
func expectClosed(t *testing.T, ch <-chan storage.Event) int {
	t.Helper()
	n := 0
	deadline := time.After(waitTime)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return n
			}
			n++
		case <-deadline:
			t.Fatalf("watch channel not closed after %d events", n)
		}
	}
}

func fmtEvent(ev storage.Event) string {
	return fmt.Sprintf("{%q %q rev=%d deleted=%v}", ev.Key, ev.Value, ev.Revision, ev.Deleted)
}

func testWatch(t *testing.T, s storage.Store, c config) {
	ch, err := s.Watch(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	r1 := mustApply(t, s, put("k", "v1", storage.MustNotExist))
	r2 := mustApply(t, s, put("k", "v2", r1), put("j", "", storage.MustNotExist))
	r3 := mustApply(t, s, del("k", r2))
	mustApply(t, s, del("absent", storage.AnyRevision)) // no event

	expectEvent(t, ch, storage.Event{Key: "k", Value: []byte("v1"), Revision: r1})
	expectEvent(t, ch, storage.Event{Key: "k", Value: []byte("v2"), Revision: r2})
	expectEvent(t, ch, storage.Event{Key: "j", Value: []byte{}, Revision: r2})
	expectEvent(t, ch, storage.Event{Key: "k", Revision: r3, Deleted: true})
	mustConflict(t, s, "k", put("k", "x", r1)) // a failed Apply: no event
	expectQuiet(t, ch)
}

func testWatchPrefix(t *testing.T, s storage.Store, c config) {
	ctx := t.Context()
	chA, err := s.Watch(ctx, "a/")
	if err != nil {
		t.Fatal(err)
	}
	chB, err := s.Watch(ctx, "b/")
	if err != nil {
		t.Fatal(err)
	}
	r1 := mustApply(t, s,
		put("a", "x", storage.MustNotExist),
		put("a/1", "x", storage.MustNotExist),
		put("a0", "x", storage.MustNotExist),
		put("b/1", "y", storage.MustNotExist),
	)
	mustApply(t, s, put("c/1", "z", storage.MustNotExist))
	r3 := mustApply(t, s, put("a/2", "x", storage.MustNotExist), del("b/1", r1))
	expectEvent(t, chA, storage.Event{Key: "a/1", Value: []byte("x"), Revision: r1})
	expectEvent(t, chA, storage.Event{Key: "a/2", Value: []byte("x"), Revision: r3})
	expectEvent(t, chB, storage.Event{Key: "b/1", Value: []byte("y"), Revision: r1})
	expectEvent(t, chB, storage.Event{Key: "b/1", Revision: r3, Deleted: true})
	expectQuiet(t, chA)
	expectQuiet(t, chB)
}

func testWatchOnlyLaterChanges(t *testing.T, s storage.Store, c config) {
	mustApply(t, s, put("k", "before", storage.MustNotExist))
	ch, err := s.Watch(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	expectQuiet(t, ch)
	r := mustApply(t, s, put("k", "after", storage.AnyRevision))
	expectEvent(t, ch, storage.Event{Key: "k", Value: []byte("after"), Revision: r})
}

func testWatchCancel(t *testing.T, s storage.Store, c config) {
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Watch(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	expectClosed(t, ch)
	// Writes go on, and other watchers are not disturbed.
	r := mustApply(t, s, put("k", "v", storage.MustNotExist))
	expectEvent(t, other, storage.Event{Key: "k", Value: []byte("v"), Revision: r})

	if _, err := s.Watch(ctx, ""); err == nil {
		t.Fatal("Watch with a cancelled context succeeded")
	}
}

func testWatchClosedByClose(t *testing.T, s storage.Store, c config) {
	ch, err := s.Watch(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, ch)
}

func testWatchOverflow(t *testing.T, s storage.Store, c config) {
	slow, err := s.Watch(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	// More changes than the buffer, in Applies as large as every store
	// takes: the writer must not block on the watcher that never reads.
	const n = 2*storage.WatchBuffer + 10
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i += storage.MaxApplyMutations {
			var muts []storage.Mutation
			for j := i; j < min(n, i+storage.MaxApplyMutations); j++ {
				muts = append(muts, put(fmt.Sprintf("k%05d", j), "v", storage.MustNotExist))
			}
			if _, err := s.Apply(context.Background(), muts...); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTime):
		t.Fatal("Apply blocked on a slow watcher")
	}
	if got := expectClosed(t, slow); got >= n {
		t.Fatalf("slow watcher received all %d events; want its channel closed after at most %d", got, storage.WatchBuffer)
	}
	// A new watcher works normally.
	ch, err := s.Watch(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	r := mustApply(t, s, put("z", "v", storage.MustNotExist))
	expectEvent(t, ch, storage.Event{Key: "z", Value: []byte("v"), Revision: r})
}
