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
		return scheme{
			alg:      a,
			generate: s.GenerateSeed,
			load: func(seed []byte) (secretKey, error) {
				k, err := s.NewPrivateKey(seed)
				return sigKey{k}, err
			},
			parsePub: func(pub []byte) (any, error) { return s.NewPublicKey(pub) },
		}, nil
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
