package keystore

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/boltstore"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
	"github.com/ron-kms/ron-kms/internal/testvectors"
)

func newKEK(t testing.TB) []byte {
	kek := make([]byte, 32)
	rand.Read(kek)
	return kek
}

func openKS(t testing.TB, st storage.Store, kek []byte) *Keystore {
	t.Helper()
	s, err := seal.NewAESGCM(kek)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := Open(context.Background(), Config{Store: st, Sealer: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	return ks
}

func newMemKS(t testing.TB) *Keystore { return openKS(t, memstore.New(), newKEK(t)) }

func create(t testing.TB, ks *Keystore, opID string) *Key {
	t.Helper()
	k, err := ks.Create(context.Background(), CreateParams{Tenant: "acme", Purpose: "billing", Alg: "ed25519", OpID: opID})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, ks *Keystore, ref Ref, msg []byte) Signature {
	t.Helper()
	s, err := ks.Sign(context.Background(), ref, msg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateSignVerify(t *testing.T) {
	ctx := context.Background()
	ks := newMemKS(t)
	k := create(t, ks, "")
	if k.Current != 1 || len(k.Versions) != 1 || k.Versions[0].State != Enabled {
		t.Fatalf("new key: %+v", k)
	}
	msg := []byte("hello")
	s := sign(t, ks, Ref{Name: k.Name}, msg)
	if s.KID != k.Name+"#v1" || s.Version != 1 || len(s.Parts) != 1 || s.Parts[0].Alg != "ed25519" {
		t.Fatalf("signature: %+v", s)
	}
	// Independent check with the standard library and the stored public key.
	if !ed25519.Verify(k.Versions[0].PublicKey, msg, s.Parts[0].Sig) {
		t.Fatal("crypto/ed25519 rejects our signature")
	}
	if _, err := ks.Verify(ctx, Ref{Name: k.Name, Version: 1}, msg, s.Parts, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Verify(ctx, Ref{Name: k.Name}, []byte("other"), s.Parts, Options{}); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("wrong message: %v", err)
	}
	if _, err := ks.Verify(ctx, Ref{Name: k.Name}, msg, []Part{{Alg: "ml-dsa-65", Sig: s.Parts[0].Sig}}, Options{}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("wrong part alg: %v", err)
	}
	if _, err := ks.Sign(ctx, Ref{Name: k.Name}, msg, Options{Context: []byte("c")}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("ed25519 with context: %v", err)
	}
	if _, err := ks.Sign(ctx, Ref{Name: "acme/billing/ed25519/0190b8a4-4f7c-7b7e-8a1d-1234567890ab"}, msg, Options{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	ks := newMemKS(t)
	k := create(t, ks, "")
	msg := []byte("m")
	var sigs []Signature
	for i := 0; i < 3; i++ {
		sigs = append(sigs, sign(t, ks, Ref{Name: k.Name}, msg))
		res, err := ks.Rotate(ctx, k.Name, "")
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%s#v%d", k.Name, i+2)
		if res.KID != want || res.Previous != fmt.Sprintf("%s#v%d", k.Name, i+1) {
			t.Fatalf("rotate %d: %+v", i, res)
		}
	}
	got, err := ks.Get(ctx, k.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Current != 4 || len(got.Versions) != 4 || got.UUID != k.UUID {
		t.Fatalf("after 3 rotations: current %d, %d versions, uuid %s", got.Current, len(got.Versions), got.UUID)
	}
	// Old signatures verify with their own kid after every rotation.
	for i, s := range sigs {
		if s.Version != uint32(i+1) {
			t.Fatalf("signature %d made by v%d", i, s.Version)
		}
		if _, err := ks.Verify(ctx, Ref{Name: k.Name, Version: s.Version}, msg, s.Parts, Options{}); err != nil {
			t.Fatalf("v%d signature after rotations: %v", s.Version, err)
		}
		// ...and not with another version's key.
		if _, err := ks.Verify(ctx, Ref{Name: k.Name, Version: 4}, msg, s.Parts, Options{}); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("v%d signature checked against v4: %v", s.Version, err)
		}
	}
	// Only the current version signs.
	if _, err := ks.Sign(ctx, Ref{Name: k.Name, Version: 2}, msg, Options{}); !errors.Is(err, ErrNotCurrent) {
		t.Fatalf("sign with v2: %v", err)
	}
	if _, err := ks.Sign(ctx, Ref{Name: k.Name, Version: 9}, msg, Options{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("sign with v9: %v", err)
	}
	if s := sign(t, ks, Ref{Name: k.Name, Version: 4}, msg); s.Version != 4 {
		t.Fatalf("explicit current version signed as v%d", s.Version)
	}
}

func TestCreateIdempotent(t *testing.T) {
	ctx := context.Background()
	ks := newMemKS(t)
	a := create(t, ks, "op-1")
	b := create(t, ks, "op-1")
	if a.Name != b.Name {
		t.Fatalf("replay made a second key: %s, %s", a.Name, b.Name)
	}
	keys, _, err := ks.List(ctx, ListParams{Limit: 10})
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys after replay: %d, %v", len(keys), err)
	}
	_, err = ks.Create(ctx, CreateParams{Tenant: "acme", Purpose: "other", Alg: "ed25519", OpID: "op-1"})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("op_id reused with another body: %v", err)
	}
}

func TestRotateIdempotentAndRace(t *testing.T) {
	ctx := context.Background()
	ks := newMemKS(t)
	k := create(t, ks, "")
	r1, err := ks.Rotate(ctx, k.Name, "rot-1")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := ks.Rotate(ctx, k.Name, "rot-1")
	if err != nil || r1 != r2 {
		t.Fatalf("replayed rotate: %+v %v, want %+v", r2, err, r1)
	}
	if got, _ := ks.Get(ctx, k.Name); got.Current != 2 {
		t.Fatalf("replay rotated again: current %d", got.Current)
	}
	other := create(t, ks, "")
	if _, err := ks.Rotate(ctx, other.Name, "rot-1"); !errors.Is(err, ErrConflict) {
		t.Fatalf("op_id reused for another key: %v", err)
	}

	// Concurrent rotations all win: a rotation that loses the race re-reads
	// and adds the next version, so the versions are exactly 1 + 8, each
	// number once, and every answer names a distinct version.
	var wg sync.WaitGroup
	var mu sync.Mutex
	kids := map[string]bool{}
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			res, err := ks.Rotate(ctx, other.Name, "")
			if err != nil {
				t.Errorf("rotate: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if kids[res.KID] {
				t.Errorf("two rotations answered %s", res.KID)
			}
			kids[res.KID] = true
		})
	}
	wg.Wait()
	got, _ := ks.Get(ctx, other.Name)
	if len(kids) != 8 || got.Current != 9 || len(got.Versions) != 9 {
		t.Fatalf("%d distinct answers, current %d, versions %d; want 8, 9, 9", len(kids), got.Current, len(got.Versions))
	}
	for i, v := range got.Versions {
		if v.Number != uint32(i+1) {
			t.Fatalf("version %d is numbered %d", i+1, v.Number)
		}
	}
}

func TestRestartOnBolt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	kek := newKEK(t)
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ks := openKS(t, st, kek)
	k := create(t, ks, "op-create")
	if _, err := ks.Rotate(ctx, k.Name, "op-rotate"); err != nil {
		t.Fatal(err)
	}
	msg := []byte("before restart")
	s1 := sign(t, ks, Ref{Name: k.Name}, msg)
	ks.Close()
	st.Close()

	st, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ks = openKS(t, st, kek)
	got, err := ks.Get(ctx, k.Name)
	if err != nil || got.Current != 2 || len(got.Versions) != 2 {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	if _, err := ks.Verify(ctx, Ref{Name: k.Name, Version: s1.Version}, msg, s1.Parts, Options{}); err != nil {
		t.Fatalf("old signature after restart: %v", err)
	}
	if again := create(t, ks, "op-create"); again.Name != k.Name {
		t.Fatalf("op_id forgotten across restart: %s vs %s", again.Name, k.Name)
	}
	if r, err := ks.Rotate(ctx, k.Name, "op-rotate"); err != nil || r.KID != k.Name+"#v2" {
		t.Fatalf("rotate op_id forgotten across restart: %+v %v", r, err)
	}
	if s := sign(t, ks, Ref{Name: k.Name}, msg); s.Version != 2 {
		t.Fatalf("signed with v%d after restart", s.Version)
	}

	// Another KEK does not open this store.
	s, _ := seal.NewAESGCM(newKEK(t))
	if _, err := Open(ctx, Config{Store: st, Sealer: s}); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("wrong KEK: %v", err)
	}
}

func TestSealedRecordBoundToVersion(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	kek := newKEK(t)
	ks := openKS(t, st, kek)
	k := create(t, ks, "")
	if _, err := ks.Rotate(ctx, k.Name, ""); err != nil {
		t.Fatal(err)
	}
	// Move version 1's sealed seed over version 2's, then sign with a fresh
	// keystore (empty cache): unsealing must fail, not sign with v1's key.
	v1, _ := storedSealed(t, st, k.Name, 1)
	replaceSealed(t, st, k.Name, 2, v1)
	fresh := openKS(t, st, kek)
	if _, err := fresh.Sign(ctx, Ref{Name: k.Name}, []byte("m"), Options{}); err == nil || !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("sign with a moved sealed record: %v", err)
	}
	// Nor does another key's seed, in the same version's slot.
	other := create(t, ks, "")
	replaceSealed(t, st, other.Name, 1, v1)
	if _, err := openKS(t, st, kek).Sign(ctx, Ref{Name: other.Name}, []byte("m"), Options{}); err == nil || !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("sign with another key's sealed seed: %v", err)
	}
}

func TestListPaging(t *testing.T) {
	ctx := context.Background()
	ks := newMemKS(t)
	var names []string
	for i := 0; i < 7; i++ {
		k, err := ks.Create(ctx, CreateParams{Tenant: "t" + fmt.Sprint(i%2), Purpose: "p", Alg: "ed25519"})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, k.Name)
	}
	var seen []string
	after := ""
	for pages := 0; ; pages++ {
		keys, next, err := ks.List(ctx, ListParams{After: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			seen = append(seen, k.Name)
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		after = next
	}
	if len(seen) != 7 {
		t.Fatalf("paged through %d keys, want 7", len(seen))
	}
	for i := 1; i < len(seen); i++ {
		if seen[i-1] >= seen[i] {
			t.Fatalf("not in name order: %v", seen)
		}
	}
	keys, _, _ := ks.List(ctx, ListParams{Prefix: "t1/", Limit: 100})
	if len(keys) != 3 {
		t.Fatalf("tenant t1 has %d keys, want 3", len(keys))
	}
	// A filter that hides every other key still fills pages.
	vis := func(k *Key) bool { return k.Tenant == "t0" }
	keys, next, _ := ks.List(ctx, ListParams{Limit: 4, Visible: vis})
	if len(keys) != 4 || next != "" {
		t.Fatalf("filtered list: %d keys, next %q", len(keys), next)
	}
}

func TestCacheFollowsOtherWriters(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	kek := newKEK(t)
	a, b := openKS(t, st, kek), openKS(t, st, kek)
	k := create(t, a, "")
	sign(t, b, Ref{Name: k.Name}, []byte("warm b's cache"))
	if _, err := a.Rotate(ctx, k.Name, ""); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := sign(t, b, Ref{Name: k.Name}, []byte("m"))
		if s.Version == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("second keystore never saw the rotation")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRFC8032ThroughKeystore stores the RFC 8032 §7.1 test seeds as sealed
// key versions and signs the test messages through Keystore.Sign: the
// signatures must be the RFC's, byte for byte.
func TestRFC8032ThroughKeystore(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	kek := newKEK(t)
	ks := openKS(t, st, kek)
	sealer, _ := seal.NewAESGCM(kek)
	for i, v := range testvectors.RFC8032 {
		seed, _ := hex.DecodeString(v.Seed)
		pub, _ := hex.DecodeString(v.Pub)
		msg, _ := hex.DecodeString(v.Msg)
		want, _ := hex.DecodeString(v.Sig)
		name := fmt.Sprintf("rfc/test/ed25519/0190b8a4-4f7c-7b7e-8a1d-00000000000%d", i)
		k := &Key{Name: name, Tenant: "rfc", Purpose: "test", Alg: "ed25519", UUID: name[len(name)-36:],
			Current: 1, MinVerify: 1, Versions: []Version{{Number: 1, State: Enabled, PublicKey: pub}}}
		sealed, err := sealer.Seal(seal.Binding{Name: name, Version: 1, Alg: "ed25519"}, seed)
		if err != nil {
			t.Fatal(err)
		}
		k.sealed = [][]byte{sealed}
		if _, err := st.Apply(ctx,
			storage.Mutation{Key: keyPath(name), Value: mustEncode(t, k), Expect: storage.MustNotExist}); err != nil {
			t.Fatal(err)
		}
		s := sign(t, ks, Ref{Name: name}, msg)
		if hex.EncodeToString(s.Parts[0].Sig) != hex.EncodeToString(want) {
			t.Errorf("%s: signature\n got %x\nwant %x", v.Name, s.Parts[0].Sig, want)
		}
		if _, err := ks.Verify(ctx, Ref{Name: name, Version: 1}, msg, []Part{{Alg: "ed25519", Sig: want}}, Options{}); err != nil {
			t.Errorf("%s: RFC signature does not verify: %v", v.Name, err)
		}
	}
}
