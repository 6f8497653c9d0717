package sig

import (
	"testing"

	"github.com/cloudflare/circl/sign/slhdsa"
)

// The SLH-DSA-SHA2-128s benchmarks compare this package's Sign and Verify to
// circl's calls underneath, for one key and one message (benchMessage).

func slhdsaBenchKey(b *testing.B) (*slhdsaPrivateKey, slhdsa.PublicKey) {
	s := slhdsaFor(b)
	seed := append(append([]byte(nil), mldsaBenchSeed...), mldsaBenchSeed[:16]...)
	k, err := s.NewPrivateKey(seed)
	if err != nil {
		b.Fatal(err)
	}
	pk := slhdsa.PublicKey{ID: slhdsa.SHA2_128s}
	if err := pk.UnmarshalBinary(k.Public().Bytes()); err != nil {
		b.Fatal(err)
	}
	return k.(*slhdsaPrivateKey), pk
}

func BenchmarkSLHDSASign(b *testing.B) {
	k, _ := slhdsaBenchKey(b)
	b.Run("sig", func(b *testing.B) {
		for b.Loop() {
			if _, err := k.Sign(benchMessage, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw/circl", func(b *testing.B) {
		for b.Loop() {
			if _, err := slhdsa.SignRandomized(k.priv, nil, slhdsa.NewMessage(benchMessage), nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSLHDSAVerify(b *testing.B) {
	k, pk := slhdsaBenchKey(b)
	sig, err := k.Sign(benchMessage, nil)
	if err != nil {
		b.Fatal(err)
	}
	pub := k.Public()
	b.Run("sig", func(b *testing.B) {
		for b.Loop() {
			if err := pub.Verify(benchMessage, sig, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw/circl", func(b *testing.B) {
		for b.Loop() {
			if !slhdsa.Verify(&pk, slhdsa.NewMessage(benchMessage), sig, nil) {
				b.Fatal("invalid")
			}
		}
	})
}
