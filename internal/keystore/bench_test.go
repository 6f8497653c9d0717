package keystore

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"
)

// Benchmarks of the keystore's signing and verification paths against raw
// crypto/ed25519 on the same inputs. BENCHMARKS.md compares them as ratios
// measured in one run; nothing here asserts a timing.

// benchPayload is the message size of a payload_b3 request (SPEC §4): a
// 32-byte digest.
var benchPayload = []byte("0123456789abcdef0123456789abcdef")

// benchBatch is the batch size of the VerifyBatch comparison.
const benchBatch = 64

// BenchmarkKeystoreSign signs through Keystore.Sign with a cached,
// already-unsealed key: the cost the keystore adds on top of Ed25519.
func BenchmarkKeystoreSign(b *testing.B) {
	ctx := context.Background()
	ks := newMemKS(b)
	ref := Ref{Name: create(b, ks, "").Name}
	sign(b, ks, ref, benchPayload) // unseal and cache before timing
	for b.Loop() {
		if _, err := ks.Sign(ctx, ref, benchPayload, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawEd25519Sign is the baseline of BenchmarkKeystoreSign:
// crypto/ed25519.Sign with a key expanded once, outside the loop.
func BenchmarkRawEd25519Sign(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	for b.Loop() {
		ed25519.Sign(priv, benchPayload)
	}
}

// batchFixture holds benchBatch valid signatures, each under its own key
// (so the batch gets no help from a repeated key), both as keystore items
// and as raw crypto/ed25519 inputs.
type batchFixture struct {
	items []VerifyItem
	pubs  []ed25519.PublicKey
	msgs  [][]byte
	sigs  [][]byte
}

func newBatchFixture(b *testing.B, ks *Keystore) *batchFixture {
	b.Helper()
	f := &batchFixture{}
	for i := range benchBatch {
		k := create(b, ks, "")
		msg := fmt.Appendf(nil, "%032d", i)
		s := sign(b, ks, Ref{Name: k.Name}, msg)
		f.items = append(f.items, VerifyItem{Ref: Ref{Name: k.Name, Version: s.Version}, Message: msg, Parts: s.Parts})
		f.pubs = append(f.pubs, k.Versions[0].PublicKey)
		f.msgs = append(f.msgs, msg)
		f.sigs = append(f.sigs, s.Parts[0].Sig)
	}
	return f
}

func reportPerSig(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sig")
}

// BenchmarkKeystoreVerifyBatch64 verifies 64 signatures with one
// Keystore.VerifyBatch call; ns/sig is the figure to compare.
func BenchmarkKeystoreVerifyBatch64(b *testing.B) {
	ctx := context.Background()
	ks := newMemKS(b)
	f := newBatchFixture(b, ks)
	ks.VerifyBatch(ctx, f.items) // parse and cache the public keys
	for b.Loop() {
		errs, _ := ks.VerifyBatch(ctx, f.items)
		for i, err := range errs {
			if err != nil {
				b.Fatalf("item %d: %v", i, err)
			}
		}
	}
	reportPerSig(b, benchBatch)
}

// BenchmarkKeystoreVerifyEach64 verifies the same 64 signatures with one
// Keystore.Verify call each: what the batch saves over the single path.
func BenchmarkKeystoreVerifyEach64(b *testing.B) {
	ctx := context.Background()
	ks := newMemKS(b)
	f := newBatchFixture(b, ks)
	for b.Loop() {
		for _, it := range f.items {
			if _, err := ks.Verify(ctx, it.Ref, it.Message, it.Parts, it.Opts); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportPerSig(b, benchBatch)
}

// BenchmarkRawEd25519Verify64 is the baseline of
// BenchmarkKeystoreVerifyBatch64: crypto/ed25519.Verify on each of the same
// 64 signatures.
func BenchmarkRawEd25519Verify64(b *testing.B) {
	ks := newMemKS(b)
	f := newBatchFixture(b, ks)
	for b.Loop() {
		for i := range f.sigs {
			if !ed25519.Verify(f.pubs[i], f.msgs[i], f.sigs[i]) {
				b.Fatalf("item %d: invalid", i)
			}
		}
	}
	reportPerSig(b, benchBatch)
}

// The paired benchmarks below time both sides of a comparison in alternate
// iterations of one loop, so that load from other processes falls on both
// alike; the ratio metric is the figure BENCHMARKS.md tracks on a noisy
// machine. The order alternates so neither side always runs on a warm cache.

// BenchmarkPairedSign reports sign-ratio, the throughput of Keystore.Sign
// over that of raw crypto/ed25519.Sign (target ≥ 0.9).
func BenchmarkPairedSign(b *testing.B) {
	ctx := context.Background()
	ks := newMemKS(b)
	ref := Ref{Name: create(b, ks, "").Name}
	sign(b, ks, ref, benchPayload)
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	ours := func() {
		if _, err := ks.Sign(ctx, ref, benchPayload, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	raw := func() { ed25519.Sign(priv, benchPayload) }
	tOurs, tRaw := paired(b, ours, raw)
	b.ReportMetric(float64(tOurs.Nanoseconds())/float64(b.N), "ns/keystore-sign")
	b.ReportMetric(float64(tRaw.Nanoseconds())/float64(b.N), "ns/raw-sign")
	b.ReportMetric(tRaw.Seconds()/tOurs.Seconds(), "sign-ratio")
}

// BenchmarkPairedVerifyBatch64 reports verify-ratio, the time per signature
// of one 64-item Keystore.VerifyBatch over that of raw crypto/ed25519.Verify
// on the same 64 signatures (target ≤ 0.5).
func BenchmarkPairedVerifyBatch64(b *testing.B) {
	ctx := context.Background()
	ks := newMemKS(b)
	f := newBatchFixture(b, ks)
	ks.VerifyBatch(ctx, f.items)
	ours := func() {
		errs, _ := ks.VerifyBatch(ctx, f.items)
		for i, err := range errs {
			if err != nil {
				b.Fatalf("item %d: %v", i, err)
			}
		}
	}
	raw := func() {
		for i := range f.sigs {
			if !ed25519.Verify(f.pubs[i], f.msgs[i], f.sigs[i]) {
				b.Fatalf("item %d: invalid", i)
			}
		}
	}
	tOurs, tRaw := paired(b, ours, raw)
	n := float64(b.N * benchBatch)
	b.ReportMetric(float64(tOurs.Nanoseconds())/n, "ns/batch-sig")
	b.ReportMetric(float64(tRaw.Nanoseconds())/n, "ns/raw-sig")
	b.ReportMetric(tOurs.Seconds()/tRaw.Seconds(), "verify-ratio")
}

// paired runs ours and raw once per iteration, in alternating order, and
// returns the time spent in each.
func paired(b *testing.B, ours, raw func()) (tOurs, tRaw time.Duration) {
	odd := false
	for b.Loop() {
		t0 := time.Now()
		if odd {
			raw()
		} else {
			ours()
		}
		t1 := time.Now()
		if odd {
			ours()
		} else {
			raw()
		}
		t2 := time.Now()
		if odd {
			tRaw, tOurs = tRaw+t1.Sub(t0), tOurs+t2.Sub(t1)
		} else {
			tOurs, tRaw = tOurs+t1.Sub(t0), tRaw+t2.Sub(t1)
		}
		odd = !odd
	}
	return tOurs, tRaw
}
