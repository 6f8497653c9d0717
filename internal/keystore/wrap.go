package keystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/ron-kms/ron-kms/internal/alg"
	"github.com/ron-kms/ron-kms/internal/wrap"
)

// Wrapped is the result of Wrap: the wrapping key version and the envelope.
type Wrapped struct {
	KID      string
	Alg      string
	Envelope []byte
}

// Wrap seals plaintext (a data key) to the current version of a KEM key with
// HPKE; aad is bound as AEAD associated data. Only the current version wraps
// (an explicit older version is ErrNotCurrent). Wrapping needs only the
// public key: no private material is unsealed. While the store is
// unavailable it fails at once with ErrUnavailable (fail closed: the cache
// might name a version that is no longer current).
func (ks *Keystore) Wrap(ctx context.Context, ref Ref, plaintext, aad []byte) (Wrapped, error) {
	if err := ks.requireHealthy("wrap"); err != nil {
		return Wrapped{}, err
	}
	e, err := ks.entry(ctx, ref.Name)
	if err != nil {
		return Wrapped{}, err
	}
	k := e.key
	a, _ := alg.Lookup(k.Alg)
	if err := allows(a, alg.OpWrap, "wrap"); err != nil {
		return Wrapped{}, err
	}
	if err := currentOnly(k, ref, "wrap"); err != nil {
		return Wrapped{}, err
	}
	pub, err := e.publicKey(k.Current)
	if err != nil {
		return Wrapped{}, err
	}
	env, err := wrap.Wrap(pub.(wrap.PublicKey), k.Name, k.Current, aad, plaintext)
	if err != nil {
		return Wrapped{}, fmt.Errorf("keystore: wrapping with %s: %w", k.KID(k.Current), err)
	}
	return Wrapped{KID: k.KID(k.Current), Alg: k.Alg, Envelope: env}, nil
}

// Unwrapped is the result of Unwrap.
type Unwrapped struct {
	KID       string
	Alg       string
	Plaintext []byte // secret: the caller clears it when done
}

// Unwrap opens an envelope made by Wrap. The envelope names its key and
// version, which is looked up directly; any enabled version at or above the
// key's min_verify_version unwraps, after any number of rotations (others
// are ErrVersionUnusable, see lifecycle.go). A malformed envelope
// is ErrInvalidArgument; one that does not open (tampered, wrong aad, made
// for another key) is ErrInvalidArgument too, never wrong plaintext. While
// the store is unavailable it fails at once with ErrUnavailable (fail
// closed: the version may have been disabled since the cache was current).
func (ks *Keystore) Unwrap(ctx context.Context, envelope, aad []byte) (Unwrapped, error) {
	if err := ks.requireHealthy("unwrap"); err != nil {
		return Unwrapped{}, err
	}
	env, err := wrap.Parse(envelope)
	if err != nil {
		return Unwrapped{}, fmt.Errorf("%w: not a ron-kms envelope: %v", ErrInvalidArgument, err)
	}
	e, err := ks.entry(ctx, env.KeyName)
	if err != nil {
		return Unwrapped{}, err
	}
	k := e.key
	a, _ := alg.Lookup(k.Alg)
	if err := allows(a, alg.OpUnwrap, "unwrap"); err != nil {
		return Unwrapped{}, err
	}
	if err := usable(k, env.Version, "unwrap"); err != nil {
		return Unwrapped{}, err
	}
	priv, err := ks.privateKey(ctx, e, env.Version)
	if err != nil {
		return Unwrapped{}, err
	}
	pt, err := wrap.Unwrap(priv.(kemKey).PrivateKey, env, aad)
	if err != nil {
		if errors.Is(err, wrap.ErrOpen) || errors.Is(err, wrap.ErrFormat) {
			return Unwrapped{}, fmt.Errorf("%w: the envelope does not open with %s (tampered, wrong aad, or not made by this key)", ErrInvalidArgument, k.KID(env.Version))
		}
		return Unwrapped{}, err
	}
	return Unwrapped{KID: k.KID(env.Version), Alg: k.Alg, Plaintext: pt}, nil
}

// EnvelopeKey returns the name of the key an envelope says it was wrapped
// with, without opening it, so that callers can check capabilities first.
func (ks *Keystore) EnvelopeKey(envelope []byte) (string, error) {
	env, err := wrap.Parse(envelope)
	if err != nil {
		return "", fmt.Errorf("%w: not a ron-kms envelope: %v", ErrInvalidArgument, err)
	}
	return env.KeyName, nil
}
