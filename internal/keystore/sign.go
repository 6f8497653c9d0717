package keystore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ron-kms/ron-kms/internal/alg"
	"github.com/ron-kms/ron-kms/internal/sig"
)

// Ref names a key version; Version zero means the current version.
type Ref struct {
	Name    string
	Version uint32
}

// Part is one component signature. Single-algorithm signatures have one
// part; a composite signature has one per component, post-quantum first.
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

// Mode is a verification policy for composite keys (SPEC §3.1), ordered
// from loosest to strictest.
type Mode uint8

// Verification modes. ModeAnd is the default.
const (
	ModeOr     Mode = iota + 1 // at least one component valid
	ModeAnd                    // every component present and valid
	ModePQOnly                 // every post-quantum component present and valid; others ignored
)

var modeNames = map[Mode]string{ModeOr: "or", ModeAnd: "and", ModePQOnly: "pq_only"}

// String returns the contract's name of the mode.
func (m Mode) String() string { return modeNames[m] }

// ParseMode parses "or", "and" or "pq_only".
func ParseMode(s string) (Mode, error) {
	for m, n := range modeNames {
		if n == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: verify mode must be and, or or pq_only", ErrInvalidArgument)
}

// Options modify signing and verification.
type Options struct {
	// Context is the FIPS 204 / composite signing context (at most 255
	// bytes); Ed25519 keys refuse one.
	Context []byte
	// Mode is the verification policy; ModeAnd when zero.
	Mode Mode
}

// Sign signs message with the current version of ref.Name. If ref names an
// explicit version other than the current one, it returns ErrNotCurrent.
// message is not retained. With the key cached and the store healthy it
// makes no store call; while the store is unavailable it fails at once with
// ErrUnavailable (fail closed: the cache might name a version that is no
// longer current).
func (ks *Keystore) Sign(ctx context.Context, ref Ref, message []byte, opts Options) (Signature, error) {
	if err := ks.requireHealthy("sign"); err != nil {
		return Signature{}, err
	}
	e, err := ks.entry(ctx, ref.Name)
	if err != nil {
		return Signature{}, err
	}
	k := e.key
	if err := currentOnly(k, ref, "sign"); err != nil {
		return Signature{}, err
	}
	if err := usable(k, k.Current, "sign"); err != nil {
		return Signature{}, err
	}
	a, _ := alg.Lookup(k.Alg)
	if err := allows(a, alg.OpSign, "sign"); err != nil {
		return Signature{}, err
	}
	if err := refuseVerifyOnly(k, "sign"); err != nil {
		return Signature{}, err
	}
	priv, err := ks.privateKey(ctx, e, k.Current)
	if err != nil {
		return Signature{}, err
	}
	signer := priv.(sigKey)
	so := &sig.Options{Context: opts.Context}
	res := Signature{KID: k.KID(k.Current), Version: k.Current}
	if cs, ok := signer.PrivateKey.(sig.ComponentSigner); ok {
		comps, err := cs.SignComponents(message, so)
		if err != nil {
			return Signature{}, sigErr(err)
		}
		for _, c := range comps {
			res.Parts = append(res.Parts, Part{Alg: c.Alg, Sig: c.Sig})
		}
		return res, nil
	}
	s, err := signer.Sign(message, so)
	if err != nil {
		return Signature{}, sigErr(err)
	}
	res.Parts = []Part{{Alg: k.Alg, Sig: s}}
	return res, nil
}

// currentOnly refuses an explicit version other than the current one.
func currentOnly(k *Key, ref Ref, what string) error {
	if ref.Version == 0 || ref.Version == k.Current {
		return nil
	}
	if _, ok := k.Version(ref.Version); !ok {
		return fmt.Errorf("%w: %s has no version %d", ErrNotFound, k.Name, ref.Version)
	}
	return fmt.Errorf("%w: %s is not the current version %s; only the current version may %s", ErrNotCurrent, k.KID(ref.Version), k.KID(k.Current), what)
}

// SignItem is one item of SignBatch.
type SignItem struct {
	Ref     Ref
	Message []byte
	Opts    Options
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

// VerifyResult reports which component algorithms were checked and, for a
// composite key, the mode that held.
type VerifyResult struct {
	Checked       []string
	SatisfiedMode string
	// Staleness says whether the key came from the cache while the store
	// was unavailable, and how old it was (set with every outcome that
	// looked the key up, including ErrInvalidSignature).
	Staleness Staleness
}

// Verify checks parts against version ref.Version of the key (the current
// version when zero) under opts.Mode. A signature that does not satisfy the
// mode is ErrInvalidSignature; other errors say why no check could be made.
// A version that is not enabled, or is below the key's min_verify_version,
// verifies nothing: ErrVersionUnusable (a *VersionUnusableError). While the
// store is unavailable, Verify answers from the cache (fail open) until the
// entry passes the hard TTL, and the result's Staleness says how old the
// entry is; past it, or for a key not cached, ErrUnavailable.
func (ks *Keystore) Verify(ctx context.Context, ref Ref, message []byte, parts []Part, opts Options) (VerifyResult, error) {
	pub, k, st, err := ks.verifier(ctx, ref)
	if err != nil {
		return VerifyResult{Staleness: st}, err
	}
	res, err := verifyWith(pub, k, message, parts, opts)
	res.Staleness = st
	return res, err
}

// verifyWith checks parts with the public key pub of k.
func verifyWith(pub sig.PublicKey, k *Key, message []byte, parts []Part, opts Options) (VerifyResult, error) {
	mode := opts.Mode
	if mode == 0 {
		mode = ModeAnd
	}
	so := &sig.Options{Context: opts.Context}
	if cv, ok := pub.(sig.ComponentVerifier); ok {
		return verifyComposite(cv, k, message, parts, mode, so)
	}
	a, _ := alg.Lookup(k.Alg)
	if mode == ModePQOnly && !a.PostQuantum {
		return VerifyResult{}, fmt.Errorf("%w: pq_only needs a post-quantum component; a %s key has none", ErrUnsupported, k.Alg)
	}
	if len(parts) != 1 || parts[0].Alg != k.Alg {
		return VerifyResult{}, fmt.Errorf("%w: a %s key takes exactly one signature with alg %q", ErrInvalidArgument, k.Alg, k.Alg)
	}
	res := VerifyResult{Checked: []string{k.Alg}}
	if err := pub.Verify(message, parts[0].Sig, so); err != nil {
		return res, sigErr(err)
	}
	return res, nil
}

// verifyComposite applies a mode to the component results of a composite
// key. Components the mode ignores are not checked.
func verifyComposite(cv sig.ComponentVerifier, k *Key, message []byte, parts []Part, mode Mode, so *sig.Options) (VerifyResult, error) {
	components := compositeComponents(k.Alg)
	var comps []sig.Component
	seen := map[string]bool{}
	for _, p := range parts {
		ca, ok := components[p.Alg]
		if !ok || seen[p.Alg] {
			return VerifyResult{}, fmt.Errorf("%w: a %s signature has one part per component (%s); got %q", ErrInvalidArgument, k.Alg, componentList(k.Alg), p.Alg)
		}
		seen[p.Alg] = true
		if mode == ModePQOnly && !ca.PostQuantum {
			continue
		}
		comps = append(comps, sig.Component{Alg: p.Alg, Sig: p.Sig})
	}
	results := cv.VerifyComponents(message, comps, so)
	var res VerifyResult
	valid, pqValid, pqTotal := 0, 0, 0
	for _, name := range componentOrder(k.Alg) {
		err, checked := results[name]
		if checked {
			res.Checked = append(res.Checked, name)
			if err != nil && !errors.Is(err, sig.ErrInvalidSignature) {
				return res, sigErr(err)
			}
		}
		ok := checked && err == nil
		if ok {
			valid++
		}
		if components[name].PostQuantum {
			pqTotal++
			if ok {
				pqValid++
			}
		}
	}
	var held bool
	switch mode {
	case ModeOr:
		held = valid > 0
	case ModeAnd:
		held = valid == len(components)
	case ModePQOnly:
		held = pqTotal > 0 && pqValid == pqTotal
	}
	if !held {
		return res, fmt.Errorf("%w: mode %s not satisfied", ErrInvalidSignature, mode)
	}
	res.SatisfiedMode = mode.String()
	return res, nil
}

// verifier resolves the public signature key of ref, from the cache with
// its staleness while the store is unavailable (readEntry). The staleness
// is returned with the errors that come after the key was found, too.
func (ks *Keystore) verifier(ctx context.Context, ref Ref) (sig.PublicKey, *Key, Staleness, error) {
	e, st, err := ks.readEntry(ctx, ref.Name)
	if err != nil {
		return nil, nil, Staleness{}, err
	}
	k := e.key
	a, _ := alg.Lookup(k.Alg)
	if err := allows(a, alg.OpVerify, "verify"); err != nil {
		return nil, nil, st, err
	}
	n := ref.Version
	if n == 0 {
		n = k.Current
	}
	if err := usable(k, n, "verify"); err != nil {
		return nil, nil, st, err
	}
	pub, err := e.publicKey(n)
	if err != nil {
		return nil, nil, st, err
	}
	return pub.(sig.PublicKey), k, st, nil
}

// VerifyItem is one item of VerifyBatch.
type VerifyItem struct {
	Ref     Ref
	Message []byte
	Parts   []Part
	Opts    Options
}

// VerifyBatch checks every item and returns one error per item: nil for a
// valid signature, ErrInvalidSignature for a wrong one, or why it could not be
// checked. Single-part items without a context are checked together, Ed25519
// ones with one batch equation whose failure is located by bisection; the
// others are checked one by one. Like Verify, it answers from the cache
// while the store is unavailable; the Staleness returned is the oldest of
// the items' (zero when every key was current).
func (ks *Keystore) VerifyBatch(ctx context.Context, items []VerifyItem) ([]error, Staleness) {
	errs := make([]error, len(items))
	batch := make([]sig.BatchItem, 0, len(items))
	slot := make([]int, 0, len(items))
	var stale Staleness
	for i, it := range items {
		pub, k, st, err := ks.verifier(ctx, it.Ref)
		stale = stale.older(st)
		if err != nil {
			errs[i] = err
			continue
		}
		_, composite := pub.(sig.ComponentVerifier)
		if composite || len(it.Opts.Context) > 0 || it.Opts.Mode == ModePQOnly || len(it.Parts) != 1 || it.Parts[0].Alg != k.Alg {
			// The single path applies the mode and argument rules.
			_, errs[i] = verifyWith(pub, k, it.Message, it.Parts, it.Opts)
			continue
		}
		batch = append(batch, sig.BatchItem{Key: pub, Message: it.Message, Signature: it.Parts[0].Sig})
		slot = append(slot, i)
	}
	if len(batch) == 0 {
		return errs, stale
	}
	_, berrs := sig.VerifyBatch(batch)
	for j, err := range berrs {
		if err != nil {
			errs[slot[j]] = sigErr(err)
		}
	}
	return errs, stale
}

// sigErr maps the sig package's errors onto the keystore's.
func sigErr(err error) error {
	switch {
	case errors.Is(err, ErrInvalidSignature):
		return err
	case errors.Is(err, sig.ErrInvalidSignature):
		return fmt.Errorf("%w", ErrInvalidSignature)
	case errors.Is(err, sig.ErrUnsupported):
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return fmt.Errorf("%w: %v", ErrInvalidArgument, err)
}

// compositeComponents returns a composite's component table entries by
// name.
func compositeComponents(name string) map[string]*alg.Alg {
	a, _ := alg.Lookup(name)
	m := make(map[string]*alg.Alg, len(a.Components))
	for _, c := range a.ComponentAlgs() {
		m[c.Name] = c
	}
	return m
}

func componentOrder(name string) []string {
	a, _ := alg.Lookup(name)
	return a.Components
}

func componentList(name string) string {
	return strings.Join(componentOrder(name), ", ")
}
