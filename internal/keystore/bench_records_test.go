package keystore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/boltstore"
)

// benchStoreKeys is how many keys the record benchmarks seed:
// RON_KMS_BENCH_KEYS, 100,000 by default.
func benchStoreKeys(b *testing.B) int {
	if s := os.Getenv("RON_KMS_BENCH_KEYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("RON_KMS_BENCH_KEYS=%q", s)
		}
		return n
	}
	return 100_000
}

// seedBoltPair writes the same n Ed25519 keys, each with an op_id record
// as `keys seed` writes, into two bbolt stores: one in key records version 1
// (JSON k/<name>, the sealed seed under s/<name>/1, a JSON op record), as
// the code before key records v2 wrote them, and one in version 2. It
// returns both stores and the keys' names, and logs the record and file
// sizes.
func seedBoltPair(b *testing.B, sealer seal.Sealer, n int) (v1, v2 *boltstore.Store, names []string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	open := func(name string) *boltstore.Store {
		st, err := boltstore.Open(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		return st
	}
	v1, v2 = open("v1.db"), open("v2.db")
	sc, err := schemeFor("ed25519")
	if err != nil {
		b.Fatal(err)
	}
	ks := &Keystore{sealer: sealer, now: time.Now}
	const batch = 2000
	var m1, m2 []storage.Mutation
	var bytes1, bytes2, op1, op2 int
	flush := func() {
		for _, p := range []struct {
			st   *boltstore.Store
			muts *[]storage.Mutation
		}{{v1, &m1}, {v2, &m2}} {
			if len(*p.muts) == 0 {
				continue
			}
			if _, err := p.st.Apply(ctx, *p.muts...); err != nil {
				b.Fatal(err)
			}
			*p.muts = (*p.muts)[:0]
		}
	}
	for i := range n {
		k, now := ks.skeleton("bench", "seed", "ed25519")
		k.Labels = map[string]string{"seed": "1"}
		v, sealed, priv, err := ks.newVersion(sc, k.Name, 1, now)
		if err != nil {
			b.Fatal(err)
		}
		priv.destroy()
		k.Versions = []Version{v}
		digest := CreateParams{Tenant: k.Tenant, Purpose: k.Purpose, Alg: k.Alg, Labels: k.Labels}.digest()
		opID := fmt.Sprintf("seed-%d", i)

		j, _ := json.Marshal(k)
		res, _ := json.Marshal(k)
		oj, _ := json.Marshal(opRecord{Kind: "create", Digest: digest, Result: res})
		m1 = append(m1,
			storage.Mutation{Key: keyPath(k.Name), Value: j, Expect: storage.MustNotExist},
			storage.Mutation{Key: sealedPath(k.Name, 1), Value: sealed, Expect: storage.MustNotExist},
			storage.Mutation{Key: opPath(k.Tenant, opID), Value: oj, Expect: storage.MustNotExist})
		bytes1 += len(j) + len(sealed)
		op1 += len(oj)

		k.sealed = [][]byte{sealed}
		r := mustEncode(b, k)
		om := opMutation(k.Tenant, opID, "create", digest, k)
		m2 = append(m2, storage.Mutation{Key: keyPath(k.Name), Value: r, Expect: storage.MustNotExist}, om)
		bytes2 += len(r)
		op2 += len(om.Value)
		names = append(names, k.Name)
		if len(m2) >= batch {
			flush()
		}
	}
	flush()
	size := func(st *boltstore.Store) int64 {
		fi, err := os.Stat(st.Path())
		if err != nil {
			b.Fatal(err)
		}
		return fi.Size()
	}
	b.Logf("%d ed25519 keys with op records: key record (+ sealed seed) %d B v1, %d B v2; op record %d B v1, %d B v2; kms.db %d MiB v1, %d MiB v2",
		n, bytes1/n, bytes2/n, op1/n, op2/n, size(v1)>>20, size(v2)>>20)
	return v1, v2, names
}

// BenchmarkPairedMissSignBolt signs with keys that miss the cache over two
// bbolt stores holding the same keys (benchStoreKeys, 100,000 by default),
// one in key records version 1 and one in version 2, alternating the two in
// one loop over the keys in a random order, each keystore with a cache of
// 1,000 keys: nearly every sign loads the key from the store and unseals its
// seed. It reports each side's time per sign, v1/v2 as miss-speedup, and,
// for the baseline, the time of a sign that hits the cache.
func BenchmarkPairedMissSignBolt(b *testing.B) {
	ctx := context.Background()
	sealer, err := seal.NewAESGCM(newKEK(b))
	if err != nil {
		b.Fatal(err)
	}
	v1, v2, names := seedBoltPair(b, sealer, benchStoreKeys(b))
	openBench := func(st storage.Store) *Keystore {
		ks, err := Open(ctx, Config{Store: st, Sealer: sealer, CacheSize: 1000})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(ks.Close)
		return ks
	}
	ks1, ks2 := openBench(v1), openBench(v2)
	// The baseline: a keystore over the v2 store whose 1,000 keys are all
	// in its cache.
	hot := openBench(v2)
	for _, name := range names[:min(len(names), 1000)] {
		if _, err := hot.Sign(ctx, Ref{Name: name}, benchPayload, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	order := rand.Perm(len(names))
	var t1, t2, th time.Duration
	i := 0
	for b.Loop() {
		ref := Ref{Name: names[order[i%len(order)]]}
		a := time.Now()
		if _, err := ks1.Sign(ctx, ref, benchPayload, Options{}); err != nil {
			b.Fatal(err)
		}
		m := time.Now()
		if _, err := ks2.Sign(ctx, ref, benchPayload, Options{}); err != nil {
			b.Fatal(err)
		}
		h := time.Now()
		if _, err := hot.Sign(ctx, Ref{Name: names[i%min(len(names), 1000)]}, benchPayload, Options{}); err != nil {
			b.Fatal(err)
		}
		t1 += m.Sub(a)
		t2 += h.Sub(m)
		th += time.Since(h)
		i++
	}
	b.ReportMetric(float64(t1.Nanoseconds())/float64(i), "v1-ns/sign")
	b.ReportMetric(float64(t2.Nanoseconds())/float64(i), "v2-ns/sign")
	b.ReportMetric(float64(th.Nanoseconds())/float64(i), "hit-ns/sign")
	b.ReportMetric(float64(t1)/float64(t2), "miss-speedup")
}

// BenchmarkCachedKeyBytes fills a keystore's cache with Ed25519 keys read
// from a bbolt store (whose pages are mapped, not on the heap), each
// having signed once (metadata, parsed public key, unsealed private key),
// and reports the live heap per cached key as bytes/key: what
// cli's memory limit allows per key of the cache. Run it with -benchtime 1x.
func BenchmarkCachedKeyBytes(b *testing.B) {
	ctx := context.Background()
	sealer, err := seal.NewAESGCM(newKEK(b))
	if err != nil {
		b.Fatal(err)
	}
	n := min(benchStoreKeys(b), 50_000)
	_, v2, names := seedBoltPair(b, sealer, n)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ks, err := Open(ctx, Config{Store: v2, Sealer: sealer, CacheSize: n})
		if err != nil {
			b.Fatal(err)
		}
		for _, name := range names {
			if _, err := ks.Sign(ctx, Ref{Name: name}, benchPayload, Options{}); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "bytes/key")
		runtime.KeepAlive(names)
		ks.Close()
	}
}
