package keystore

import (
	"context"
	"errors"
	"testing"

	"github.com/ron-kms/ron-kms/internal/deployment"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

// TestKEKCheckValue: the value a new deployment writes with its marker is
// the one a Keystore checks on open, at the key the deployment package
// names: a store bound so opens with the same KEK and refuses another,
// and OpenKEKCheck alone tells the two apart too.
func TestKEKCheckValue(t *testing.T) {
	kek := newKEK(t)
	sealer, err := seal.NewAESGCM(kek)
	if err != nil {
		t.Fatal(err)
	}
	check, err := SealKEKCheck(sealer)
	if err != nil {
		t.Fatal(err)
	}
	st := memstore.New()
	if _, err := st.Apply(context.Background(), storage.Mutation{Key: deployment.KEKCheckKey, Value: check, Expect: storage.MustNotExist}); err != nil {
		t.Fatal(err)
	}
	other, err := seal.NewAESGCM(newKEK(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := OpenKEKCheck(sealer, check); err != nil {
		t.Errorf("OpenKEKCheck with the sealing key: %v", err)
	}
	if err := OpenKEKCheck(other, check); !errors.Is(err, ErrWrongKEK) {
		t.Errorf("OpenKEKCheck with another key = %v, want ErrWrongKEK", err)
	}
	if _, err := Open(context.Background(), Config{Store: st, Sealer: other}); !errors.Is(err, ErrWrongKEK) {
		t.Errorf("Open with another key = %v, want ErrWrongKEK", err)
	}
	openKS(t, st, kek) // fails the test unless the same key opens it
	it, err := st.Get(context.Background(), deployment.KEKCheckKey)
	if err != nil || string(it.Value) != string(check) {
		t.Errorf("the check value was rewritten by Open: %v", err)
	}
}
