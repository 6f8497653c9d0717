package keystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/ron-kms/ron-kms/internal/sig"
)

// Ref names a key version; Version zero means the current version.
type Ref struct {
	Name    string
	Version uint32
}

// Part is one component signature. Ed25519 and ML-DSA signatures have one
// part; a composite signature has one per component.
type Part struct {
	Alg string
	Sig []byte
}

// Signature is the result of Sign: the version that signed and its parts.
type Signature struct {
	KID     string
	Version uint32
	Parts   []Part
}

// SignOptions modify signing and verification.
type SignOptions struct {
	// Context is the FIPS 204 signing context (at most 255 bytes); not
	// allowed for Ed25519.
	Context []byte
}

// Sign signs message with the current version of ref.Name. If ref names an
// explicit version other than the current one, it returns ErrNotCurrent.
// message is not retained.
func (ks *Keystore) Sign(ctx context.Context, ref Ref, message []byte, opts SignOptions) (Signature, error) {
	e, err := ks.entry(ctx, ref.Name)
	if err != nil {
		return Signature{}, err
	}
	k := e.key
	if ref.Version != 0 && ref.Version != k.Current {
		if _, ok := k.Version(ref.Version); !ok {
			return Signature{}, fmt.Errorf("%w: %s has no version %d", ErrNotFound, k.Name, ref.Version)
		}
		return Signature{}, fmt.Errorf("%w: %s is not the current version %s; sign with the key name or the current kid", ErrNotCurrent, k.KID(ref.Version), k.KID(k.Current))
	}
	priv, err := ks.currentSigner(ctx, e)
	if err != nil {
		return Signature{}, err
	}
	s, err := priv.Sign(message, &sig.Options{Context: opts.Context})
	if err != nil {
		return Signature{}, sigErr(err)
	}
	return Signature{KID: k.KID(k.Current), Version: k.Current, Parts: []Part{{Alg: k.Alg, Sig: s}}}, nil
}

// SignItem is one item of SignBatch.
type SignItem struct {
	Ref     Ref
	Message []byte
	Opts    SignOptions
}

// SignResult is the outcome of one SignBatch item: Signature or Err.
type SignResult struct {
	Signature Signature
	Err       error
}

// SignBatch signs every item; a failing item never affects the others.
func (ks *Keystore) SignBatch(ctx context.Context, items []SignItem) []SignResult {
	out := make([]SignResult, len(items))
	for i, it := range items {
		out[i].Signature, out[i].Err = ks.Sign(ctx, it.Ref, it.Message, it.Opts)
	}
	return out
}

// VerifyResult reports which component algorithms were checked.
type VerifyResult struct {
	Checked []string
}

// Verify checks parts against version ref.Version of the key (the current
// version when zero). A signature that does not verify is ErrInvalidSignature;
// other errors say why no check could be made.
func (ks *Keystore) Verify(ctx context.Context, ref Ref, message []byte, parts []Part, opts SignOptions) (VerifyResult, error) {
	pub, part, err := ks.verifier(ctx, ref, parts)
	if err != nil {
		return VerifyResult{}, err
	}
	res := VerifyResult{Checked: []string{part.Alg}}
	if err := pub.Verify(message, part.Sig, &sig.Options{Context: opts.Context}); err != nil {
		return res, sigErr(err)
	}
	return res, nil
}

// verifier resolves the public key of ref and picks the signature part for
// it.
func (ks *Keystore) verifier(ctx context.Context, ref Ref, parts []Part) (sig.PublicKey, Part, error) {
	e, err := ks.entry(ctx, ref.Name)
	if err != nil {
		return nil, Part{}, err
	}
	k := e.key
	n := ref.Version
	if n == 0 {
		n = k.Current
	}
	if len(parts) != 1 || parts[0].Alg != k.Alg {
		return nil, Part{}, fmt.Errorf("%w: a %s key takes exactly one signature with alg %q", ErrInvalidArgument, k.Alg, k.Alg)
	}
	pub, err := e.publicKey(n)
	if err != nil {
		return nil, Part{}, err
	}
	return pub, parts[0], nil
}

// VerifyItem is one item of VerifyBatch.
type VerifyItem struct {
	Ref     Ref
	Message []byte
	Parts   []Part
	Opts    SignOptions
}

// VerifyBatch checks every item and returns one error per item: nil for a
// valid signature, ErrInvalidSignature for a wrong one, or why it could not be
// checked. Ed25519 items are checked together with one batch equation; only
// when it fails are the bad items located (by bisection).
func (ks *Keystore) VerifyBatch(ctx context.Context, items []VerifyItem) []error {
	errs := make([]error, len(items))
	batch := make([]sig.BatchItem, 0, len(items))
	slot := make([]int, 0, len(items))
	for i, it := range items {
		if len(it.Opts.Context) > 0 {
			// Contexts are checked singly so that the scheme applies its rules.
			_, errs[i] = ks.Verify(ctx, it.Ref, it.Message, it.Parts, it.Opts)
			continue
		}
		pub, part, err := ks.verifier(ctx, it.Ref, it.Parts)
		if err != nil {
			errs[i] = err
			continue
		}
		batch = append(batch, sig.BatchItem{Key: pub, Message: it.Message, Signature: part.Sig})
		slot = append(slot, i)
	}
	if len(batch) == 0 {
		return errs
	}
	_, berrs := sig.VerifyBatch(batch)
	for j, err := range berrs {
		if err != nil {
			errs[slot[j]] = sigErr(err)
		}
	}
	return errs
}

// sigErr maps the sig package's errors onto the keystore's.
func sigErr(err error) error {
	switch {
	case errors.Is(err, sig.ErrInvalidSignature):
		return fmt.Errorf("%w", ErrInvalidSignature)
	case errors.Is(err, sig.ErrUnsupported):
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
}
