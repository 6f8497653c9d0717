package sig

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestMLDSADifferential holds the promise of SPEC §3 that keys stored as
// seeds load in either implementation: for many seeds, messages and contexts,
// circl and crypto/mldsa derive byte-identical public keys and
// byte-identical deterministic signatures, and each accepts the other's
// signatures, deterministic and hedged.
func TestMLDSADifferential(t *testing.T) {
	n := 48
	if testing.Short() {
		n = 8
	}
	for _, name := range mldsaNames {
		t.Run(name, func(t *testing.T) {
			s := mldsaFor(t, name)
			// The inputs are arbitrary, but reproducible.
			r := rand.NewChaCha8([32]byte([]byte(fmt.Sprintf("%-32s", name))))
			contexts := [][]byte{nil, []byte("ron-kms"), bytes.Repeat([]byte{0xff}, 255)}
			for i := range n {
				seed := make([]byte, s.Alg().SeedSize)
				_, _ = r.Read(seed)
				msg := make([]byte, []int{0, 1, 32, 100, 1000, 5000}[i%6]+i)
				_, _ = r.Read(msg)
				opts := &Options{Context: contexts[i%len(contexts)]}

				c, err := s.newPrivateKey(s.impls.circl, seed)
				if err != nil {
					t.Fatal(err)
				}
				g, err := s.newPrivateKey(s.impls.std, seed)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(c.Public().Bytes(), g.Public().Bytes()) {
					t.Fatalf("seed %x: public keys differ", seed)
				}
				cSig, err := c.sign(msg, opts, true)
				if err != nil {
					t.Fatal(err)
				}
				gSig, err := g.sign(msg, opts, true)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(cSig, gSig) {
					t.Errorf("seed %x, %d-byte message, %d-byte context: deterministic signatures differ",
						seed, len(msg), len(opts.Context))
				}
				cHedged, err := c.Sign(msg, opts)
				if err != nil {
					t.Fatal(err)
				}
				gHedged, err := g.Sign(msg, opts)
				if err != nil {
					t.Fatal(err)
				}
				for what, err := range map[string]error{
					"crypto/mldsa verifies circl's deterministic": g.Public().Verify(msg, cSig, opts),
					"circl verifies crypto/mldsa's deterministic": c.Public().Verify(msg, gSig, opts),
					"crypto/mldsa verifies circl's hedged":        g.Public().Verify(msg, cHedged, opts),
					"circl verifies crypto/mldsa's hedged":        c.Public().Verify(msg, gHedged, opts),
				} {
					if err != nil {
						t.Errorf("seed %x: %s: %v", seed, what, err)
					}
				}
			}
		})
	}
}
