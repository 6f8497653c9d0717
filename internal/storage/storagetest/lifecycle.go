package storagetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/internal/storage"
)

func testInvalidArguments(t *testing.T, s storage.Store, c config) {
	ctx := t.Context()
	bad := map[string]string{
		"empty":    "",
		"NUL":      "a\x00b",
		"trailing": "a\x00",
		"too long": strings.Repeat("k", storage.MaxKeyLen+1),
	}
	for name, key := range bad {
		if _, err := s.Get(ctx, key); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Get(%s key) = %v, want ErrInvalid", name, err)
		}
		if _, err := s.Apply(ctx, put(key, "v", storage.AnyRevision)); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Apply(put %s key) = %v, want ErrInvalid", name, err)
		}
		if _, err := s.Apply(ctx, del(key, storage.AnyRevision)); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Apply(delete %s key) = %v, want ErrInvalid", name, err)
		}
		// A bad key anywhere in a batch rejects the whole batch.
		if _, err := s.Apply(ctx, put("good", "v", storage.AnyRevision), put(key, "v", storage.AnyRevision)); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Apply(good, %s key) = %v, want ErrInvalid", name, err)
		}
	}
	// The longest allowed key works.
	long := strings.Repeat("k", storage.MaxKeyLen)
	rl := mustApply(t, s, put(long, "v", storage.MustNotExist))
	mustGet(t, s, long)

	invalid := map[string][]storage.Mutation{
		"no mutations":   nil,
		"duplicate key":  {put("d", "1", storage.AnyRevision), put("d", "2", storage.AnyRevision)},
		"put and delete": {put("d", "1", storage.AnyRevision), del("d", storage.AnyRevision)},
		"Expect -2":      {put("d", "1", -2)},
	}
	for name, muts := range invalid {
		if _, err := s.Apply(ctx, muts...); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Apply(%s) = %v, want ErrInvalid", name, err)
		}
	}
	mustNotFound(t, s, "good")
	mustNotFound(t, s, "d")
	mustRevision(t, s, rl)
}

func testContextDone(t *testing.T, s storage.Store, c config) {
	r := mustApply(t, s, put("k", "v", storage.MustNotExist))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get = %v, want context.Canceled", err)
	}
	if _, err := s.List(ctx, "", "", 0); !errors.Is(err, context.Canceled) {
		t.Errorf("List = %v, want context.Canceled", err)
	}
	if _, err := s.Apply(ctx, put("k2", "v", storage.MustNotExist)); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply = %v, want context.Canceled", err)
	}
	if _, err := s.Revision(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Revision = %v, want context.Canceled", err)
	}
	if _, err := s.Watch(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Watch = %v, want context.Canceled", err)
	}
	mustNotFound(t, s, "k2")
	mustRevision(t, s, r)
}

func testClosed(t *testing.T, s storage.Store, c config) {
	mustApply(t, s, put("k", "v", storage.MustNotExist))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := t.Context()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Get = %v, want ErrClosed", err)
	}
	if _, err := s.List(ctx, "", "", 0); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("List = %v, want ErrClosed", err)
	}
	if _, err := s.Apply(ctx, put("k2", "v", storage.MustNotExist)); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Apply = %v, want ErrClosed", err)
	}
	if _, err := s.Revision(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Revision = %v, want ErrClosed", err)
	}
	if _, err := s.Watch(ctx, ""); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Watch = %v, want ErrClosed", err)
	}
}

// ReopenOpener opens the store kept in dir, creating it if dir holds none.
// The suite closes every store it opens.
type ReopenOpener func(t *testing.T, dir string) storage.Store

// RunReopen checks that a persistent store keeps its items, their revisions
// and the store revision across Close and reopen, and that revisions go on
// growing from where they stopped.
func RunReopen(t *testing.T, open ReopenOpener, opts ...Option) {
	c := newConfig(opts)
	dir := t.TempDir()
	ctx := t.Context()
	reopen := func() storage.Store {
		s := open(t, dir)
		t.Cleanup(func() { s.Close() })
		return s
	}

	s := reopen()
	r1 := mustApply(t, s, put("a/1", "one", storage.MustNotExist), put("a/2", "two", storage.MustNotExist))
	r2 := mustApply(t, s, put("a/2", "TWO", r1), put("b", "", storage.MustNotExist))
	r3 := mustApply(t, s, del("a/1", r1))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = reopen()
	mustRevision(t, s, r3)
	mustNotFound(t, s, "a/1")
	if it := mustGet(t, s, "a/2"); string(it.Value) != "TWO" || it.Revision != r2 {
		t.Fatalf("Get(a/2) after reopen = %+v, want TWO at %d", it, r2)
	}
	if it := mustGet(t, s, "b"); it.Value == nil || len(it.Value) != 0 || it.Revision != r2 {
		t.Fatalf("Get(b) after reopen = %+v, want empty value at %d", it, r2)
	}
	checkKeys(t, "List after reopen", listKeys(t, s, "", "", 0), []string{"a/2", "b"})
	// Expectations still hold against the reopened revisions.
	mustConflict(t, s, "a/2", put("a/2", "x", r1))
	r4 := mustApply(t, s, put("a/2", "x", r2))
	c.next(t, r3, r4)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = reopen()
	rev, err := s.Revision(ctx)
	if err != nil || rev != r4 {
		t.Fatalf("Revision after second reopen = %d, %v; want %d", rev, err, r4)
	}
}
