package keystore

import (
	"crypto/rand"
	"fmt"

	"github.com/ron-kms/ron-kms/internal/alg"
	"github.com/ron-kms/ron-kms/internal/sig"
	"github.com/ron-kms/ron-kms/internal/symm"
	"github.com/ron-kms/ron-kms/internal/wrap"
)

// secretKey is an unsealed private key of any kind: a signing key, a KEM
// private key or a symmetric key. It is secret and safe for concurrent use.
type secretKey interface {
	// publicBytes is the key's public encoding (nil for symmetric keys).
	publicBytes() []byte
	destroy()
}

// scheme is what the keystore needs of an algorithm: make a seed, load a
// private key from a seed, parse a public key. One per kind of the table.
type scheme struct {
	alg      *alg.Alg
	generate func() []byte
	load     func(seed []byte) (secretKey, error)
	parsePub func(pub []byte) (any, error) // sig.PublicKey or wrap.PublicKey
	// checkPub, when set, refuses a weak public key taken from outside (a
	// verify-only import; sig.PublicKeyChecker). Keys on record are not
	// checked again: they must keep loading.
	checkPub func(pub []byte) error
	// sealForm, when set, is what to seal for a new version instead of its
	// seed: a secret form of the loaded key that loadForm loads faster
	// (sig.FormScheme). It is as secret as the seed.
	sealForm func(k secretKey) ([]byte, error)
	loadForm func(form []byte) (secretKey, error)
}

// loadSealed loads what a sealed record holds: the seed, or (when the scheme
// has one and the length says so) the secret form. The record's AEAD has
// authenticated it, which a form needs (sig.FormScheme).
func (sc scheme) loadSealed(b []byte) (secretKey, error) {
	if sc.loadForm != nil && len(b) != sc.alg.SeedSize {
		return sc.loadForm(b)
	}
	return sc.load(b)
}

// sealable returns what to seal for key k loaded from seed: the secret form
// when the scheme has one, else a copy of the seed. The caller clears it.
func (sc scheme) sealable(seed []byte, k secretKey) ([]byte, error) {
	if sc.sealForm != nil {
		return sc.sealForm(k)
	}
	return append([]byte(nil), seed...), nil
}

type sigKey struct{ sig.PrivateKey }

func (k sigKey) publicBytes() []byte { return k.Public().Bytes() }
func (k sigKey) destroy()            { k.Destroy() }

type kemKey struct{ wrap.PrivateKey }

func (k kemKey) publicBytes() []byte { return k.Public().Bytes() }
func (k kemKey) destroy()            { k.Destroy() }

type symKey struct{ *symm.Key }

func (symKey) publicBytes() []byte { return nil }
func (symKey) destroy()            {}

// kinds builds a scheme for an algorithm of each kind.
var kinds = map[alg.Kind]func(a *alg.Alg) (scheme, error){
	alg.KindSignature: func(a *alg.Alg) (scheme, error) {
		s, err := sig.For(a.Name)
		if err != nil {
			return scheme{}, err
		}
		sc := scheme{
			alg:      a,
			generate: s.GenerateSeed,
			load: func(seed []byte) (secretKey, error) {
				k, err := s.NewPrivateKey(seed)
				return sigKey{k}, err
			},
			parsePub: func(pub []byte) (any, error) { return s.NewPublicKey(pub) },
		}
		if c, ok := s.(sig.PublicKeyChecker); ok {
			sc.checkPub = c.CheckPublicKey
		}
		if fs, ok := s.(sig.FormScheme); ok {
			// Ed25519: seal seed ‖ A, so that a cache miss costs no scalar
			// multiplication (records holding only the seed still load).
			sc.sealForm = func(k secretKey) ([]byte, error) { return fs.SecretForm(k.(sigKey).PrivateKey) }
			sc.loadForm = func(form []byte) (secretKey, error) {
				k, err := fs.NewPrivateKeyFromForm(form)
				return sigKey{k}, err
			}
		}
		return sc, nil
	},
	alg.KindKEM: func(a *alg.Alg) (scheme, error) {
		s, err := wrap.For(a.Name)
		if err != nil {
			return scheme{}, err
		}
		return scheme{
			alg:      a,
			generate: s.GenerateSeed,
			load: func(seed []byte) (secretKey, error) {
				k, err := s.NewPrivateKey(seed)
				return kemKey{k}, err
			},
			parsePub: func(pub []byte) (any, error) { return s.NewPublicKey(pub) },
		}, nil
	},
	alg.KindSymmetric: func(a *alg.Alg) (scheme, error) {
		return scheme{
			alg: a,
			generate: func() []byte {
				b := make([]byte, symm.KeySize)
				rand.Read(b)
				return b
			},
			load: func(seed []byte) (secretKey, error) {
				k, err := symm.NewKey(seed)
				return symKey{k}, err
			},
			parsePub: func([]byte) (any, error) { return nil, nil },
		}, nil
	},
}

// schemeFor returns the scheme of an algorithm name, or ErrUnsupported.
func schemeFor(name string) (scheme, error) {
	a, ok := alg.Lookup(name)
	if !ok {
		return scheme{}, fmt.Errorf("%w: algorithm %q", ErrUnsupported, name)
	}
	build, ok := kinds[a.Kind]
	if !ok {
		return scheme{}, fmt.Errorf("%w: %s keys are not available in this build", ErrUnsupported, name)
	}
	s, err := build(a)
	if err != nil {
		return scheme{}, fmt.Errorf("%w: algorithm %q: %v", ErrUnsupported, name, err)
	}
	return s, nil
}

// allows returns ErrUnsupported unless keys of algorithm a can do op.
func allows(a *alg.Alg, op alg.Ops, what string) error {
	if !a.Ops.Has(op) {
		return fmt.Errorf("%w: a %s key cannot %s (it is a %s key)", ErrUnsupported, a.Name, what, a.Kind)
	}
	return nil
}
