package keystore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/boltstore"
)

// openV1Fixture opens a copy of testdata/v1store/kms.db.
func openV1Fixture(t testing.TB) *boltstore.Store {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "v1store", "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kms.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func readV1Manifest(t testing.TB) v1Manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "v1store", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m v1Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// openV1KS opens a keystore over st with the fixture's KEK, its clock a day
// after the fixture was written.
func openV1KS(t testing.TB, st storage.Store, clock *fakeClock) *Keystore {
	t.Helper()
	sealer, err := seal.NewAESGCM(v1FixtureKEK())
	if err != nil {
		t.Fatal(err)
	}
	ks, err := Open(context.Background(), Config{Store: st, Sealer: sealer, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	return ks
}

// checkV1Contents checks that ks holds everything the manifest says the
// fixture held: the same keys with the same metadata and public keys, the
// old signatures verifying (or not) as they did, the keys that signed still
// signing, wrapped and encrypted data opening, op_ids answering as before.
func checkV1Contents(t *testing.T, ks *Keystore, m v1Manifest) {
	t.Helper()
	ctx := context.Background()
	keys, _, err := ks.List(ctx, ListParams{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != len(m.Keys) {
		t.Fatalf("%d keys, the fixture has %d", len(keys), len(m.Keys))
	}
	for i, want := range m.Keys {
		var wk Key
		if err := json.Unmarshal(want.Record, &wk); err != nil {
			t.Fatal(err)
		}
		for j := range wk.Versions {
			if wk.Versions[j].Origin == "" {
				wk.Versions[j].Origin = OriginGenerated
			}
		}
		got, err := ks.Get(ctx, want.Name)
		if err != nil {
			t.Fatalf("%s: %v", want.Name, err)
		}
		if !sameKey(got, &wk) || !sameKey(keys[i], &wk) {
			t.Errorf("%s reads as\n%+v\nthe fixture held\n%+v", want.Name, got, wk)
		}
		s, err := ks.Sign(ctx, Ref{Name: want.Name}, []byte("after"), Options{})
		if (err == nil) != want.Signs {
			t.Errorf("%s: sign: %v; it signed before: %v", want.Name, err, want.Signs)
		}
		if err == nil {
			if _, err := ks.Verify(ctx, Ref{Name: want.Name, Version: s.Version}, []byte("after"), s.Parts, Options{}); err != nil {
				t.Errorf("%s: a new signature does not verify: %v", want.Name, err)
			}
		}
	}
	for _, s := range m.Signatures {
		name, n, err := parseKIDForFixture(s.KID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ks.Verify(ctx, Ref{Name: name, Version: n}, []byte(s.Message), s.Parts, Options{})
		if (err == nil) != s.Valid {
			t.Errorf("%s: verify of the fixture's signature: %v; it verified before: %v", s.KID, err, s.Valid)
		}
		if err != nil && !errors.Is(err, ErrVersionUnusable) {
			t.Errorf("%s: verify: %v, want ErrVersionUnusable", s.KID, err)
		}
		bad := bytes.Clone(s.Parts[0].Sig)
		bad[0] ^= 1
		parts := append([]Part{{Alg: s.Parts[0].Alg, Sig: bad}}, s.Parts[1:]...)
		if _, err := ks.Verify(ctx, Ref{Name: name, Version: n}, []byte(s.Message), parts, Options{}); err == nil {
			t.Errorf("%s: a changed signature verifies", s.KID)
		}
	}
	for _, w := range m.Wrapped {
		var pt []byte
		switch w.Kind {
		case "wrap":
			u, err := ks.Unwrap(ctx, w.Blob, []byte(w.AAD))
			if err != nil {
				t.Fatalf("%s: unwrap: %v", w.Name, err)
			}
			pt = u.Plaintext
		case "encrypt":
			d, err := ks.Decrypt(ctx, w.Blob, []byte(w.AAD))
			if err != nil {
				t.Fatalf("%s: decrypt: %v", w.Name, err)
			}
			pt = d.Plaintext
		}
		if string(pt) != w.Plaintext {
			t.Errorf("%s: %s opens to %q, want %q", w.Name, w.Kind, pt, w.Plaintext)
		}
	}
	for _, o := range m.OpIDs {
		var labels map[string]string
		for _, k := range m.Keys {
			if k.Name == o.Name {
				var wk Key
				json.Unmarshal(k.Record, &wk)
				labels = wk.Labels
			}
		}
		k, err := ks.Create(ctx, CreateParams{Tenant: o.Tenant, Purpose: o.Purpose, Alg: o.Alg, Labels: labels, OpID: o.OpID})
		if err != nil || k.Name != o.Name {
			t.Errorf("op_id %s answers %v, %v; want %s", o.OpID, k, err, o.Name)
		}
		if _, err := ks.Create(ctx, CreateParams{Tenant: o.Tenant, Purpose: o.Purpose, Alg: "ed25519", OpID: o.OpID}); o.Alg != "ed25519" && !errors.Is(err, ErrConflict) {
			t.Errorf("op_id %s reused for another request: %v, want ErrConflict", o.OpID, err)
		}
	}
}

// recordForms counts the version 1 and 2 key records of st and its separate
// sealed seeds.
func recordForms(t *testing.T, st storage.Store) (v1, v2, seeds int) {
	t.Helper()
	items, err := st.List(context.Background(), "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		switch {
		case strings.HasPrefix(it.Key, "s/"):
			seeds++
		case strings.HasPrefix(it.Key, "k/") && it.Value[0] == '{':
			v1++
		case strings.HasPrefix(it.Key, "k/") && it.Value[0] == keyRecordV2:
			v2++
		}
	}
	return v1, v2, seeds
}

var v1Clock = time.Date(2026, 12, 10, 12, 0, 0, 0, time.UTC)

// TestV1Store: a store written by the code before key records v2 reads as
// it did, as it is (both forms are read), after a migration stopped half
// way, and after a whole one; MigrateRecords leaves no version 1 record or
// separate sealed seed, and a second run has nothing to do.
func TestV1Store(t *testing.T) {
	m := readV1Manifest(t)
	ctx := context.Background()
	st := openV1Fixture(t)
	if v1, v2, seeds := recordForms(t, st); v1 != len(m.Keys) || v2 != 0 || seeds == 0 {
		t.Fatalf("the fixture holds %d version 1 records, %d version 2, %d sealed seeds", v1, v2, seeds)
	}
	t.Run("as it is", func(t *testing.T) {
		checkV1Contents(t, openV1KS(t, st, &fakeClock{t: v1Clock}), m)
	})
	t.Run("half migrated", func(t *testing.T) {
		ks := openV1KS(t, st, &fakeClock{t: v1Clock})
		// A migration that stops after its first write (one key per
		// write) is one whose process died there.
		cctx, cancel := context.WithCancel(ctx)
		cancelling := &cancelAfterApply{Store: st, cancel: cancel}
		ks.store = cancelling
		rep, err := ks.migrateRecords(cctx, 1)
		if err == nil || rep.Migrated != 1 {
			t.Fatalf("interrupted migration: %+v, %v", rep, err)
		}
		if _, err := st.Get(ctx, recordsVersionPath); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%s after an interrupted migration: %v", recordsVersionPath, err)
		}
		ks.store = observedStore{Store: st, h: ks.health}
		if v1, v2, _ := recordForms(t, st); v1 != len(m.Keys)-1 || v2 != 1 {
			t.Fatalf("after one write: %d version 1 records, %d version 2", v1, v2)
		}
		checkV1Contents(t, openV1KS(t, st, &fakeClock{t: v1Clock}), m)
	})
	t.Run("migrated under a cached key", func(t *testing.T) {
		// A keystore that cached a key from its version 1 record, before
		// it was migrated (here by another keystore, as by another node),
		// unseals from the version 2 record once the seeds are gone.
		cached := openV1KS(t, st, &fakeClock{t: v1Clock})
		var name string
		for _, k := range m.Keys {
			if k.Signs && strings.Contains(k.Name, "/ml-dsa-44/") {
				name = k.Name
			}
		}
		e, err := cached.entry(ctx, name)
		if err != nil || !e.key.legacy {
			t.Fatalf("%s: %+v, %v", name, e, err)
		}
		it, err := st.Get(ctx, keyPath(name))
		if err != nil {
			t.Fatal(err)
		}
		k, err := decodeKey(it.Value, it.Revision)
		if err != nil {
			t.Fatal(err)
		}
		if err := cached.readLegacySeeds(ctx, k); err != nil {
			t.Fatal(err)
		}
		muts, err := keyWrite(k, k.clone())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Apply(ctx, muts...); err != nil {
			t.Fatal(err)
		}
		if _, err := cached.unseal(ctx, e.key, 1); err != nil {
			t.Fatalf("unsealing a key cached before its migration: %v", err)
		}
	})
	t.Run("migrated", func(t *testing.T) {
		ks := openV1KS(t, st, &fakeClock{t: v1Clock})
		rep, err := ks.MigrateRecords(ctx)
		if err != nil || rep.Migrated != len(m.Keys)-2 || len(rep.Left) != 0 {
			t.Fatalf("migration: %+v, %v", rep, err)
		}
		if v1, v2, seeds := recordForms(t, st); v1 != 0 || v2 != len(m.Keys) || seeds != 0 {
			t.Fatalf("after migrating: %d version 1 records, %d version 2, %d sealed seeds apart", v1, v2, seeds)
		}
		checkV1Contents(t, ks, m)
		checkV1Contents(t, openV1KS(t, st, &fakeClock{t: v1Clock}), m)
		if it, err := st.Get(ctx, recordsVersionPath); err != nil || string(it.Value) != recordsVersion2 {
			t.Fatalf("%s after a whole migration: %q, %v", recordsVersionPath, it.Value, err)
		}
		if rep, err := ks.MigrateRecords(ctx); err != nil || rep.Migrated != 0 {
			t.Fatalf("second migration: %+v, %v", rep, err)
		}
	})
}

// TestV1StoreWrites: every write of a key still in a version 1 record
// (rotate, a state change, configuration, the scheduler's erasure and
// rotation) writes a version 2 record holding every sealed seed and deletes
// the separate ones in the same write; every old version still verifies.
func TestV1StoreWrites(t *testing.T) {
	m := readV1Manifest(t)
	ctx := context.Background()
	st := openV1Fixture(t)
	clock := &fakeClock{t: v1Clock}
	ks := openV1KS(t, st, clock)
	names := map[string]string{}
	for _, k := range m.Keys {
		names[k.Name[strings.Index(k.Name, "/fixture/")+1:strings.LastIndex(k.Name, "/")]] = k.Name
	}
	ed, co, x := names["fixture/ed25519"], names["fixture/mldsa65-ed25519"], names["fixture/x25519"]
	if _, err := ks.Rotate(ctx, ed, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Transition(ctx, x, 1, ActionDisable); err != nil {
		t.Fatal(err)
	}
	// The composite's v1 was scheduled for destruction 7 days after the
	// fixture's clock; the ed25519 key rotates every 90 days.
	clock.Advance(100 * day)
	rep, err := ks.RunDue(ctx)
	if err != nil || len(rep.Destroyed) != 1 || len(rep.Errors) != 0 {
		t.Fatalf("scheduler: %+v, %v", rep, err)
	}
	for _, name := range []string{ed, co, x} {
		it, err := st.Get(ctx, keyPath(name))
		if err != nil || it.Value[0] != keyRecordV2 {
			t.Fatalf("%s after a write: %v, %q", name, err, it.Value[:1])
		}
		left, err := st.List(ctx, "s/"+name+"/", "", 0)
		if err != nil || len(left) != 0 {
			t.Fatalf("%s: %d separate sealed seeds left, %v", name, len(left), err)
		}
	}
	// The fixture's signatures verify as they did.
	for _, s := range m.Signatures {
		name, n, _ := parseKIDForFixture(s.KID)
		if name != ed && name != co {
			continue
		}
		_, err := ks.Verify(ctx, Ref{Name: name, Version: n}, []byte(s.Message), s.Parts, Options{})
		if (err == nil) != s.Valid {
			t.Errorf("%s: verify after the writes: %v", s.KID, err)
		}
	}
	k, err := ks.Get(ctx, ed)
	if err != nil || k.Current != 5 {
		t.Fatalf("ed25519 after a rotation by hand and one by the scheduler: %+v, %v", k, err)
	}
	// The new current version signs with the seed in the record, read
	// cold by a keystore that never saw the key.
	cold := openV1KS(t, st, clock)
	s := sign(t, cold, Ref{Name: ed}, []byte("m"))
	if _, err := cold.Verify(ctx, Ref{Name: ed, Version: s.Version}, []byte("m"), s.Parts, Options{}); err != nil {
		t.Fatal(err)
	}
	if k, err := cold.Get(ctx, co); err != nil || k.Versions[0].State != Destroyed {
		t.Fatalf("composite v1 after erasure: %+v, %v", k, err)
	}
}

// cancelAfterApply is a store that cancels a context once an Apply
// succeeded: what a migration does after its first write then fails, as
// if its process had died there.
type cancelAfterApply struct {
	storage.Store
	cancel context.CancelFunc
}

func (c *cancelAfterApply) Apply(ctx context.Context, muts ...storage.Mutation) (int64, error) {
	rev, err := c.Store.Apply(ctx, muts...)
	if err == nil {
		c.cancel()
	}
	return rev, err
}
