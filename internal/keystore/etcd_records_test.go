package keystore

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/internal/etcdtest"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

// openEtcdStore starts a one-member etcd (default request and transaction
// limits) and opens a store over it.
func openEtcdStore(t *testing.T) storage.Store {
	t.Helper()
	cl := etcdtest.New(t, 1)
	var eps []string
	for _, e := range cl.Endpoints() {
		eps = append(eps, strings.TrimPrefix(e, "http://"))
	}
	st, err := etcdstore.Open(etcdstore.Options{Endpoints: eps, Prefix: "ron-kms/records/"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// copyItems copies every item of src into dst.
func copyItems(t *testing.T, dst, src storage.Store) {
	t.Helper()
	ctx := context.Background()
	items, err := src.List(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if _, err := dst.Apply(ctx, storage.Mutation{Key: it.Key, Value: it.Value, Expect: storage.MustNotExist}); err != nil {
			t.Fatalf("%s: %v", it.Key, err)
		}
	}
}

// TestRecordsEtcd: etcd holds the same records as bbolt. The version 1
// fixture copied into etcd reads as it did and migrates there (etcd's
// limit of 128 operations per transaction holds for the migration's
// writes); and a key rotated up to MaxKeyRecordSize with the largest
// public keys (ML-DSA-87) is one record etcd takes, loads and signs from,
// while one more rotation is ErrUnsupported, not an outage.
func TestRecordsEtcd(t *testing.T) {
	ctx := context.Background()
	m := readV1Manifest(t)
	st := openEtcdStore(t)
	copyItems(t, st, openV1Fixture(t))
	checkV1Contents(t, openV1KS(t, st, &fakeClock{t: v1Clock}), m)
	ks := openV1KS(t, st, &fakeClock{t: v1Clock})
	if rep, err := ks.MigrateRecords(ctx); err != nil || rep.Migrated != len(m.Keys) {
		t.Fatalf("migration on etcd: %+v, %v", rep, err)
	}
	if v1, v2, seeds := recordForms(t, st); v1 != 0 || v2 != len(m.Keys) || seeds != 0 {
		t.Fatalf("after migrating on etcd: %d version 1 records, %d version 2, %d sealed seeds apart", v1, v2, seeds)
	}
	checkV1Contents(t, openV1KS(t, st, &fakeClock{t: v1Clock}), m)

	// The largest key record, made on a memory store and brought over.
	mem := memstore.New()
	kek := newKEK(t)
	mks := openKS(t, mem, kek)
	k, err := mks.Create(ctx, CreateParams{Tenant: "acme", Purpose: "big", Alg: "ml-dsa-87"})
	if err != nil {
		t.Fatal(err)
	}
	versions := 1
	for ; ; versions++ {
		_, err := mks.Rotate(ctx, k.Name, "")
		if errors.Is(err, ErrUnsupported) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	it, err := mem.Get(ctx, keyPath(k.Name))
	if err != nil {
		t.Fatal(err)
	}
	if len(it.Value) > MaxKeyRecordSize || len(it.Value) < MaxKeyRecordSize*9/10 {
		t.Fatalf("%d versions: a record of %d bytes", versions, len(it.Value))
	}
	t.Logf("ml-dsa-87: %d versions in a record of %d bytes", versions, len(it.Value))
	est := openEtcdStore(t)
	copyItems(t, est, mem)
	eks := openKS(t, est, kek)
	s := sign(t, eks, Ref{Name: k.Name}, []byte("m"))
	if s.Version != uint32(versions) {
		t.Fatalf("signed with version %d of %d", s.Version, versions)
	}
	if _, err := eks.Rotate(ctx, k.Name, ""); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("rotating a full key on etcd: %v, want ErrUnsupported", err)
	}
}
