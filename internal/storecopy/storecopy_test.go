package storecopy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/backup"
	"github.com/ron-kms/ron-kms/internal/deployment"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

// fill writes n items shaped like a keystore's into st, with values of
// varied sizes (one empty, as the scheduler's due-index writes).
func fill(t *testing.T, st storage.Store, n int) {
	t.Helper()
	for i := range n {
		var k string
		switch i % 4 {
		case 0:
			k = fmt.Sprintf("k/acme/docs/ed25519/%04d", i)
		case 1:
			k = fmt.Sprintf("s/acme/docs/ed25519/%04d/0001", i)
		case 2:
			k = fmt.Sprintf("op/acme/op-%04d", i)
		default:
			k = fmt.Sprintf("sched/%04d/destroy/x", i)
		}
		v := bytes.Repeat([]byte{byte(i)}, (i*37)%3000)
		if i%4 == 3 {
			v = []byte{}
		}
		if _, err := st.Apply(t.Context(), storage.Mutation{Key: k, Value: v, Expect: storage.MustNotExist}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Apply(t.Context(), storage.Mutation{Key: deployment.KEKCheckKey, Value: []byte("sealed"), Expect: storage.MustNotExist}); err != nil {
		t.Fatal(err)
	}
}

func snapshotItems(t *testing.T, sn storage.Snapshotter) []storage.Item {
	t.Helper()
	var out []storage.Item
	if _, err := sn.Snapshot(t.Context(), func(it storage.Item) error { out = append(out, it); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func newMarker() []byte { return deployment.New(deployment.ByMigrate, time.Now()).Marshal() }

// TestCopy: every item arrives byte-identical, in Applies of at most 128
// mutations and MaxBatchBytes, the extras the source lacks are added, the
// summaries match an independent digest, and the marker is the very last
// write.
func TestCopy(t *testing.T) {
	ctx := t.Context()
	src, dst := memstore.New(), memstore.New()
	fill(t, src, 1000)
	srcItems := snapshotItems(t, src)

	events, err := dst.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	marker := newMarker()
	params := []byte(`{"v":1}`)
	rep, err := Copy(ctx, dst, FromSnapshot(src), Options{Marker: marker, Extra: map[string][]byte{deployment.ParamsKey: params}})
	if err != nil {
		t.Fatal(err)
	}

	got := snapshotItems(t, dst)
	want := map[string][]byte{deployment.MarkerKey: marker, deployment.ParamsKey: params}
	for _, it := range srcItems {
		want[it.Key] = it.Value
	}
	if len(got) != len(want) {
		t.Fatalf("target holds %d items, want %d", len(got), len(want))
	}
	for _, it := range got {
		if w, ok := want[it.Key]; !ok || !bytes.Equal(w, it.Value) {
			t.Errorf("target %s differs from the source", it.Key)
		}
	}

	indep := Digest(func(yield func(string, []byte) bool) {
		for _, it := range srcItems {
			if !yield(it.Key, it.Value) {
				return
			}
		}
	})
	if !rep.Source.Same(indep) || !rep.Target.Same(indep) {
		t.Errorf("summaries %+v / %+v, independent digest %+v", rep.Source, rep.Target, indep)
	}
	if rep.Source.Items != 1001 || rep.Source.Keys != 250 || rep.Source.Versions != 250 || rep.Source.ByPrefix["meta"] != 1 {
		t.Errorf("source summary %+v", rep.Source)
	}
	if strings.Join(rep.Added, ",") != deployment.MarkerKey+","+deployment.ParamsKey {
		t.Errorf("Added = %q", rep.Added)
	}
	if rep.Marker == nil || !bytes.Equal(rep.Marker.Marshal(), marker) {
		t.Errorf("Marker = %+v", rep.Marker)
	}

	// The events, grouped by revision: batches within bounds, the marker
	// alone and last.
	type batch struct {
		n, bytes int
		keys     []string
	}
	var batches []batch
	var last int64
	for range len(want) + 2 { // and the put and delete of CopyingKey
		ev := <-events
		if ev.Revision != last {
			batches = append(batches, batch{})
			last = ev.Revision
		}
		b := &batches[len(batches)-1]
		b.n++
		b.bytes += len(ev.Key) + len(ev.Value)
		b.keys = append(b.keys, ev.Key)
	}
	for i, b := range batches {
		if b.n > storage.MaxApplyMutations || (b.n > 1 && b.bytes > MaxBatchBytes) {
			t.Errorf("Apply %d: %d mutations, %d bytes", i, b.n, b.bytes)
		}
	}
	if fb := batches[0]; fb.n != 1 || fb.keys[0] != deployment.CopyingKey {
		t.Errorf("the first Apply wrote %q, want %s alone", fb.keys, deployment.CopyingKey)
	}
	if lb := batches[len(batches)-1]; strings.Join(lb.keys, ",") != deployment.MarkerKey+","+deployment.CopyingKey {
		t.Errorf("the last Apply wrote %q, want the marker and the delete of %s", lb.keys, deployment.CopyingKey)
	}
	if rep.Applies != len(batches) {
		t.Errorf("Applies = %d, %d seen", rep.Applies, len(batches))
	}
	t.Logf("%d items, %d bytes in %d Applies", rep.Source.Items, rep.Source.Bytes, rep.Applies)
}

// TestCopyBigValues: items whose sum passes MaxBatchBytes are split; one
// bigger than it goes alone.
func TestCopyBigValues(t *testing.T) {
	ctx := t.Context()
	src, dst := memstore.New(), memstore.New()
	for i, size := range []int{600 << 10, 600 << 10, 2 << 20, 10} {
		if _, err := src.Apply(ctx, storage.Mutation{Key: fmt.Sprintf("k/%d", i), Value: make([]byte, size), Expect: storage.MustNotExist}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Copy(ctx, dst, FromSnapshot(src), Options{Marker: newMarker()})
	if err != nil {
		t.Fatal(err)
	}
	// CopyingKey, k/0 | k/1 | k/2 (alone, over the bound) | k/3, then the
	// marker.
	if rep.Applies != 6 {
		t.Errorf("Applies = %d, want 6", rep.Applies)
	}
}

// TestCopyRefusesNonEmpty: one item in the target, with or without a
// marker, refuses the copy, and nothing is written.
func TestCopyRefusesNonEmpty(t *testing.T) {
	ctx := t.Context()
	src := memstore.New()
	fill(t, src, 10)
	marker := deployment.New(deployment.ByServe, time.Now())
	for _, tt := range []struct {
		items map[string][]byte
		want  string
	}{
		{map[string][]byte{"zzz": []byte("x")}, `the first is "zzz") but no deployment marker: not a ron-kms deployment`},
		{map[string][]byte{"k/a": []byte("x"), deployment.MarkerKey: marker.Marshal()}, "holds ron-kms deployment " + marker.ID + " (created " + marker.CreatedAt + " by serve)"},
		{map[string][]byte{deployment.MarkerKey: []byte("{}")}, "a deployment marker that does not parse"},
	} {
		dst := memstore.New()
		for k, v := range tt.items {
			if _, err := dst.Apply(ctx, storage.Mutation{Key: k, Value: v, Expect: storage.AnyRevision}); err != nil {
				t.Fatal(err)
			}
		}
		rev, _ := dst.Revision(ctx)
		_, err := Copy(ctx, dst, FromSnapshot(src), Options{Marker: newMarker()})
		var ne *NotEmptyError
		if !errors.Is(err, ErrNotEmpty) || !errors.As(err, &ne) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Copy into %v = %v, want ErrNotEmpty saying %q", tt.items, err, tt.want)
		}
		if after, _ := dst.Revision(ctx); after != rev {
			t.Errorf("a refused copy wrote the target (revision %d → %d)", rev, after)
		}
	}
}

// TestCopySourceMarker: a source that holds a marker (a backup of an etcd
// deployment) keeps it: it is written last, as it was, and Options.Marker
// is not used; a source's extra wins over Options.Extra.
func TestCopySourceMarker(t *testing.T) {
	ctx := t.Context()
	src, dst := memstore.New(), memstore.New()
	fill(t, src, 20)
	theirs := deployment.New(deployment.ByServe, time.Now()).Marshal()
	for k, v := range map[string][]byte{deployment.MarkerKey: theirs, deployment.ParamsKey: []byte("theirs"), "tokens/revoked/x": {}} {
		if _, err := src.Apply(ctx, storage.Mutation{Key: k, Value: v, Expect: storage.MustNotExist}); err != nil {
			t.Fatal(err)
		}
	}
	events, _ := dst.Watch(ctx, deployment.MarkerKey)
	rep, err := Copy(ctx, dst, FromSnapshot(src), Options{Marker: newMarker(), Extra: map[string][]byte{deployment.ParamsKey: []byte("ours")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Added) != 0 {
		t.Errorf("Added = %q, want none", rep.Added)
	}
	if it, _ := dst.Get(ctx, deployment.MarkerKey); !bytes.Equal(it.Value, theirs) {
		t.Errorf("marker = %s, want the source's", it.Value)
	}
	if it, _ := dst.Get(ctx, deployment.ParamsKey); string(it.Value) != "theirs" {
		t.Errorf("params = %s, want the source's", it.Value)
	}
	if ev := <-events; ev.Revision != rep.Target.Revision {
		t.Errorf("the marker was written at %d, the copy ended at %d", ev.Revision, rep.Target.Revision)
	}
	if rev, _ := dst.Revision(ctx); rev != rep.Target.Revision {
		t.Errorf("something was written after the marker")
	}
	if !rep.Source.Same(rep.Target) {
		t.Errorf("summaries differ: %+v / %+v", rep.Source, rep.Target)
	}
}

// TestCopyBadSource: keys out of order, or invalid, stop the copy before
// any marker.
func TestCopyBadSource(t *testing.T) {
	for name, keys := range map[string][]string{
		"order":   {"k/b", "k/a"},
		"repeat":  {"k/a", "k/a"},
		"invalid": {"k/a", "k/\x00"},
	} {
		dst := memstore.New()
		src := func(ctx context.Context, yield func(string, []byte) error) (int64, error) {
			for _, k := range keys {
				if err := yield(k, []byte("v")); err != nil {
					return 0, err
				}
			}
			return 1, nil
		}
		// Batches of one, so the first key is written before the bad one.
		_, err := Copy(t.Context(), dst, src, Options{Marker: newMarker(), BatchItems: 1})
		if !errors.Is(err, ErrSource) {
			t.Errorf("%s: Copy = %v, want ErrSource", name, err)
		}
		if _, err := dst.Get(t.Context(), deployment.MarkerKey); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s: a marker was written", name)
		}
	}
}

// flaky wraps a store to fail Applies on purpose.
type flaky struct {
	*memstore.Store
	calls atomic.Int64
	// before runs before Apply number n (1-based); it may return an error
	// to give instead, after applying (landed) or not.
	before func(s *flaky, n int64, muts []storage.Mutation) (landed bool, err error)
}

func (f *flaky) Apply(ctx context.Context, muts ...storage.Mutation) (int64, error) {
	n := f.calls.Add(1)
	if f.before != nil {
		if landed, err := f.before(f, n, muts); err != nil {
			if landed {
				f.Store.Apply(ctx, muts...)
			}
			return 0, err
		}
	}
	return f.Store.Apply(ctx, muts...)
}

var errTimedOut = fmt.Errorf("fake: %w: the cluster did not answer in time", storage.ErrUnavailable)

// TestCopyUnknownOutcome: an Apply that fails as unavailable is tried
// again, whether it had landed or not, and the copy completes.
func TestCopyUnknownOutcome(t *testing.T) {
	for _, landed := range []bool{true, false} {
		src := memstore.New()
		fill(t, src, 300)
		dst := &flaky{Store: memstore.New(), before: func(_ *flaky, n int64, _ []storage.Mutation) (bool, error) {
			if n == 3 || n == 4 {
				return landed && n == 3, errTimedOut
			}
			return false, nil
		}}
		rep, err := Copy(t.Context(), dst, FromSnapshot(src), Options{Marker: newMarker()})
		if err != nil {
			t.Fatalf("landed=%v: %v", landed, err)
		}
		if !rep.Source.Same(rep.Target) {
			t.Errorf("landed=%v: summaries differ", landed)
		}
	}
}

// TestCopyGivesUp: an Apply that keeps failing ends the copy after the
// retries, without a marker.
func TestCopyGivesUp(t *testing.T) {
	src := memstore.New()
	fill(t, src, 10)
	dst := &flaky{Store: memstore.New(), before: func(*flaky, int64, []storage.Mutation) (bool, error) { return false, errTimedOut }}
	rep, err := Copy(t.Context(), dst, FromSnapshot(src), Options{Marker: newMarker(), Retries: 2})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Copy = %v, want ErrUnavailable", err)
	}
	if rep == nil || !rep.Written || rep.Applies != 0 {
		t.Errorf("report %+v: want Written (the outcome is unknown) and no Apply known to have landed", rep)
	}
	if n := dst.calls.Load(); n != 3 {
		t.Errorf("%d Applies, want 3 (one and two retries)", n)
	}
}

// TestCopyConcurrentWriter: another writer of a key not yet copied (its
// Apply conflicts), of one already copied or of a new key (the read-back
// differs), or of the marker is detected, and the copy writes no marker of
// its own.
func TestCopyConcurrentWriter(t *testing.T) {
	for name, tt := range map[string]struct {
		key  string
		want error
	}{
		"key not yet copied":    {"sched/0399/destroy/x", ErrConcurrentWrite},
		"key already copied":    {"k/acme/docs/ed25519/0200", ErrMismatch},
		"key not in the source": {"k/zzz", ErrMismatch},
		"marker":                {deployment.MarkerKey, ErrConcurrentWrite},
		"extra not yet copied":  {deployment.ParamsKey, ErrConcurrentWrite},
	} {
		key := tt.key
		src := memstore.New()
		fill(t, src, 400)
		ours := newMarker()
		theirs := deployment.New(deployment.ByServe, time.Now()).Marshal()
		dst := &flaky{Store: memstore.New(), before: func(f *flaky, n int64, _ []storage.Mutation) (bool, error) {
			if n == 3 { // after CopyingKey and the first 128 items
				f.Store.Apply(context.Background(), storage.Mutation{Key: key, Value: theirs, Expect: storage.AnyRevision})
			}
			return false, nil
		}}
		_, err := Copy(t.Context(), dst, FromSnapshot(src), Options{Marker: ours, Extra: map[string][]byte{deployment.ParamsKey: []byte("p")}})
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Copy = %v, want %v", name, err, tt.want)
		}
		if it, err := dst.Get(t.Context(), deployment.MarkerKey); err == nil && bytes.Equal(it.Value, ours) {
			t.Errorf("%s: the copy wrote its marker", name)
		}
	}
}

// TestCopyMismatch: a target that stores something else than it was given
// fails the read-back, and no marker is written.
func TestCopyMismatch(t *testing.T) {
	src := memstore.New()
	fill(t, src, 50)
	dst := &flaky{Store: memstore.New(), before: func(f *flaky, n int64, muts []storage.Mutation) (bool, error) {
		if n == 2 {
			muts[3].Value = append(bytes.Clone(muts[3].Value), 'x') // a store that damages a value
		}
		return false, nil
	}}
	rep, err := Copy(t.Context(), dst, FromSnapshot(src), Options{Marker: newMarker()})
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("Copy = %v, want ErrMismatch", err)
	}
	if rep == nil || rep.Source.SHA256 == rep.Target.SHA256 {
		t.Errorf("report %+v does not show the difference", rep)
	}
	if _, err := dst.Get(t.Context(), deployment.MarkerKey); !errors.Is(err, storage.ErrNotFound) {
		t.Error("a marker was written after a mismatch")
	}
}

// TestCopyFromBackup: a backup file copies to the same items as the store
// it was taken from; a damaged one fails before the marker.
func TestCopyFromBackup(t *testing.T) {
	ctx := t.Context()
	src := memstore.New()
	fill(t, src, 200)
	var buf bytes.Buffer
	w, err := backup.NewWriter(&buf, backup.Header{CreatedAt: "2026-01-02T03:04:05Z", KEK: backup.KEKRootKey, KEKID: "0123456789abcdef", Server: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := src.Snapshot(ctx, func(it storage.Item) error { return w.Add(it.Key, it.Value) })
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(rev); err != nil {
		t.Fatal(err)
	}

	r, err := backup.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	dst := memstore.New()
	rep, err := Copy(ctx, dst, FromBackup(r), Options{Marker: newMarker()})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := Copy(ctx, memstore.New(), FromSnapshot(src), Options{Marker: newMarker()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Source.Same(direct.Source) || rep.Source.Revision != rev {
		t.Errorf("backup source %+v, store source %+v", rep.Source, direct.Source)
	}

	damaged := bytes.Replace(buf.Bytes(), []byte(`"items":`), []byte(`"items":1`), 1)
	r, err = backup.NewReader(bytes.NewReader(damaged))
	if err != nil {
		t.Fatal(err)
	}
	dst = memstore.New()
	if _, err := Copy(ctx, dst, FromBackup(r), Options{Marker: newMarker()}); !errors.Is(err, backup.ErrChecksum) {
		t.Errorf("Copy of a damaged backup = %v, want ErrChecksum", err)
	}
	if _, err := dst.Get(ctx, deployment.MarkerKey); !errors.Is(err, storage.ErrNotFound) {
		t.Error("a marker was written from a damaged backup")
	}
}

// TestCopyUnknownOutcomeCommit: the commit (marker put, CopyingKey delete)
// landing with an unknown outcome is recognized on the retry.
func TestCopyUnknownOutcomeCommit(t *testing.T) {
	src := memstore.New()
	fill(t, src, 10)
	dst := &flaky{Store: memstore.New(), before: func(_ *flaky, n int64, muts []storage.Mutation) (bool, error) {
		if muts[0].Key == deployment.MarkerKey && n < 5 {
			return true, errTimedOut
		}
		return false, nil
	}}
	if _, err := Copy(t.Context(), dst, FromSnapshot(src), Options{Marker: newMarker()}); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Get(t.Context(), deployment.CopyingKey); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("%s is still there: %v", deployment.CopyingKey, err)
	}
}

// TestCheckEmptyInterrupted: a copy that stops half-way leaves a target
// that CheckEmpty names an interrupted copy, with the marker it would
// have written, and that holds no marker.
func TestCheckEmptyInterrupted(t *testing.T) {
	src := memstore.New()
	fill(t, src, 400)
	dst := &flaky{Store: memstore.New(), before: func(_ *flaky, n int64, _ []storage.Mutation) (bool, error) {
		if n >= 3 {
			return false, errTimedOut
		}
		return false, nil
	}}
	ours := deployment.New(deployment.ByRestore, time.Now())
	rep, err := Copy(t.Context(), dst, FromSnapshot(src), Options{Marker: ours.Marshal(), Retries: 1})
	if !errors.Is(err, storage.ErrUnavailable) || !rep.Written {
		t.Fatalf("Copy = %+v, %v", rep, err)
	}
	err = CheckEmpty(t.Context(), dst)
	var ne *NotEmptyError
	if !errors.As(err, &ne) || !ne.Interrupted || ne.CopyOf == nil || *ne.CopyOf != ours || ne.Marker != nil {
		t.Fatalf("CheckEmpty = %#v", err)
	}
	if want := "it holds an interrupted restore (deployment " + ours.ID; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// TestCheckEmptyInner: a deployment under a longer prefix is named.
func TestCheckEmptyInner(t *testing.T) {
	m := deployment.New(deployment.ByServe, time.Now())
	dst := memstore.New()
	for k, v := range map[string][]byte{"prod/k/a": []byte("x"), "prod/" + deployment.MarkerKey: m.Marshal(), "prod/s/a/1": []byte("y")} {
		if _, err := dst.Apply(t.Context(), storage.Mutation{Key: k, Value: v, Expect: storage.MustNotExist}); err != nil {
			t.Fatal(err)
		}
	}
	err := CheckEmpty(t.Context(), dst)
	var ne *NotEmptyError
	if !errors.As(err, &ne) || ne.Inner != "prod/" || ne.InnerMarker == nil || *ne.InnerMarker != m || ne.Interrupted {
		t.Fatalf("CheckEmpty = %#v", err)
	}
	if want := "it holds ron-kms deployment " + m.ID + ` under the longer prefix "prod/"`; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// TestCopySourceInterrupted: a source that is itself an interrupted copy is
// refused.
func TestCopySourceInterrupted(t *testing.T) {
	src := memstore.New()
	fill(t, src, 3)
	src.Apply(t.Context(), storage.Mutation{Key: deployment.CopyingKey, Value: newMarker(), Expect: storage.MustNotExist})
	dst := memstore.New()
	if _, err := Copy(t.Context(), dst, FromSnapshot(src), Options{Marker: newMarker()}); !errors.Is(err, ErrSource) {
		t.Fatalf("Copy = %v, want ErrSource", err)
	}
	if _, err := dst.Get(t.Context(), deployment.MarkerKey); !errors.Is(err, storage.ErrNotFound) {
		t.Error("a marker was written")
	}
}
