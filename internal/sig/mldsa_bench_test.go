package sig

import (
	"bytes"
	"crypto/mldsa"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// The ML-DSA-65 benchmarks compare this package's Sign and Verify, with
// either implementation, to the library calls underneath, for one key and
// one message (benchMessage): the difference is this package's overhead.
// Signing is hedged everywhere, as Sign is.

var mldsaBenchSeed = bytes.Repeat([]byte{0x2a}, 32)

func BenchmarkMLDSA65Sign(b *testing.B) {
	s := mldsaFor(b, alg.MLDSA65)
	for _, impl := range mldsaBoth(s) {
		k, err := s.newPrivateKey(impl, mldsaBenchSeed)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("sig/"+impl.name(), func(b *testing.B) {
			for b.Loop() {
				if _, err := k.Sign(benchMessage, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("raw/circl", func(b *testing.B) {
		_, sk := mldsa65.NewKeyFromSeed((*[32]byte)(mldsaBenchSeed))
		sig := make([]byte, mldsa65.SignatureSize)
		for b.Loop() {
			if err := mldsa65.SignTo(sk, benchMessage, nil, true, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw/crypto-mldsa", func(b *testing.B) {
		sk, err := mldsa.NewPrivateKey(mldsa.MLDSA65(), mldsaBenchSeed)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := sk.Sign(nil, benchMessage, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkMLDSA65Verify(b *testing.B) {
	s := mldsaFor(b, alg.MLDSA65)
	k, err := s.newPrivateKey(s.impls.circl, mldsaBenchSeed)
	if err != nil {
		b.Fatal(err)
	}
	sig, err := k.Sign(benchMessage, nil)
	if err != nil {
		b.Fatal(err)
	}
	pubBytes := k.Public().Bytes()
	for _, impl := range mldsaBoth(s) {
		pub, err := s.newPublicKey(impl, pubBytes)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("sig/"+impl.name(), func(b *testing.B) {
			for b.Loop() {
				if err := pub.Verify(benchMessage, sig, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("raw/circl", func(b *testing.B) {
		pk := new(mldsa65.PublicKey)
		if err := pk.UnmarshalBinary(pubBytes); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if !mldsa65.Verify(pk, benchMessage, nil, sig) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("raw/crypto-mldsa", func(b *testing.B) {
		pk, err := mldsa.NewPublicKey(mldsa.MLDSA65(), pubBytes)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := mldsa.Verify(pk, benchMessage, sig, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMLDSA65NewKeys is the one-time cost of loading a key: expanding
// the seed (and parsing the public key again, see newPrivateKey), and
// parsing an encoded public key.
func BenchmarkMLDSA65NewKeys(b *testing.B) {
	s := mldsaFor(b, alg.MLDSA65)
	for _, impl := range mldsaBoth(s) {
		k, err := s.newPrivateKey(impl, mldsaBenchSeed)
		if err != nil {
			b.Fatal(err)
		}
		pubBytes := k.Public().Bytes()
		b.Run("private/"+impl.name(), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.newPrivateKey(impl, mldsaBenchSeed); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("public/"+impl.name(), func(b *testing.B) {
			for b.Loop() {
				if _, err := s.newPublicKey(impl, pubBytes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
