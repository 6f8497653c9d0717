package keystore

import (
	"context"
	"crypto/fips140"
	"crypto/hpke"
	"crypto/mldsa"
	"testing"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Paired benchmarks of the post-quantum paths against the library calls
// underneath, in the style of BenchmarkPairedSign. Under GODEBUG=fips140=on
// the keystore uses crypto/mldsa, so the baseline switches with it.

// rawMLDSA65 is the library underneath: circl by default, crypto/mldsa in
// FIPS 140-3 mode. Both sign hedged, like the keystore.
type rawMLDSA65 struct {
	sign   func(msg []byte)
	verify func(msg, sig []byte) bool
	sig    func(msg []byte) []byte
}

func newRawMLDSA65(b *testing.B) rawMLDSA65 {
	var seed [32]byte
	if fips140.Enabled() {
		sk, err := mldsa.NewPrivateKey(mldsa.MLDSA65(), seed[:])
		if err != nil {
			b.Fatal(err)
		}
		pk := sk.PublicKey()
		s := func(msg []byte) []byte {
			sig, err := sk.Sign(nil, msg, &mldsa.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return sig
		}
		return rawMLDSA65{
			sign:   func(msg []byte) { s(msg) },
			sig:    s,
			verify: func(msg, sig []byte) bool { return mldsa.Verify(pk, msg, sig, nil) == nil },
		}
	}
	pk, sk := mldsa65.NewKeyFromSeed(&seed)
	s := func(msg []byte) []byte {
		sig := make([]byte, mldsa65.SignatureSize)
		if err := mldsa65.SignTo(sk, msg, nil, true, sig); err != nil {
			b.Fatal(err)
		}
		return sig
	}
	return rawMLDSA65{
		sign:   func(msg []byte) { s(msg) },
		sig:    s,
		verify: func(msg, sig []byte) bool { return mldsa65.Verify(pk, msg, nil, sig) },
	}
}

// BenchmarkPairedMLDSA65Sign reports sign-ratio: raw library signing
// throughput over Keystore.Sign's (target ≥ 0.9 as a throughput ratio).
func BenchmarkPairedMLDSA65Sign(b *testing.B) {
	ctx := context.Background()
	ks := newMemKS(b)
	ref := Ref{Name: createAlg(b, ks, "ml-dsa-65").Name}
	sign(b, ks, ref, benchPayload)
	raw := newRawMLDSA65(b)
	tOurs, tRaw := paired(b,
		func() {
			if _, err := ks.Sign(ctx, ref, benchPayload, Options{}); err != nil {
				b.Fatal(err)
			}
		},
		func() { raw.sign(benchPayload) })
	b.ReportMetric(tRaw.Seconds()/tOurs.Seconds(), "sign-ratio")
}

// BenchmarkPairedMLDSA65Verify reports verify-ratio (throughput, ours over
// raw's inverse: raw time / our time).
func BenchmarkPairedMLDSA65Verify(b *testing.B) {
	ctx := context.Background()
	ks := newMemKS(b)
	ref := Ref{Name: createAlg(b, ks, "ml-dsa-65").Name}
	s := sign(b, ks, Ref{Name: ref.Name}, benchPayload)
	ref.Version = s.Version
	raw := newRawMLDSA65(b)
	rawSig := raw.sig(benchPayload)
	tOurs, tRaw := paired(b,
		func() {
			if _, err := ks.Verify(ctx, ref, benchPayload, s.Parts, Options{}); err != nil {
				b.Fatal(err)
			}
		},
		func() {
			if !raw.verify(benchPayload, rawSig) {
				b.Fatal("raw verify failed")
			}
		})
	b.ReportMetric(tRaw.Seconds()/tOurs.Seconds(), "verify-ratio")
}

// BenchmarkPairedCompositeSign reports sum-ratio: the time of the two
// component signs through the keystore (ML-DSA-65 + Ed25519) over the time
// of one composite sign (≈ 1 means the composite costs its parts and no
// more).
func BenchmarkPairedCompositeSign(b *testing.B) {
	ctx := context.Background()
	ks := newMemKS(b)
	comp := Ref{Name: createAlg(b, ks, "mldsa65-ed25519").Name}
	pq := Ref{Name: createAlg(b, ks, "ml-dsa-65").Name}
	ed := Ref{Name: createAlg(b, ks, "ed25519").Name}
	for _, r := range []Ref{comp, pq, ed} {
		sign(b, ks, r, benchPayload)
	}
	tOurs, tRaw := paired(b,
		func() {
			if _, err := ks.Sign(ctx, comp, benchPayload, Options{}); err != nil {
				b.Fatal(err)
			}
		},
		func() {
			if _, err := ks.Sign(ctx, pq, benchPayload, Options{}); err != nil {
				b.Fatal(err)
			}
			if _, err := ks.Sign(ctx, ed, benchPayload, Options{}); err != nil {
				b.Fatal(err)
			}
		})
	b.ReportMetric(tRaw.Seconds()/tOurs.Seconds(), "sum-ratio")
}

// hpkeSuite is the suite every wrap uses.
var hpkeKDF, hpkeAEAD = hpke.HKDFSHA256(), hpke.AES256GCM()

// BenchmarkPairedWrap reports wrap-ratio: raw hpke.Seal time over
// Keystore.Wrap time for a 32-byte data key (target ≥ 0.9), for the default
// wrap KEM.
func BenchmarkPairedWrap(b *testing.B) {
	ctx := context.Background()
	ks := newMemKS(b)
	ref := Ref{Name: createAlg(b, ks, "mlkem768-x25519").Name}
	if _, err := ks.Wrap(ctx, ref, benchPayload, nil); err != nil {
		b.Fatal(err)
	}
	sk, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	pk := sk.PublicKey()
	tOurs, tRaw := paired(b,
		func() {
			if _, err := ks.Wrap(ctx, ref, benchPayload, nil); err != nil {
				b.Fatal(err)
			}
		},
		func() {
			if _, err := hpke.Seal(pk, hpkeKDF, hpkeAEAD, []byte("info"), benchPayload); err != nil {
				b.Fatal(err)
			}
		})
	b.ReportMetric(tRaw.Seconds()/tOurs.Seconds(), "wrap-ratio")
}

// BenchmarkPairedUnwrap reports unwrap-ratio: raw hpke.Open time over
// Keystore.Unwrap time (target ≥ 0.9).
func BenchmarkPairedUnwrap(b *testing.B) {
	ctx := context.Background()
	ks := newMemKS(b)
	ref := Ref{Name: createAlg(b, ks, "mlkem768-x25519").Name}
	w, err := ks.Wrap(ctx, ref, benchPayload, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ks.Unwrap(ctx, w.Envelope, nil); err != nil {
		b.Fatal(err)
	}
	sk, _ := hpke.MLKEM768X25519().GenerateKey()
	sealed, err := hpke.Seal(sk.PublicKey(), hpkeKDF, hpkeAEAD, []byte("info"), benchPayload)
	if err != nil {
		b.Fatal(err)
	}
	tOurs, tRaw := paired(b,
		func() {
			if _, err := ks.Unwrap(ctx, w.Envelope, nil); err != nil {
				b.Fatal(err)
			}
		},
		func() {
			if _, err := hpke.Open(sk, hpkeKDF, hpkeAEAD, []byte("info"), sealed); err != nil {
				b.Fatal(err)
			}
		})
	b.ReportMetric(tRaw.Seconds()/tOurs.Seconds(), "unwrap-ratio")
}
