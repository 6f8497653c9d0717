package boltstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// txID is the id of the last committed bbolt read-write transaction.
func txID(t *testing.T, s *Store) int {
	t.Helper()
	var id int
	if err := s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestGroupCommitConcurrent checks that concurrent Applies share
// transactions and still get one revision each, contiguous, with their
// events in revision order.
func TestGroupCommitConcurrent(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "kms.db"))
	ctx := t.Context()
	const writers, each = 32, 40
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	tx0 := txID(t, s)

	revs := make([][]int64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("w%02d/%03d", w, i)
				rev, err := s.Apply(ctx, storage.Mutation{Key: k, Value: []byte(k), Expect: storage.MustNotExist})
				if err != nil {
					t.Errorf("Apply(%s): %v", k, err)
					return
				}
				revs[w] = append(revs[w], rev)
			}
		})
	}
	// Read the feed while the writers run: it holds only WatchBuffer events.
	byRev := make(map[int64]string)
	for want := int64(1); want <= writers*each; want++ {
		ev := <-ch
		if ev.Revision != want {
			t.Fatalf("event %s at revision %d, want revision %d", ev.Key, ev.Revision, want)
		}
		if string(ev.Value) != ev.Key {
			t.Fatalf("event %s has value %q", ev.Key, ev.Value)
		}
		byRev[ev.Revision] = ev.Key
	}
	wg.Wait()

	for w, rs := range revs {
		for i, rev := range rs {
			k := fmt.Sprintf("w%02d/%03d", w, i)
			if i > 0 && rev <= rs[i-1] {
				t.Errorf("writer %d: revision %d after %d", w, rev, rs[i-1])
			}
			if byRev[rev] != k {
				t.Errorf("Apply(%s) returned revision %d, whose event is %q", k, rev, byRev[rev])
			}
			if it, err := s.Get(ctx, k); err != nil || it.Revision != rev {
				t.Errorf("Get(%s) = %+v, %v; want revision %d", k, it, err, rev)
			}
		}
	}
	if rev, err := s.Revision(ctx); err != nil || rev != writers*each {
		t.Fatalf("Revision = %d, %v; want %d", rev, err, writers*each)
	}
	txs := txID(t, s) - tx0
	t.Logf("%d Applies in %d transactions", writers*each, txs)
	if txs >= writers*each {
		t.Errorf("%d Applies took %d transactions: no group commit", writers*each, txs)
	}
}

// runGroup commits muts as one group, the way the committer would, and
// returns the Applies answered.
func runGroup(s *Store, muts ...storage.Mutation) []*apply {
	group := make([]*apply, len(muts))
	for i, m := range muts {
		group[i] = &apply{muts: []storage.Mutation{m}, done: make(chan struct{})}
	}
	s.commit(group)
	for _, a := range group {
		<-a.done
	}
	return group
}

// TestGroupCommitConflict checks that an Apply whose Expect fails because of
// an earlier Apply of its group fails alone.
func TestGroupCommitConflict(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "kms.db"))
	ctx := t.Context()
	ch, err := s.Watch(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	g := runGroup(s,
		storage.Mutation{Key: "a", Value: []byte("1"), Expect: storage.MustNotExist},
		storage.Mutation{Key: "a", Value: []byte("2"), Expect: storage.MustNotExist},
		storage.Mutation{Key: "a", Value: []byte("3"), Expect: 1},
		storage.Mutation{Key: "b", Value: []byte("4"), Expect: storage.MustNotExist},
	)
	if g[0].err != nil || g[0].rev != 1 {
		t.Errorf("first Apply: %d, %v; want revision 1", g[0].rev, g[0].err)
	}
	if !errors.Is(g[1].err, storage.ErrConflict) || g[1].rev != 0 {
		t.Errorf("second Apply: %d, %v; want ErrConflict", g[1].rev, g[1].err)
	}
	if g[2].err != nil || g[2].rev != 2 || g[3].err != nil || g[3].rev != 3 {
		t.Errorf("third and fourth Applies: %d, %v and %d, %v; want revisions 2 and 3", g[2].rev, g[2].err, g[3].rev, g[3].err)
	}
	for _, want := range []storage.Event{{Key: "a", Value: []byte("1"), Revision: 1}, {Key: "a", Value: []byte("3"), Revision: 2}, {Key: "b", Value: []byte("4"), Revision: 3}} {
		if ev := <-ch; ev.Key != want.Key || string(ev.Value) != string(want.Value) || ev.Revision != want.Revision {
			t.Errorf("event %+v, want %+v", ev, want)
		}
	}

	// A group that writes nothing commits nothing.
	tx := txID(t, s)
	g = runGroup(s, storage.Mutation{Key: "b", Value: []byte("x"), Expect: storage.MustNotExist})
	if !errors.Is(g[0].err, storage.ErrConflict) {
		t.Errorf("conflicting Apply: %v", g[0].err)
	}
	if txID(t, s) != tx {
		t.Error("a group of failed Applies committed a transaction")
	}
	if rev, err := s.Revision(ctx); err != nil || rev != 3 {
		t.Errorf("Revision = %d, %v; want 3", rev, err)
	}
}

// TestGroupCommitHalfWritten checks that when bbolt refuses a write in the
// middle of one Apply, the others of its group are committed without it.
func TestGroupCommitHalfWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	s := openT(t, path)
	s.Close()
	// A nested bucket under "nested": Get sees no record there, and Put
	// fails with bbolt's ErrIncompatibleValue.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.Bucket(dataBucket).CreateBucket([]byte("nested"))
		return err
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = openT(t, path)
	ctx := t.Context()
	g := runGroup(s,
		storage.Mutation{Key: "a", Value: []byte("1"), Expect: storage.MustNotExist},
		storage.Mutation{Key: "nested", Value: []byte("2"), Expect: storage.MustNotExist},
		storage.Mutation{Key: "b", Value: []byte("3"), Expect: storage.MustNotExist},
	)
	if g[0].err != nil || g[0].rev != 1 || g[2].err != nil || g[2].rev != 2 {
		t.Errorf("good Applies: %d, %v and %d, %v; want revisions 1 and 2", g[0].rev, g[0].err, g[2].rev, g[2].err)
	}
	if !errors.Is(g[1].err, storage.ErrUnavailable) || g[1].rev != 0 {
		t.Errorf("refused Apply: %d, %v; want ErrUnavailable", g[1].rev, g[1].err)
	}
	for k, want := range map[string]int64{"a": 1, "b": 2} {
		if it, err := s.Get(ctx, k); err != nil || it.Revision != want {
			t.Errorf("Get(%s) = %+v, %v; want revision %d", k, it, err, want)
		}
	}
	if rev, err := s.Revision(ctx); err != nil || rev != 2 {
		t.Errorf("Revision = %d, %v; want 2", rev, err)
	}
}

// TestFillPercent checks that keys written in order fill the pages of the
// data bucket well beyond bbolt's default of one half.
func TestFillPercent(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "kms.db"))
	ctx := t.Context()
	v := make([]byte, 300)
	for i := range 20 {
		muts := make([]storage.Mutation, 100)
		for j := range muts {
			muts[j] = storage.Mutation{Key: fmt.Sprintf("k/%08d", 100*i+j), Value: v, Expect: storage.MustNotExist}
		}
		if _, err := s.Apply(ctx, muts...); err != nil {
			t.Fatal(err)
		}
	}
	var st bolt.BucketStats
	s.db.View(func(tx *bolt.Tx) error { st = tx.Bucket(dataBucket).Stats(); return nil })
	fill := float64(st.LeafInuse) / float64(st.LeafAlloc)
	t.Logf("%d leaf pages, %.0f%% full", st.LeafPageN, 100*fill)
	if fill < 0.8 {
		t.Errorf("leaf pages are %.0f%% full, want at least 80%%", 100*fill)
	}
}
