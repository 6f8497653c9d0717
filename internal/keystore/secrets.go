package keystore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
)

// ServerSecret returns the server secret called name (such as the token root
// key), creating it with size random bytes on first use. It is stored sealed
// like any key. The caller owns the returned slice and should clear it when
// done.
func (ks *Keystore) ServerSecret(ctx context.Context, name string, size int) ([]byte, error) {
	b := serverSecretBinding(name)
	path := "meta/" + name
	for attempt := 0; attempt < 2; attempt++ {
		it, err := ks.store.Get(ctx, path)
		if err == nil {
			s, err := ks.sealer.Open(b, it.Value)
			if err != nil {
				return nil, fmt.Errorf("%w: server secret %s: %v", ErrWrongKEK, name, err)
			}
			if len(s) != size {
				return nil, fmt.Errorf("keystore: server secret %s has %d bytes, want %d", name, len(s), size)
			}
			return s, nil
		}
		if !errors.Is(err, storage.ErrNotFound) {
			return nil, storeErr(err)
		}
		s := make([]byte, size)
		rand.Read(s)
		sealed, err := ks.sealer.Seal(b, s)
		if err != nil {
			clear(s)
			return nil, fmt.Errorf("keystore: sealing server secret: %w", err)
		}
		_, err = ks.store.Apply(ctx, storage.Mutation{Key: path, Value: sealed, Expect: storage.MustNotExist})
		if err == nil {
			return s, nil
		}
		clear(s)
		if !errors.Is(err, storage.ErrConflict) {
			return nil, storeErr(err)
		}
		// Another node created it first: read theirs.
	}
	return nil, fmt.Errorf("%w: server secret %s keeps changing", ErrUnavailable, name)
}

// kekCheckSecret is the server secret that binds a store to its
// key-encryption key; it is stored at meta/kek-check.
const kekCheckSecret = "kek-check"

// SealKEKCheck returns a new KEK check value sealed under sealer: what a
// Keystore writes under meta/kek-check (deployment.KEKCheckKey) on the
// first open of an empty store.
// A new deployment writes it with its marker, in one transaction, so that
// nodes starting at once with different keys cannot both bind the store.
func SealKEKCheck(sealer seal.Sealer) ([]byte, error) {
	s := make([]byte, 32)
	rand.Read(s)
	defer clear(s)
	sealed, err := sealer.Seal(serverSecretBinding(kekCheckSecret), s)
	if err != nil {
		return nil, fmt.Errorf("keystore: sealing the KEK check value: %w", err)
	}
	return sealed, nil
}

// OpenKEKCheck reports whether sealer opens sealed, a value stored under
// meta/kek-check, without reading or writing any store: nil when it does, an
// error wrapping ErrWrongKEK when it does not.
func OpenKEKCheck(sealer seal.Sealer, sealed []byte) error {
	s, err := sealer.Open(serverSecretBinding(kekCheckSecret), sealed)
	clear(s)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrWrongKEK, err)
	}
	return nil
}

func serverSecretBinding(name string) seal.Binding {
	return seal.Binding{Name: "server/" + name, Version: 1, Alg: "secret"}
}

// checkKEK binds the store to its key-encryption key: the first open seals a
// check value; later opens must be able to open it.
func (ks *Keystore) checkKEK(ctx context.Context) error {
	s, err := ks.ServerSecret(ctx, kekCheckSecret, 32)
	if err != nil {
		return err
	}
	clear(s)
	return nil
}
