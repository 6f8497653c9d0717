package sig

import (
	"crypto/mldsa"
	"errors"
	"testing"
)

// FuzzMLDSAVerify: any public key, message, signature and context bytes,
// for any parameter set, never panic; a wrong-size key or signature is
// refused with ErrKeySize or ErrInvalidSignature; and, with key and
// signature cut or padded to size, circl, crypto/mldsa through this package
// and crypto/mldsa.Verify directly give the same verdict.
//
// The Wycheproof seeds are several kilobytes, and minimizing an input that
// size takes the fuzzer a long time; run with a small -fuzzminimizetime
// (e.g. 20x) to keep it fuzzing.
func FuzzMLDSAVerify(f *testing.F) {
	// Seeds: a valid and an invalid case of each Wycheproof verify file.
	for i, name := range mldsaNames {
		file := mldsaWycheproofFiles[name] + "_verify_test.json"
		vf := readMLDSAWycheproof[mldsaVerifyGroup](f, file, "mldsa_verify_schema.json")
		seen := map[string]bool{}
		for _, g := range vf.TestGroups {
			for _, c := range g.Tests {
				if seen[c.Result] {
					continue
				}
				seen[c.Result] = true
				var ctx []byte
				if c.Ctx != nil {
					ctx = mustHex(f, *c.Ctx)
				}
				f.Add(uint8(i), mustHex(f, g.PublicKey), mustHex(f, c.Msg), mustHex(f, c.Sig), ctx)
			}
		}
	}
	f.Add(uint8(0), []byte{}, []byte{}, []byte{}, []byte{})
	params := []mldsa.Parameters{mldsa.MLDSA44(), mldsa.MLDSA65(), mldsa.MLDSA87()}
	f.Fuzz(func(t *testing.T, which uint8, pub, msg, sig, ctx []byte) {
		i := int(which) % len(mldsaNames)
		s := mldsaFor(t, mldsaNames[i])
		a := s.Alg()
		opts := &Options{Context: ctx}
		if len(pub) != a.PublicKeySize {
			if _, err := s.NewPublicKey(pub); !errors.Is(err, ErrKeySize) {
				t.Fatalf("NewPublicKey(%d bytes) = %v", len(pub), err)
			}
			pub = mldsaFit(pub, a.PublicKeySize)
		}
		var verdicts []error
		for _, impl := range mldsaBoth(s) {
			k, err := s.newPublicKey(impl, pub)
			if err != nil {
				t.Fatalf("%s: NewPublicKey: %v", impl.name(), err)
			}
			if err := k.Verify(msg, sig, opts); len(sig) != a.OutputSize && !errors.Is(err, ErrInvalidSignature) && !errors.Is(err, errContextTooLong) {
				t.Fatalf("%s: Verify of a %d-byte signature = %v", impl.name(), len(sig), err)
			}
			err = k.Verify(msg, mldsaFit(sig, a.OutputSize), opts)
			switch {
			case len(ctx) > maxContextSize && !errors.Is(err, ErrUnsupported):
				t.Fatalf("%s: Verify with a %d-byte context = %v", impl.name(), len(ctx), err)
			case len(ctx) <= maxContextSize && err != nil && !errors.Is(err, ErrInvalidSignature):
				t.Fatalf("%s: Verify: unexpected error %v", impl.name(), err)
			}
			verdicts = append(verdicts, err)
		}
		if (verdicts[0] == nil) != (verdicts[1] == nil) {
			t.Fatalf("circl says %v, crypto/mldsa says %v", verdicts[0], verdicts[1])
		}
		if len(ctx) <= maxContextSize {
			k, err := mldsa.NewPublicKey(params[i], pub)
			if err != nil {
				t.Fatalf("crypto/mldsa.NewPublicKey: %v", err)
			}
			ref := mldsa.Verify(k, msg, mldsaFit(sig, a.OutputSize), &mldsa.Options{Context: string(ctx)})
			if (ref == nil) != (verdicts[0] == nil) {
				t.Fatalf("Verify = %v, crypto/mldsa.Verify = %v", verdicts[0], ref)
			}
		}
	})
}

// mldsaFit returns b cut or zero-padded to n bytes.
func mldsaFit(b []byte, n int) []byte {
	if len(b) >= n {
		return b[:n]
	}
	return append(append([]byte(nil), b...), make([]byte, n-len(b))...)
}
