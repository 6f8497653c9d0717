package wrap

import (
	"bytes"
	"crypto/hpke"
	"slices"
	"testing"
	"time"
)

// benchDataKey is what /wrap usually carries: a 32-byte data key.
var benchDataKey = bytes.Repeat([]byte{0xd4}, 32)

// benchSetup returns our key and crypto/hpke's key for the same seed, and
// the HPKE info our envelope uses, so that the raw baseline does the same
// cryptographic work.
func benchSetup(b *testing.B, name string) (PrivateKey, hpke.PrivateKey, []byte) {
	s := mustScheme(b, name)
	seed := s.GenerateSeed()
	k, err := s.NewPrivateKey(seed)
	if err != nil {
		b.Fatal(err)
	}
	hk, err := schemes[name].kem.NewPrivateKey(seed)
	if err != nil {
		b.Fatal(err)
	}
	e := Envelope{KeyName: testKeyName, Version: 1, KEMID: schemes[name].kem.ID()}
	return k, hk, info(e.appendHeader(nil))
}

// BenchmarkWrap compares Wrap with a raw hpke.Seal of the same data key to
// the same key (ours/raw ns/op should be within 10%).
func BenchmarkWrap(b *testing.B) {
	for _, name := range kemNames {
		b.Run(name+"/ours", func(b *testing.B) {
			k, _, _ := benchSetup(b, name)
			pub := k.Public()
			for b.Loop() {
				if _, err := Wrap(pub, testKeyName, 1, nil, benchDataKey); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/raw", func(b *testing.B) {
			_, hk, info := benchSetup(b, name)
			pub := hk.PublicKey()
			for b.Loop() {
				if _, err := hpke.Seal(pub, hpke.HKDFSHA256(), hpke.AES256GCM(), info, benchDataKey); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnwrap compares Parse+Unwrap of an envelope with a raw hpke.Open
// of the same enc ‖ ciphertext.
func BenchmarkUnwrap(b *testing.B) {
	for _, name := range kemNames {
		b.Run(name+"/ours", func(b *testing.B) {
			k, _, _ := benchSetup(b, name)
			env := mustWrap(b, k.Public(), testKeyName, 1, nil, benchDataKey)
			for b.Loop() {
				if _, err := parseUnwrap(k, env, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/raw", func(b *testing.B) {
			_, hk, info := benchSetup(b, name)
			sealed, err := hpke.Seal(hk.PublicKey(), hpke.HKDFSHA256(), hpke.AES256GCM(), info, benchDataKey)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := hpke.Open(hk, hpke.HKDFSHA256(), hpke.AES256GCM(), info, sealed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRatio interleaves ours and raw, one operation each per
// iteration, and reports the median time of each and raw/ours (the target is
// ≥ 0.9): on a shared, loaded machine, separate benchmarks drift apart by
// more than the difference being measured.
func BenchmarkRatio(b *testing.B) {
	for _, name := range kemNames {
		b.Run(name+"/wrap", func(b *testing.B) {
			k, hk, info := benchSetup(b, name)
			pub, hpub := k.Public(), hk.PublicKey()
			var ours, raw []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := Wrap(pub, testKeyName, 1, nil, benchDataKey); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := hpke.Seal(hpub, hpke.HKDFSHA256(), hpke.AES256GCM(), info, benchDataKey); err != nil {
					b.Fatal(err)
				}
				ours, raw = append(ours, t1.Sub(t0)), append(raw, time.Since(t1))
			}
			reportRatio(b, ours, raw)
		})
		b.Run(name+"/unwrap", func(b *testing.B) {
			k, hk, info := benchSetup(b, name)
			env := mustWrap(b, k.Public(), testKeyName, 1, nil, benchDataKey)
			sealed, err := hpke.Seal(hk.PublicKey(), hpke.HKDFSHA256(), hpke.AES256GCM(), info, benchDataKey)
			if err != nil {
				b.Fatal(err)
			}
			var ours, raw []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := parseUnwrap(k, env, nil); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if _, err := hpke.Open(hk, hpke.HKDFSHA256(), hpke.AES256GCM(), info, sealed); err != nil {
					b.Fatal(err)
				}
				ours, raw = append(ours, t1.Sub(t0)), append(raw, time.Since(t1))
			}
			reportRatio(b, ours, raw)
		})
	}
}

// reportRatio reports the median time of each side and their ratio: the
// median of per-operation times ignores the operations that a loaded machine
// preempted, which would dominate a mean.
func reportRatio(b *testing.B, ours, raw []time.Duration) {
	o, r := median(ours), median(raw)
	b.ReportMetric(float64(o.Nanoseconds()), "ours-ns/op")
	b.ReportMetric(float64(r.Nanoseconds()), "raw-ns/op")
	b.ReportMetric(float64(r)/float64(o), "raw/ours")
}

func median(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)/2]
}
