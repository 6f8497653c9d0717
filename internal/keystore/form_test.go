package keystore

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
	"github.com/ron-kms/ron-kms/internal/testvectors"
)

// TestEd25519SealsSeedAndPublicKey: a new Ed25519 version seals seed ‖ A
// (so that loading it costs no scalar multiplication), A being the
// version's public key; and RFC 8032 §7.1 keys sealed in that form sign
// exactly the RFC's signatures, as keys sealed as a bare seed do
// (TestRFC8032ThroughKeystore).
func TestEd25519SealsSeedAndPublicKey(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	kek := newKEK(t)
	ks := openKS(t, st, kek)
	sealer, _ := seal.NewAESGCM(kek)

	k := create(t, ks, "")
	sealed, ok := storedSealed(t, st, k.Name, 1)
	if !ok {
		t.Fatal("no sealed seed in the record")
	}
	plain, err := sealer.Open(seal.Binding{Name: k.Name, Version: 1, Alg: "ed25519"}, sealed)
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 64 || !bytes.Equal(plain[32:], k.Versions[0].PublicKey) {
		t.Fatalf("sealed %d bytes; want seed ‖ public key (64)", len(plain))
	}

	for i, v := range testvectors.RFC8032 {
		seed, _ := hex.DecodeString(v.Seed)
		pub, _ := hex.DecodeString(v.Pub)
		msg, _ := hex.DecodeString(v.Msg)
		want, _ := hex.DecodeString(v.Sig)
		name := fmt.Sprintf("rfc/form/ed25519/0190b8a4-4f7c-7b7e-8a1d-00000000000%d", i)
		k := &Key{Name: name, Tenant: "rfc", Purpose: "form", Alg: "ed25519", UUID: name[len(name)-36:],
			Current: 1, MinVerify: 1, Versions: []Version{{Number: 1, State: Enabled, PublicKey: pub}}}
		sealed, err := sealer.Seal(seal.Binding{Name: name, Version: 1, Alg: "ed25519"}, append(seed, pub...))
		if err != nil {
			t.Fatal(err)
		}
		k.sealed = [][]byte{sealed}
		if _, err := st.Apply(ctx,
			storage.Mutation{Key: keyPath(name), Value: mustEncode(t, k), Expect: storage.MustNotExist}); err != nil {
			t.Fatal(err)
		}
		if s := sign(t, ks, Ref{Name: name}, msg); !bytes.Equal(s.Parts[0].Sig, want) {
			t.Errorf("%s: signature\n got %x\nwant %x", v.Name, s.Parts[0].Sig, want)
		}
	}

	// A sealed plaintext of neither length does not load.
	name := "rfc/form/ed25519/0190b8a4-4f7c-7b7e-8a1d-0000000000ff"
	bad := &Key{Name: name, Tenant: "rfc", Purpose: "form", Alg: "ed25519", UUID: name[len(name)-36:],
		Current: 1, MinVerify: 1, Versions: []Version{{Number: 1, State: Enabled, PublicKey: make([]byte, 32)}}}
	sealed, _ = sealer.Seal(seal.Binding{Name: name, Version: 1, Alg: "ed25519"}, make([]byte, 48))
	bad.sealed = [][]byte{sealed}
	if _, err := st.Apply(ctx,
		storage.Mutation{Key: keyPath(name), Value: mustEncode(t, bad), Expect: storage.MustNotExist}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Sign(ctx, Ref{Name: name}, []byte("m"), Options{}); err == nil {
		t.Fatal("a 48-byte sealed ed25519 secret signed")
	}
}

// mustEncode is k's version 2 record.
func mustEncode(t testing.TB, k *Key) []byte {
	t.Helper()
	b, err := k.encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// storedSealed is the sealed seed of version n in name's stored record.
func storedSealed(t testing.TB, st storage.Store, name string, n uint32) ([]byte, bool) {
	t.Helper()
	it, err := st.Get(context.Background(), keyPath(name))
	if err != nil {
		t.Fatal(err)
	}
	k, err := decodeKey(it.Value, it.Revision)
	if err != nil {
		t.Fatal(err)
	}
	s, inRecord := k.sealedSeed(n)
	if !inRecord {
		t.Fatalf("%s is a version 1 record", name)
	}
	return s, len(s) > 0
}

// replaceSealed writes name's record again with sealed as version n's
// sealed seed.
func replaceSealed(t testing.TB, st storage.Store, name string, n uint32, sealed []byte) {
	t.Helper()
	ctx := context.Background()
	it, err := st.Get(ctx, keyPath(name))
	if err != nil {
		t.Fatal(err)
	}
	k, err := decodeKey(it.Value, it.Revision)
	if err != nil {
		t.Fatal(err)
	}
	k.sealed[n-1] = sealed
	if _, err := st.Apply(ctx, storage.Mutation{Key: keyPath(name), Value: mustEncode(t, k), Expect: it.Revision}); err != nil {
		t.Fatal(err)
	}
}
