package keystore

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

// BenchmarkPairedColdSign signs with keys that are never in the cache (a
// cache of 1 key, requests round robin over 1,000 keys: every sign loads the
// key's metadata, unseals its seed and derives the key), alternating with a
// raw ed25519.Sign in the same loop, and reports cold/raw as sign-ratio.
// It is what signing costs when the keys in use outnumber the cache.
func BenchmarkPairedColdSign(b *testing.B) {
	ctx := context.Background()
	sealer, err := seal.NewAESGCM(newKEK(b))
	if err != nil {
		b.Fatal(err)
	}
	ks, err := Open(ctx, Config{Store: memstore.New(), Sealer: sealer, CacheSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(ks.Close)
	refs := make([]Ref, 1000)
	for i := range refs {
		refs[i] = Ref{Name: create(b, ks, "").Name}
	}
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	var cold, raw int64
	i := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := ks.Sign(ctx, refs[i%len(refs)], benchPayload, Options{}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		ed25519.Sign(priv, benchPayload)
		t2 := time.Now()
		cold += int64(t1.Sub(t0))
		raw += int64(t2.Sub(t1))
		i++
	}
	b.ReportMetric(float64(raw)/float64(cold), "sign-ratio")
}
