package sig

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// BenchmarkCompositeSignVsComponents measures, in the same loop, one composite
// MLDSA65-Ed25519 signature and the two plain component signatures it is
// made of (ml-dsa-65 and ed25519, through their schemes, over a message of
// the length of M'). The "ratio" metric is composite time / components time:
// the composite's own overhead (SHA-512 pre-hash, building M', concatenation).
// Messages change every iteration so ML-DSA's rejection loop is averaged.
func BenchmarkCompositeSignVsComponents(b *testing.B) {
	v := loadCompositeVector(b)
	comp, err := compositeFor(b).NewPrivateKey(v.SK)
	if err != nil {
		b.Fatal(err)
	}
	ml, err := mustFor(alg.MLDSA65).NewPrivateKey(v.SK[:32])
	if err != nil {
		b.Fatal(err)
	}
	ed, err := mustFor(alg.Ed25519).NewPrivateKey(v.SK[32:])
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, len(benchMessage))
	copy(msg, benchMessage)
	mp, err := comp.(*compositePrivateKey).s.representative(msg, nil)
	if err != nil {
		b.Fatal(err)
	}
	mlOpts := &Options{Context: []byte(mldsa65Ed25519.label)}
	var compT, partsT time.Duration
	var i uint64
	for b.Loop() {
		i++
		binary.LittleEndian.PutUint64(msg, i)
		binary.LittleEndian.PutUint64(mp[len(mp)-8:], i)
		t0 := time.Now()
		if _, err := comp.Sign(msg, nil); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := ml.Sign(mp, mlOpts); err != nil {
			b.Fatal(err)
		}
		if _, err := ed.Sign(mp, nil); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		compT += t1.Sub(t0)
		partsT += t2.Sub(t1)
	}
	b.ReportMetric(float64(compT.Nanoseconds())/float64(b.N), "composite-ns/op")
	b.ReportMetric(float64(partsT.Nanoseconds())/float64(b.N), "components-ns/op")
	b.ReportMetric(float64(compT)/float64(partsT), "ratio")
}

func BenchmarkCompositeVerify(b *testing.B) {
	v := loadCompositeVector(b)
	pub, err := compositeFor(b).NewPublicKey(v.PK)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := pub.Verify(v.M, v.S, nil); err != nil {
			b.Fatal(err)
		}
	}
}
