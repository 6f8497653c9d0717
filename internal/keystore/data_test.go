package keystore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage/memstore"
	"github.com/ron-kms/ron-kms/internal/wrap"
)

func createAlg(t testing.TB, ks *Keystore, alg string) *Key {
	t.Helper()
	k, err := ks.Create(context.Background(), CreateParams{Tenant: "acme", Purpose: "data", Alg: alg})
	if err != nil {
		t.Fatalf("create %s: %v", alg, err)
	}
	return k
}

// TestWrapAcrossRotations: every KEM wraps and unwraps, and envelopes of
// every version keep opening after three rotations.
func TestWrapAcrossRotations(t *testing.T) {
	ctx := context.Background()
	for _, alg := range []string{"x25519", "ml-kem-768", "mlkem768-x25519"} {
		t.Run(alg, func(t *testing.T) {
			ks := newMemKS(t)
			k := createAlg(t, ks, alg)
			type sealed struct {
				env, dk []byte
				kid     string
			}
			var all []sealed
			for v := 1; v <= 4; v++ {
				dk := []byte(fmt.Sprintf("data key %d of %s", v, alg))
				w, err := ks.Wrap(ctx, Ref{Name: k.Name}, dk, []byte("aad"))
				if err != nil {
					t.Fatal(err)
				}
				if w.KID != k.KID(uint32(v)) || w.Alg != alg {
					t.Fatalf("wrapped with %s (%s), want %s", w.KID, w.Alg, k.KID(uint32(v)))
				}
				all = append(all, sealed{w.Envelope, dk, w.KID})
				if v < 4 {
					if _, err := ks.Rotate(ctx, k.Name, ""); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, s := range all {
				u, err := ks.Unwrap(ctx, s.env, []byte("aad"))
				if err != nil || !bytes.Equal(u.Plaintext, s.dk) || u.KID != s.kid {
					t.Fatalf("unwrap %s: %q %s %v", s.kid, u.Plaintext, u.KID, err)
				}
				if _, err := ks.Unwrap(ctx, s.env, []byte("other aad")); !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("wrong aad: %v", err)
				}
			}
			// Only the current version wraps.
			if _, err := ks.Wrap(ctx, Ref{Name: k.Name, Version: 2}, []byte("k"), nil); !errors.Is(err, ErrNotCurrent) {
				t.Fatalf("wrap with v2: %v", err)
			}
			// A signing operation on a KEM key is refused.
			if _, err := ks.Sign(ctx, Ref{Name: k.Name}, []byte("m"), Options{}); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("sign with a KEM key: %v", err)
			}
		})
	}
}

// TestEnvelopeTamper flips every byte of one envelope: each one fails with a
// clear error and never yields plaintext.
func TestEnvelopeTamper(t *testing.T) {
	ctx := context.Background()
	ks := newMemKS(t)
	k := createAlg(t, ks, "mlkem768-x25519")
	other := createAlg(t, ks, "mlkem768-x25519")
	w, err := ks.Wrap(ctx, Ref{Name: k.Name}, []byte("0123456789abcdef0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range w.Envelope {
		bad := bytes.Clone(w.Envelope)
		bad[i] ^= 0x80
		u, err := ks.Unwrap(ctx, bad, nil)
		if err == nil {
			t.Fatalf("byte %d flipped: unwrapped to %x", i, u.Plaintext)
		}
		if !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrNotFound) {
			t.Fatalf("byte %d flipped: unexpected error %v", i, err)
		}
	}
	// The same envelope relabelled to another key of the same algorithm.
	env, _ := wrap.Parse(w.Envelope)
	env.KeyName = other.Name
	if _, err := ks.Unwrap(ctx, env.Marshal(), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("envelope relabelled to another key: %v", err)
	}
}

func TestEncryptAcrossRotations(t *testing.T) {
	ctx := context.Background()
	ks := newMemKS(t)
	k := createAlg(t, ks, "aes-256-gcm")
	var cts [][]byte
	for v := 1; v <= 4; v++ {
		e, err := ks.Encrypt(ctx, Ref{Name: k.Name}, []byte(fmt.Sprint("secret ", v)), []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		if e.KID != k.KID(uint32(v)) {
			t.Fatalf("encrypted with %s", e.KID)
		}
		cts = append(cts, e.Ciphertext)
		if v < 4 {
			ks.Rotate(ctx, k.Name, "")
		}
	}
	for i, ct := range cts {
		d, err := ks.Decrypt(ctx, ct, []byte("aad"))
		if err != nil || string(d.Plaintext) != fmt.Sprint("secret ", i+1) || d.KID != k.KID(uint32(i+1)) {
			t.Fatalf("decrypt v%d: %q %s %v", i+1, d.Plaintext, d.KID, err)
		}
		for j := range ct {
			bad := bytes.Clone(ct)
			bad[j] ^= 0x01
			if d, err := ks.Decrypt(ctx, bad, []byte("aad")); err == nil {
				t.Fatalf("v%d byte %d flipped: decrypted to %q", i+1, j, d.Plaintext)
			}
		}
	}
	if _, err := ks.Decrypt(ctx, cts[0], nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("missing aad: %v", err)
	}
	if _, err := ks.Encrypt(ctx, Ref{Name: k.Name, Version: 1}, []byte("x"), nil); !errors.Is(err, ErrNotCurrent) {
		t.Fatalf("encrypt with v1: %v", err)
	}
	sk := createAlg(t, ks, "ed25519")
	if _, err := ks.Encrypt(ctx, Ref{Name: sk.Name}, []byte("x"), nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("encrypt with a signing key: %v", err)
	}
}

// TestEncryptionLimit: a version refuses to encrypt past its limit (2^32 in
// production, small here), across keystores sharing the store, and a
// rotation lifts it.
func TestEncryptionLimit(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	kek := newKEK(t)
	a, b := openKS(t, st, kek), openKS(t, st, kek)
	for _, ks := range []*Keystore{a, b} {
		ks.counters.block, ks.counters.limit = 3, 10
	}
	k := createAlg(t, a, "aes-256-gcm")
	n := 0
	for i := 0; i < 20; i++ {
		ks := a
		if i%2 == 1 {
			ks = b
		}
		_, err := ks.Encrypt(ctx, Ref{Name: k.Name}, []byte("x"), nil)
		if errors.Is(err, ErrExhausted) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n > 10 {
		t.Fatalf("%d encryptions under a limit of 10", n)
	}
	if n < 10-3 {
		t.Fatalf("only %d encryptions; at most one block per keystore may be lost", n)
	}
	if _, err := a.Encrypt(ctx, Ref{Name: k.Name}, []byte("x"), nil); !errors.Is(err, ErrExhausted) {
		t.Fatalf("past the limit: %v", err)
	}
	if _, err := a.Rotate(ctx, k.Name, ""); err != nil {
		t.Fatal(err)
	}
	waitCurrent(t, a, k.Name, 2)
	if _, err := a.Encrypt(ctx, Ref{Name: k.Name}, []byte("x"), nil); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
}

// waitCurrent waits until ks sees version n as current.
func waitCurrent(t *testing.T, ks *Keystore, name string, n uint32) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if k, err := ks.Get(context.Background(), name); err == nil && k.Current == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never reached version %d", name, n)
}
