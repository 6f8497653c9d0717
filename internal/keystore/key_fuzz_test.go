package keystore

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
	"github.com/ron-kms/ron-kms/internal/wrap"
)

// storedFixture runs a keystore over a memory store through what writes key
// records and due-index entries: keys of every algorithm, labels, a
// rotation, configuration, disabled and destroy-scheduled versions, an
// imported key and a verify-only one. It returns the store's items under
// prefix, as the keystore wrote them.
func storedFixture(t testing.TB, prefix string) []storage.Item {
	t.Helper()
	ctx := context.Background()
	st := memstore.New()
	clock := &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	ks := openClocked(t, st, newKEK(t), clock)
	defer ks.Close()
	var names []string
	for _, alg := range []string{"ed25519", "ml-dsa-65", "slh-dsa-sha2-128s", "mldsa65-ed25519", "x25519", "mlkem768-x25519", "aes-256-gcm"} {
		k, err := ks.Create(ctx, CreateParams{Tenant: "acme", Purpose: "fuzz", Alg: alg, Labels: map[string]string{"team": "pay", "env": "prod"}})
		if err != nil {
			t.Fatalf("create %s: %v", alg, err)
		}
		names = append(names, k.Name)
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ed := names[0]
	for range 3 {
		clock.Advance(time.Hour)
		must(ks.Rotate(ctx, ed, ""))
	}
	must(ks.Configure(ctx, ed, KeyConfig{MinVerifyVersion: u32(2), AutoRotateDays: u32(30), DestroyWaitingDays: u32(7)}))
	must(ks.Transition(ctx, ed, 2, ActionDisable))
	must(ks.Transition(ctx, ed, 3, ActionDestroy))
	must(ks.Configure(ctx, names[1], KeyConfig{AutoRotateDays: u32(MaxAutoRotateDays)}))
	must(ks.Rotate(ctx, names[6], ""))
	must(ks.Transition(ctx, names[6], 1, ActionDestroy))

	wk, err := ks.ImportWrappingKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := wrap.SealImport(wk, bytes.Repeat([]byte{3}, ed25519.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	must(ks.Import(ctx, ImportParams{Tenant: "acme", Purpose: "imported", Alg: "ed25519", Wrapped: sealed}))
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	must(ks.Import(ctx, ImportParams{Tenant: "acme", Purpose: "verify-only", Alg: "ed25519", PublicKey: pub}))

	items, err := st.List(ctx, prefix, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) == 0 {
		t.Fatalf("no items under %s", prefix)
	}
	return items
}

// sameKey reports whether a and b hold the same metadata, field by field:
// times at the same instant and offset (the zero instant at any offset is
// the zero time, which omitzero leaves out), no labels the same as an empty
// map, no public key the same as an empty one.
func sameKey(a, b *Key) bool {
	sameTime := func(x, y time.Time) bool {
		_, ox := x.Zone()
		_, oy := y.Zone()
		return x.Equal(y) && (ox == oy || x.IsZero())
	}
	if a.Name != b.Name || a.Tenant != b.Tenant || a.Purpose != b.Purpose || a.Alg != b.Alg || a.UUID != b.UUID ||
		!sameTime(a.CreatedAt, b.CreatedAt) || a.Current != b.Current || a.MinVerify != b.MinVerify ||
		!maps.Equal(a.Labels, b.Labels) || a.DestroyWaitDays != b.DestroyWaitDays ||
		a.AutoRotateDays != b.AutoRotateDays || a.VerifyOnly != b.VerifyOnly || len(a.Versions) != len(b.Versions) {
		return false
	}
	for i, v := range a.Versions {
		w := b.Versions[i]
		if v.Number != w.Number || v.State != w.State || !sameTime(v.CreatedAt, w.CreatedAt) ||
			!bytes.Equal(v.PublicKey, w.PublicKey) || !sameTime(v.DestroyAt, w.DestroyAt) || v.Origin != w.Origin {
			return false
		}
	}
	return true
}

// v1Records returns the key records of the version 1 store fixture
// (testdata/v1store), read from a copy of it.
func v1Records(t testing.TB) []storage.Item {
	t.Helper()
	st := openV1Fixture(t)
	items, err := st.List(context.Background(), "k/", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// FuzzDecodeKey: a record that decodes satisfies what the rest of the
// package relies on (versions numbered 1..n in their slots, a current
// version among them, an origin for each, the revision it was read at),
// and encodes to a version 2 record that decodes to the same key (sealed
// seeds included) and encodes to the same bytes again; a version 2 record
// that decodes is that encoding already (the parser accepts one form). A
// record that does not decode is errCorruptKey and no key. Seeds are the
// records keystores wrote: version 2 by this code, version 1 (JSON) from the
// fixture written by the code before it, and near misses of both.
func FuzzDecodeKey(f *testing.F) {
	for _, it := range v1Records(f) {
		if _, err := decodeKey(it.Value, it.Revision); err != nil {
			f.Fatalf("a version 1 record does not decode: %s: %v", it.Value, err)
		}
		s := string(it.Value)
		f.Add(it.Value)
		for _, near := range []string{
			strings.ReplaceAll(s, `,"origin":"generated"`, ``), // written before import existed
			strings.Replace(s, `"current":`, `"current":0`, 1),
			strings.Replace(s, `"current":`, `"current":9`, 1),
			strings.Replace(s, `"n":1,`, `"n":2,`, 1),
			strings.Replace(s, `"versions":[`, `"versions":[{"n":1},`, 1),
			strings.Replace(s, `"versions":[`, `"versions":null,"x":[`, 1),
			strings.Replace(s, `"name":`, `"NAME":`, 1), // encoding/json folds case
			strings.Replace(s, `"tenant":"`, `"tenant":"x`, 1),
			strings.Replace(s, `"labels":{`, `"labels":{"team":"x",`, 1),
			strings.Replace(s, `Z"`, `+05:30"`, 1),
			strings.Replace(s, `Z"`, `.123456789-00:01"`, 1),
			strings.Replace(s, `2026-`, `0000-`, 1),
			strings.Replace(s, `2026-`, `10000-`, 1),
			strings.Replace(s, `"pub":"`, `"pub":"!`, 1),
			strings.Replace(s, `"state":"enabled"`, `"state":"on"`, 1),
			strings.Replace(s, `"auto_rotate_days":`, `"auto_rotate_days":4294967295`, 1),
			" " + s + "\n",
			s[:len(s)/2],
			s + "{}",
		} {
			f.Add([]byte(near))
		}
	}
	for _, it := range storedFixture(f, "k/") {
		if _, err := decodeKey(it.Value, it.Revision); err != nil {
			f.Fatalf("a record the keystore wrote does not decode: %x: %v", it.Value, err)
		}
		b := it.Value
		f.Add(b)
		for _, n := range []int{1, 2, 3, len(b) / 2, len(b) - 1} {
			f.Add(b[:n])
			flip := bytes.Clone(b)
			flip[n] ^= 0x80
			f.Add(flip)
		}
		f.Add(append(bytes.Clone(b), 0))
	}
	f.Add([]byte(`{"current":1,"versions":[{"n":1}]}`))
	f.Add([]byte(`{"name":"a/b/c/d","tenant":"a","purpose":"b","alg":"c","uuid":"d","current":1,"versions":[{"n":1,"state":"enabled","destroy_at":"0001-01-01T01:00:00+01:00"}],"labels":{}}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Add([]byte{keyRecordV2})
	f.Fuzz(func(t *testing.T, b []byte) {
		const rev = 7
		k, err := decodeKey(b, rev)
		if err != nil {
			if !errors.Is(err, errCorruptKey) || k != nil {
				t.Fatalf("decodeKey(%q) = %+v, %v; want nil, errCorruptKey", b, k, err)
			}
			return
		}
		if k.revision != rev {
			t.Fatalf("decodeKey(%q): revision %d", b, k.revision)
		}
		for i, v := range k.Versions {
			if v.Number != uint32(i+1) || v.Origin == "" {
				t.Fatalf("decodeKey(%q): version %+v in slot %d", b, v, i)
			}
		}
		if _, ok := k.Version(k.Current); !ok {
			t.Fatalf("decodeKey(%q): current version %d of %d", b, k.Current, len(k.Versions))
		}
		if k.legacy {
			k.sealed = make([][]byte, len(k.Versions)) // as fetchForWrite finds none
		}
		enc, err := k.encode()
		if err != nil {
			t.Fatalf("decodeKey(%q) encodes with %v", b, err)
		}
		if !k.legacy && !bytes.Equal(enc, b) {
			t.Fatalf("version 2 record %x decodes and encodes to %x", b, enc)
		}
		k2, err := decodeKey(enc, rev)
		if err != nil {
			t.Fatalf("re-encoding %q of %q does not decode: %v", enc, b, err)
		}
		if !sameKey(k, k2) || !slices.EqualFunc(k.sealed, k2.sealed, bytes.Equal) {
			t.Fatalf("%q decodes to %+v, its encoding %q to %+v", b, k, enc, k2)
		}
		if again, _ := k2.encode(); !bytes.Equal(again, enc) {
			t.Fatalf("encoding of %q is not stable: %q, then %q", b, enc, again)
		}
	})
}

// FuzzDecodeOp: an op record that decodes has a kind and a 64-digit
// digest and a result of its kind; a version 2 one re-encodes to the same
// bytes, a version 1 one to a version 2 record that decodes to the same
// result. One that does not decode is errCorruptOp. Seeds are the op
// records of the version 1 fixture and of a keystore of this code.
func FuzzDecodeOp(f *testing.F) {
	ctx := context.Background()
	ks := newMemKS(f)
	k, err := ks.Create(ctx, CreateParams{Tenant: "acme", Purpose: "fuzz", Alg: "ed25519", Labels: map[string]string{"a": "b"}, OpID: "c1"})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := ks.Rotate(ctx, k.Name, "r1"); err != nil {
		f.Fatal(err)
	}
	var seeds []storage.Item
	for _, st := range []storage.Store{openV1Fixture(f), ks.raw} {
		items, err := st.List(ctx, "op/", "", 0)
		if err != nil || len(items) == 0 {
			f.Fatalf("op records: %d, %v", len(items), err)
		}
		seeds = append(seeds, items...)
	}
	for _, it := range seeds {
		if _, err := decodeOp(it.Value); err != nil {
			f.Fatalf("an op record a keystore wrote does not decode: %q: %v", it.Value, err)
		}
		b := it.Value
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(bytes.Clone(b), 0))
		if b[0] == opRecordV2 {
			for _, n := range []int{1, 2, 34, 35, 36} {
				flip := bytes.Clone(b)
				flip[n] ^= 0x41
				f.Add(flip)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeOp(b)
		if err != nil {
			if !errors.Is(err, errCorruptOp) {
				t.Fatalf("decodeOp(%q): %v, want errCorruptOp", b, err)
			}
			return
		}
		if b[0] != opRecordV2 {
			return // version 1: as loose as it always was (encoding/json)
		}
		var result any = r.rotate
		if r.key != nil {
			result = r.key
		}
		if enc := encodeOp(r.kind, r.digest, result); !bytes.Equal(enc, b) {
			t.Fatalf("op record %x decodes and encodes to %x", b, enc)
		}
	})
}
