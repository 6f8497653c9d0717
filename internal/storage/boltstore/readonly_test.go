package boltstore

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/ron-kms/ron-kms/internal/storage"
)

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestReadOnly: a read-only open sees what Open wrote, in order and with
// its revisions, and leaves the file byte for byte as it was.
func TestReadOnly(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "kms.db")
	s := openT(t, path)
	var revs []int64
	for _, k := range []string{"k/b", "k/a", "s/a/1", "meta/x"} {
		rev, err := s.Apply(ctx, storage.Mutation{Key: k, Value: []byte("v-" + k), Expect: storage.MustNotExist})
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}
	want, err := s.List(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := fileSum(t, path)

	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Path() != path {
		t.Errorf("Path = %q", r.Path())
	}
	if rev, err := r.Revision(ctx); err != nil || rev != revs[len(revs)-1] {
		t.Errorf("Revision = %d, %v; want %d", rev, err, revs[len(revs)-1])
	}
	if it, err := r.Get(ctx, "k/a"); err != nil || string(it.Value) != "v-k/a" || it.Revision != revs[1] {
		t.Errorf("Get(k/a) = %+v, %v", it, err)
	}
	if _, err := r.Get(ctx, "k/none"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(k/none) = %v, want ErrNotFound", err)
	}
	var got []storage.Item
	rev, err := r.Snapshot(ctx, func(it storage.Item) error { got = append(got, it); return nil })
	if err != nil || rev != revs[len(revs)-1] {
		t.Fatalf("Snapshot = %d, %v", rev, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Snapshot gave %d items, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) || got[i].Revision != want[i].Revision {
			t.Errorf("item %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	stop := errors.New("stop")
	if _, err := r.Snapshot(ctx, func(storage.Item) error { return stop }); err != stop {
		t.Errorf("Snapshot returned %v, want fn's error as it is", err)
	}
	// Two readers share the file; a writer is refused meanwhile.
	r2, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("second read-only open: %v", err)
	}
	r2.Close()
	if w, err := Open(path); !errors.Is(err, ErrLocked) {
		if err == nil {
			w.Close()
		}
		t.Errorf("Open while a reader holds the file = %v, want ErrLocked", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, path) != before {
		t.Error("a read-only open changed the file")
	}
}

// TestReadOnlyLocked: a file a server holds is refused, naming the fix.
func TestReadOnlyLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	openT(t, path)
	r, err := OpenReadOnly(path)
	if err == nil {
		r.Close()
		t.Fatal("read-only open of a held file succeeded")
	}
	if !errors.Is(err, ErrLocked) || !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("error %v does not match ErrLocked and ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), path+" is locked by another process (is a server running on it? stop it first)") {
		t.Errorf("error %q does not name the path and the fix", err)
	}
}

// TestReadOnlyRefusals: a missing file, garbage, and a bbolt file that is
// not a store are refused, and none is created or changed.
func TestReadOnlyRefusals(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.db")
	if _, err := OpenReadOnly(missing); !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("OpenReadOnly(missing) = %v, want ErrNotExist and ErrUnavailable", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenReadOnly created %s", missing)
	}

	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("garbage!", 1024)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(garbage); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("OpenReadOnly(garbage) = %v, want ErrUnavailable", err)
	}

	other := filepath.Join(dir, "other.db")
	db, err := bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := fileSum(t, other)
	if _, err := OpenReadOnly(other); !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), "not a ron-kms store") {
		t.Errorf("OpenReadOnly(other bbolt file) = %v", err)
	}
	if fileSum(t, other) != before {
		t.Error("OpenReadOnly changed a file it refused")
	}
}
