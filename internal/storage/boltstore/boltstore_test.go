package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/storagetest"
)

func openT(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openT(t, filepath.Join(t.TempDir(), "kms.db"))
	})
}

func TestReopen(t *testing.T) {
	storagetest.RunReopen(t, func(t *testing.T, dir string) storage.Store {
		return openT(t, filepath.Join(dir, "kms.db"))
	})
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	openT(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Fatalf("file mode %v, want no group or other access", perm)
	}
}

func TestMissingParentDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "kms.db")
	if s, err := Open(path); !errors.Is(err, storage.ErrUnavailable) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open(%s) = %v, want ErrUnavailable", path, err)
	}
	if _, err := os.Stat(filepath.Dir(path)); !os.IsNotExist(err) {
		t.Fatalf("Open created the parent directory: %v", err)
	}
}

func TestLockHeld(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	first := openT(t, path)

	start := time.Now()
	s, err := Open(path) // bbolt's flock conflicts even within one process
	if err == nil {
		s.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("error %v does not wrap ErrUnavailable", err)
	}
	if want := fmt.Sprintf("boltstore: %s is locked by another process", path); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if d := time.Since(start); d < lockTimeout/2 || d > 10*lockTimeout {
		t.Errorf("Open gave up after %v, want about %v", d, lockTimeout)
	}

	// Once the holder closes, the file opens again.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	openT(t, path)
}

// corrupt writes raw records into the file at path with bbolt directly.
func corrupt(t *testing.T, path string, bucket, key, value []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Put(key, value)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCorruptedValue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	s := openT(t, path)
	ctx := t.Context()
	if _, err := s.Apply(ctx, storage.Mutation{Key: "good", Value: []byte("v"), Expect: storage.MustNotExist}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	zeroRev := binary.BigEndian.AppendUint64(nil, 0)
	negRev := binary.BigEndian.AppendUint64(nil, 1<<63)
	for key, raw := range map[string][]byte{
		"empty":   {},
		"short":   {1, 2, 3},
		"zerorev": append(zeroRev, 'v'),
		"negrev":  negRev,
	} {
		corrupt(t, path, dataBucket, []byte(key), raw)
	}

	s = openT(t, path)
	for _, key := range []string{"empty", "short", "zerorev", "negrev"} {
		if it, err := s.Get(ctx, key); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("Get(%q) = %+v, %v; want ErrUnavailable", key, it, err)
		}
		// A write that must read the record fails too, and writes nothing.
		m := storage.Mutation{Key: key, Value: []byte("new"), Expect: storage.AnyRevision}
		if _, err := s.Apply(ctx, m); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("Apply(%q) = %v; want ErrUnavailable", key, err)
		}
	}
	if _, err := s.List(ctx, "", "", 0); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("List over corrupted records = %v; want ErrUnavailable", err)
	}
	if it, err := s.Get(ctx, "good"); err != nil || string(it.Value) != "v" {
		t.Errorf("Get(good) = %+v, %v", it, err)
	}
	if rev, err := s.Revision(ctx); err != nil || rev != 1 {
		t.Errorf("Revision = %d, %v; want 1", rev, err)
	}
}

func TestCorruptedRevision(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	openT(t, path).Close()
	corrupt(t, path, metaBucket, revisionKey, []byte{1, 2})
	if s, err := Open(path); !errors.Is(err, storage.ErrUnavailable) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open with a corrupted revision = %v, want ErrUnavailable", err)
	}
}

func TestNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("garbage!", 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path); !errors.Is(err, storage.ErrUnavailable) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open(garbage) = %v, want ErrUnavailable", err)
	}
}

func BenchmarkApply(b *testing.B) {
	s := openT(b, filepath.Join(b.TempDir(), "kms.db"))
	v := make([]byte, 256)
	for i := 0; b.Loop(); i++ {
		m := storage.Mutation{Key: fmt.Sprintf("k%d", i%1024), Value: v, Expect: storage.AnyRevision}
		if _, err := s.Apply(b.Context(), m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	s := openT(b, filepath.Join(b.TempDir(), "kms.db"))
	ctx := b.Context()
	muts := make([]storage.Mutation, 1024)
	for i := range muts {
		muts[i] = storage.Mutation{Key: fmt.Sprintf("k%d", i), Value: make([]byte, 256), Expect: storage.MustNotExist}
	}
	if _, err := s.Apply(ctx, muts...); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if _, err := s.Get(ctx, muts[i%len(muts)].Key); err != nil {
			b.Fatal(err)
		}
	}
}
