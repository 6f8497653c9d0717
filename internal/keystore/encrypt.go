package keystore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/ron-kms/ron-kms/internal/alg"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/symm"
)

// ErrExhausted: a key version has made as many encryptions as NIST SP
// 800-38D allows with random nonces (2^32); rotate the key.
var ErrExhausted = errors.New("keystore: key version has reached its encryption limit")

// counterBlock is how many encryptions are reserved in the store at a time.
// A crash loses at most one block of unused reservations, which only makes
// the count conservative.
const counterBlock = 1 << 16

// counters hands out encryption counts per key version, reserving them in
// blocks so that the store sees one write per counterBlock encryptions.
type counters struct {
	mu    sync.Mutex
	m     map[string]*counter // by kid
	block uint64              // counterBlock; smaller in tests
	limit uint64              // symm.MaxEncryptions; smaller in tests
}

type counter struct {
	used, reserved uint64
}

func counterPath(kid string) string { return "c/" + kid }

// take reserves one encryption for kid, or fails with ErrExhausted.
func (ks *Keystore) takeEncryption(ctx context.Context, kid string) error {
	c := &ks.counters
	c.mu.Lock()
	defer c.mu.Unlock()
	ct, ok := c.m[kid]
	if !ok {
		ct = &counter{}
		c.m[kid] = ct
	}
	if ct.used < ct.reserved {
		ct.used++
		return nil
	}
	// Reserve the next block after whatever every node has reserved so
	// far; a node that reserved meanwhile makes us re-read and go after it.
	for attempt := 1; ; attempt++ {
		it, err := ks.store.Get(ctx, counterPath(kid))
		var stored uint64
		expect := storage.MustNotExist
		switch {
		case err == nil:
			if len(it.Value) != 8 {
				return fmt.Errorf("keystore: corrupt encryption counter for %s", kid)
			}
			stored, expect = binary.BigEndian.Uint64(it.Value), it.Revision
		case !errors.Is(err, storage.ErrNotFound):
			return storeErr(err)
		}
		if stored >= c.limit {
			return fmt.Errorf("%w: %s has made %d encryptions; rotate the key and encrypt with the new version", ErrExhausted, kid, c.limit)
		}
		next := min(stored+c.block, c.limit)
		_, err = ks.store.Apply(ctx, storage.Mutation{Key: counterPath(kid), Value: binary.BigEndian.AppendUint64(nil, next), Expect: expect})
		if err == nil {
			ct.used, ct.reserved = stored+1, next
			return nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return storeErr(err)
		}
		if attempt == maxCASAttempts {
			return fmt.Errorf("%w: encryption counter of %s moved concurrently %d times in a row; retry", ErrConflict, kid, maxCASAttempts)
		}
		if !casBackoff(ctx, attempt+1) {
			return ctx.Err()
		}
	}
}

// Encrypted is the result of Encrypt.
type Encrypted struct {
	KID        string
	Ciphertext []byte
}

// Encrypt encrypts plaintext with the current version of an aes-256-gcm key
// (random 96-bit nonce); aad is authenticated. The ciphertext names the key
// version. Each version encrypts at most 2^32 times (ErrExhausted). While
// the store is unavailable it fails at once with ErrUnavailable.
func (ks *Keystore) Encrypt(ctx context.Context, ref Ref, plaintext, aad []byte) (Encrypted, error) {
	if err := ks.requireHealthy("encrypt"); err != nil {
		return Encrypted{}, err
	}
	e, err := ks.entry(ctx, ref.Name)
	if err != nil {
		return Encrypted{}, err
	}
	k := e.key
	a, _ := alg.Lookup(k.Alg)
	if err := allows(a, alg.OpEncrypt, "encrypt"); err != nil {
		return Encrypted{}, err
	}
	if err := currentOnly(k, ref, "encrypt"); err != nil {
		return Encrypted{}, err
	}
	priv, err := ks.privateKey(ctx, e, k.Current)
	if err != nil {
		return Encrypted{}, err
	}
	kid := k.KID(k.Current)
	if err := ks.takeEncryption(ctx, kid); err != nil {
		return Encrypted{}, err
	}
	ct, err := priv.(symKey).Encrypt(k.Name, k.Current, plaintext, aad)
	if err != nil {
		return Encrypted{}, err
	}
	return Encrypted{KID: kid, Ciphertext: ct}, nil
}

// Decrypted is the result of Decrypt.
type Decrypted struct {
	KID       string
	Plaintext []byte
}

// Decrypt opens a ciphertext made by Encrypt with the version it names. A
// malformed or tampered ciphertext, or a wrong aad, is ErrInvalidArgument.
// A version that is not enabled, or is below the key's min_verify_version,
// is ErrVersionUnusable. While the store is unavailable it fails at once
// with ErrUnavailable.
func (ks *Keystore) Decrypt(ctx context.Context, ciphertext, aad []byte) (Decrypted, error) {
	if err := ks.requireHealthy("decrypt"); err != nil {
		return Decrypted{}, err
	}
	c, err := symm.Parse(ciphertext)
	if err != nil {
		return Decrypted{}, fmt.Errorf("%w: not a ron-kms ciphertext: %v", ErrInvalidArgument, err)
	}
	e, err := ks.entry(ctx, c.Name)
	if err != nil {
		return Decrypted{}, err
	}
	k := e.key
	a, _ := alg.Lookup(k.Alg)
	if err := allows(a, alg.OpDecrypt, "decrypt"); err != nil {
		return Decrypted{}, err
	}
	if err := usable(k, c.Version, "decrypt"); err != nil {
		return Decrypted{}, err
	}
	priv, err := ks.privateKey(ctx, e, c.Version)
	if err != nil {
		return Decrypted{}, err
	}
	pt, err := priv.(symKey).Decrypt(c, aad)
	if err != nil {
		return Decrypted{}, fmt.Errorf("%w: the ciphertext does not open with %s (tampered or wrong aad)", ErrInvalidArgument, k.KID(c.Version))
	}
	return Decrypted{KID: k.KID(c.Version), Plaintext: pt}, nil
}

// CiphertextKey returns the name of the key a ciphertext says it was made
// with, without opening it, so that callers can check capabilities first.
func (ks *Keystore) CiphertextKey(ciphertext []byte) (string, error) {
	c, err := symm.Parse(ciphertext)
	if err != nil {
		return "", fmt.Errorf("%w: not a ron-kms ciphertext: %v", ErrInvalidArgument, err)
	}
	return c.Name, nil
}
