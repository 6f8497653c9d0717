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
	it, err := st.Get(ctx, sealedPath(k.Name, 1))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := sealer.Open(seal.Binding{Name: k.Name, Version: 1, Alg: "ed25519"}, it.Value)
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
		if _, err := st.Apply(ctx,
			storage.Mutation{Key: keyPath(name), Value: k.encode(), Expect: storage.MustNotExist},
			storage.Mutation{Key: sealedPath(name, 1), Value: sealed, Expect: storage.MustNotExist}); err != nil {
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
	sealed, _ := sealer.Seal(seal.Binding{Name: name, Version: 1, Alg: "ed25519"}, make([]byte, 48))
	if _, err := st.Apply(ctx,
		storage.Mutation{Key: keyPath(name), Value: bad.encode(), Expect: storage.MustNotExist},
		storage.Mutation{Key: sealedPath(name, 1), Value: sealed, Expect: storage.MustNotExist}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Sign(ctx, Ref{Name: name}, []byte("m"), Options{}); err == nil {
		t.Fatal("a 48-byte sealed ed25519 secret signed")
	}
}
