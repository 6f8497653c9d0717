package memstore_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
	"github.com/ron-kms/ron-kms/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return memstore.New() })
}

// TestConcurrentMixed runs readers, writers and watchers together so the
// race detector can see them.
func TestConcurrentMixed(t *testing.T) {
	s := memstore.New()
	defer s.Close()
	ctx := t.Context()
	ch, err := s.Watch(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	const writers, writes = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				key := fmt.Sprintf("k%d/%d", w, i)
				if _, err := s.Apply(ctx, storage.Mutation{Key: key, Value: []byte("v"), Expect: storage.MustNotExist}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Get(ctx, key); err != nil {
					t.Error(err)
				}
				if _, err := s.List(ctx, "k", "", 10); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	var last int64
	for range writers * writes {
		ev := <-ch
		if ev.Revision != last+1 {
			t.Fatalf("event revision %d after %d", ev.Revision, last)
		}
		last = ev.Revision
	}
	if rev, _ := s.Revision(ctx); rev != writers*writes {
		t.Fatalf("Revision = %d, want %d", rev, writers*writes)
	}
}

func BenchmarkApply(b *testing.B) {
	s := memstore.New()
	defer s.Close()
	v := make([]byte, 256)
	for i := 0; b.Loop(); i++ {
		if _, err := s.Apply(b.Context(), storage.Mutation{Key: fmt.Sprintf("k%d", i%1024), Value: v, Expect: storage.AnyRevision}); err != nil {
			b.Fatal(err)
		}
	}
}
