package sig

import (
	"crypto/ed25519"
	"testing"
)

// The message size of a payload_b3 request (SPEC §4): a 32-byte digest.
var benchMessage = []byte("0123456789abcdef0123456789abcdef")

func benchKeys(b *testing.B) (PrivateKey, ed25519.PrivateKey) {
	seed := mustHex(b, rfc8032Vectors[0].seed)
	k, err := ed25519For(b).NewPrivateKey(seed)
	if err != nil {
		b.Fatal(err)
	}
	return k, ed25519.NewKeyFromSeed(seed)
}

func BenchmarkSign(b *testing.B) {
	k, _ := benchKeys(b)
	for b.Loop() {
		if _, err := k.Sign(benchMessage, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEd25519Sign(b *testing.B) {
	_, raw := benchKeys(b)
	for b.Loop() {
		ed25519.Sign(raw, benchMessage)
	}
}

func BenchmarkVerify(b *testing.B) {
	k, raw := benchKeys(b)
	sig := ed25519.Sign(raw, benchMessage)
	pub := k.Public()
	for b.Loop() {
		if err := pub.Verify(benchMessage, sig, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawEd25519Verify(b *testing.B) {
	_, raw := benchKeys(b)
	sig := ed25519.Sign(raw, benchMessage)
	pub := raw.Public().(ed25519.PublicKey)
	for b.Loop() {
		if !ed25519.Verify(pub, benchMessage, sig) {
			b.Fatal("invalid")
		}
	}
}

func benchmarkVerifyBatch(b *testing.B, n, bad int) {
	items := supercopItems(b, 0, n)
	for i := range bad {
		spoil(b, &items[(i*37+11)%n], 0, BatchItem{})
	}
	for b.Loop() {
		if ok, _ := VerifyBatch(items); ok != (bad == 0) {
			b.Fatal("wrong verdict")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
}

func BenchmarkVerifyBatch64(b *testing.B)       { benchmarkVerifyBatch(b, 64, 0) }
func BenchmarkVerifyBatch1024(b *testing.B)     { benchmarkVerifyBatch(b, 1024, 0) }
func BenchmarkVerifyBatch64OneBad(b *testing.B) { benchmarkVerifyBatch(b, 64, 1) }

// BenchmarkVerifyEach64 verifies the same 64 signatures as
// BenchmarkVerifyBatch64 one at a time: the baseline for its ns/sig.
func BenchmarkVerifyEach64(b *testing.B) {
	items := supercopItems(b, 0, 64)
	for b.Loop() {
		for _, it := range items {
			if err := it.Key.Verify(it.Message, it.Signature, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(items)), "ns/sig")
}
