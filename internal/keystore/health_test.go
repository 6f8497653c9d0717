package keystore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/logtest"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
	"github.com/ron-kms/ron-kms/internal/storage/storagetest"
)

// newSwitchStore is a memory store a test can take away; the health
// probe's reads are not counted.
func newSwitchStore() *storagetest.Outage {
	return &storagetest.Outage{Store: memstore.New(), Uncounted: probeKey}
}

// openHealthKS opens a keystore on st whose health clock is clock, with
// the given TTL, probing every few milliseconds.
func openHealthKS(t testing.TB, st storage.Store, kek []byte, clock *fakeClock, ttl CacheTTL) *Keystore {
	return openHealthKSLog(t, st, kek, clock, ttl, nil)
}

// openHealthKSLog is openHealthKS logging to log (nowhere when nil).
func openHealthKSLog(t testing.TB, st storage.Store, kek []byte, clock *fakeClock, ttl CacheTTL, log *slog.Logger) *Keystore {
	t.Helper()
	s, err := seal.NewAESGCM(kek)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := Open(context.Background(), Config{Store: st, Sealer: s, VerifyCacheTTL: ttl,
		ProbeInterval: 5 * time.Millisecond, clock: clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	return ks
}

// waitHealth waits until ks's health is want (the probe and the feed run
// in their own goroutines), and fails after 10 s.
func waitHealth(t *testing.T, ks *Keystore, want bool) Health {
	t.Helper()
	start := time.Now()
	for {
		h := ks.Health()
		if h.Healthy == want {
			t.Logf("healthy=%v after %v", want, time.Since(start).Round(time.Millisecond))
			return h
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("still healthy=%v after 10 s: %+v", h.Healthy, h)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestDegradedMode: with the store gone, every write and private-key
// operation fails at once with ErrUnavailable and no store call, while
// verify and key reads are answered from the cache (which is kept, not
// emptied, when the feed ends) with their age, until the hard TTL; past the
// soft TTL the health says so. When the store is back the keystore is
// healthy again by itself and has caught up with what changed meanwhile.
func TestDegradedMode(t *testing.T) {
	ctx := context.Background()
	st := newSwitchStore()
	kek := newKEK(t)
	clock := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	ttl := CacheTTL{Soft: 5 * time.Minute, Hard: 10 * time.Minute}
	logs := &logtest.Buffer{}
	a := openHealthKSLog(t, st, kek, clock, ttl, slog.New(slog.NewTextHandler(logs, nil)))
	other := openKS(t, st.Store, kek) // another node, on the store itself

	k := create(t, a, "")
	kem := createAlg(t, a, "ml-kem-768")
	msg := []byte("signed before the outage")
	s1 := sign(t, a, Ref{Name: k.Name}, msg)
	hidden := create(t, other, "") // never read by a
	if h := a.Health(); !h.Healthy || h.CacheAge != 0 {
		t.Fatalf("before the outage: %+v", h)
	}

	st.SetDown(true)
	h := waitHealth(t, a, false)
	if h.Reason == "" || !h.StaleSince.Equal(clock.Now()) {
		t.Fatalf("outage health: %+v, want a reason and stale since %v", h, clock.Now())
	}

	// Fail closed, without touching the store.
	calls := st.Calls()
	fns := map[string]func() error{
		"sign": func() error { _, err := a.Sign(ctx, Ref{Name: k.Name}, msg, Options{}); return err },
		"sign batch": func() error {
			return a.SignBatch(ctx, []SignItem{{Ref: Ref{Name: k.Name}, Message: msg}})[0].Err
		},
		"rotate": func() error { _, err := a.Rotate(ctx, k.Name, ""); return err },
		"create": func() error {
			_, err := a.Create(ctx, CreateParams{Tenant: "acme", Purpose: "p", Alg: "ed25519"})
			return err
		},
		"disable":   func() error { _, err := a.Transition(ctx, k.Name, 1, ActionDisable); return err },
		"configure": func() error { _, err := a.Configure(ctx, k.Name, KeyConfig{MinVerifyVersion: u32(1)}); return err },
		"wrap":      func() error { _, err := a.Wrap(ctx, Ref{Name: kem.Name}, make([]byte, 32), nil); return err },
		"revoke":    func() error { _, err := a.RevokeToken(ctx, revokeID); return err },
		"list": func() error {
			_, _, err := a.List(ctx, ListParams{Limit: 10})
			return err
		},
		"attest":    func() error { _, err := a.Attest(ctx, Ref{Name: k.Name}, "test"); return err },
		"scheduler": func() error { _, err := a.RunDue(ctx); return err },
	}
	for name, fn := range fns {
		if err := fn(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s without a store: %v, want ErrUnavailable", name, err)
		}
	}
	if n := st.Calls() - calls; n != 0 {
		t.Errorf("the refused operations made %d store calls, want 0", n)
	}

	// Fail open for verify and reads, with the age.
	clock.Advance(3 * time.Minute)
	res, err := a.Verify(ctx, Ref{Name: k.Name, Version: 1}, msg, s1.Parts, Options{})
	if err != nil || !res.Staleness.Stale || res.Staleness.Age != 3*time.Minute {
		t.Fatalf("verify without a store: %+v %v, want stale by 3m", res, err)
	}
	if _, err := a.Verify(ctx, Ref{Name: k.Name}, []byte("other"), s1.Parts, Options{}); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("a wrong signature without a store: %v", err)
	}
	errs, stale := a.VerifyBatch(ctx, []VerifyItem{{Ref: Ref{Name: k.Name}, Message: msg, Parts: s1.Parts}})
	if errs[0] != nil || stale.Age != 3*time.Minute {
		t.Fatalf("verify batch without a store: %v, %+v", errs, stale)
	}
	got, gs, err := a.GetCached(ctx, k.Name)
	if err != nil || got.Name != k.Name || !gs.Stale || gs.Age != 3*time.Minute {
		t.Fatalf("get without a store: %v %+v %v", got, gs, err)
	}
	if _, err := a.Verify(ctx, Ref{Name: hidden.Name}, msg, s1.Parts, Options{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("verify of a key not cached, without a store: %v", err)
	}
	if h := a.Health(); h.PastSoftTTL() || h.CacheAge != 3*time.Minute {
		t.Fatalf("3 minutes in: %+v", h)
	}
	clock.Advance(3 * time.Minute) // 6 minutes: past soft, before hard
	if _, err := a.Verify(ctx, Ref{Name: k.Name, Version: 1}, msg, s1.Parts, Options{}); err != nil {
		t.Fatalf("verify past the soft TTL: %v", err)
	}
	if h := a.Health(); !h.PastSoftTTL() || h.PastHardTTL() {
		t.Fatalf("6 minutes in: %+v", h)
	}
	// The soft TTL is logged once per outage, by the probe.
	const softMsg = "longer than the verify cache's soft TTL"
	for start := time.Now(); !strings.Contains(logs.String(), softMsg); time.Sleep(2 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the soft TTL was never logged:\n%s", logs)
		}
	}
	time.Sleep(50 * time.Millisecond) // ten more probes
	if n := strings.Count(logs.String(), softMsg); n != 1 {
		t.Fatalf("the soft TTL was logged %d times, want once:\n%s", n, logs)
	}
	clock.Advance(5 * time.Minute) // 11 minutes: past hard
	if _, err := a.Verify(ctx, Ref{Name: k.Name, Version: 1}, msg, s1.Parts, Options{}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("verify past the hard TTL: %v", err)
	}
	if _, err := a.Get(ctx, k.Name); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("get past the hard TTL: %v", err)
	}
	if h := a.Health(); !h.PastHardTTL() {
		t.Fatalf("11 minutes in: %+v", h)
	}

	// Meanwhile another node rotated the key (on a part of the store a
	// could not reach): a must catch up when the store is back.
	if _, err := other.Rotate(ctx, k.Name, ""); err != nil {
		t.Fatal(err)
	}
	st.SetDown(false)
	waitHealth(t, a, true)
	s2 := sign(t, a, Ref{Name: k.Name}, msg)
	if s2.Version != 2 {
		t.Fatalf("after the outage a signs with v%d, want v2 (the rotation made meanwhile)", s2.Version)
	}
	res, err = a.Verify(ctx, Ref{Name: k.Name, Version: 1}, msg, s1.Parts, Options{})
	if err != nil || res.Staleness.Stale {
		t.Fatalf("verify after the outage: %+v %v", res, err)
	}
	if h := a.Health(); !h.Healthy || h.CacheAge != 0 || h.Reason != "" {
		t.Fatalf("after the outage: %+v", h)
	}
	out := logs.String()
	for _, want := range []string{"the key store is unavailable", "the key store is available again"} {
		if strings.Count(out, want) != 1 {
			t.Errorf("log: %q %d times, want once:\n%s", want, strings.Count(out, want), out)
		}
	}
	if strings.Contains(out, k.Name) || strings.Contains(out, k.UUID) {
		t.Errorf("the health log names a key:\n%s", out)
	}
}

// TestFeedResync: when only the change feed breaks (the store answers), the
// keystore is unhealthy until it has a new feed and has re-read its cache;
// a change made while no feed was open is then in the cache, whether the
// cache is re-read key by key or by listing.
func TestFeedResync(t *testing.T) {
	for _, n := range []int{1, resyncGetMax + 2} {
		t.Run(fmt.Sprint(n, " keys"), func(t *testing.T) {
			ctx := context.Background()
			st := newSwitchStore()
			kek := newKEK(t)
			clock := &fakeClock{t: time.Now()}
			a := openHealthKS(t, st, kek, clock, DefaultCacheTTL)
			other := openKS(t, st.Store, kek)
			var keys []*Key
			for range n {
				k := create(t, a, "")
				sign(t, a, Ref{Name: k.Name}, []byte("warm"))
				keys = append(keys, k)
			}
			st.HoldFeeds(true)
			h := waitHealth(t, a, false)
			if !strings.Contains(h.Reason, "change feed") {
				t.Fatalf("reason %q does not name the feed", h.Reason)
			}
			// Key reads still work: Get reads the store, Verify the cache.
			if _, err := other.Rotate(ctx, keys[0].Name, ""); err != nil {
				t.Fatal(err)
			}
			if got, err := a.Get(ctx, keys[0].Name); err != nil || got.Current != 2 {
				t.Fatalf("get with the feed down: %v %v", got, err)
			}
			if _, err := other.Rotate(ctx, keys[n-1].Name, ""); err != nil {
				t.Fatal(err)
			}
			st.HoldFeeds(false)
			waitHealth(t, a, true)
			want := map[string]uint32{keys[0].Name: 2, keys[n-1].Name: 2}
			if n == 1 {
				want[keys[0].Name] = 3 // rotated twice
			}
			for name, v := range want {
				if s := sign(t, a, Ref{Name: name}, []byte("m")); s.Version != v {
					t.Fatalf("%s: signs with v%d after the resync, want v%d", name, s.Version, v)
				}
			}
		})
	}
}

// TestSignMakesNoStoreCall: with the key cached and the store healthy, the
// sign path does not touch the store.
func TestSignMakesNoStoreCall(t *testing.T) {
	st := newSwitchStore()
	ks := openHealthKS(t, st, newKEK(t), &fakeClock{t: time.Now()}, DefaultCacheTTL)
	k := create(t, ks, "")
	sign(t, ks, Ref{Name: k.Name}, []byte("warm"))
	before := st.Calls()
	for range 100 {
		sign(t, ks, Ref{Name: k.Name}, []byte("m"))
	}
	if n := st.Calls() - before; n != 0 {
		t.Fatalf("100 warm signatures made %d store calls, want 0", n)
	}
}

// silentFeedStore is a store whose feeds never deliver anything (and close
// only when their context ends): a node whose cache is as far behind as it
// can be.
type silentFeedStore struct{ storage.Store }

func (silentFeedStore) Watch(ctx context.Context, prefix string) (<-chan storage.Event, error) {
	ch := make(chan storage.Event)
	context.AfterFunc(ctx, func() { close(ch) })
	return ch, nil
}

// TestGetIsLinearizable: Get reads the store, so a rotation acknowledged on
// another node is seen at once even by a node whose feed lags behind.
func TestGetIsLinearizable(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	kek := newKEK(t)
	lagging := openKS(t, silentFeedStore{st}, kek)
	other := openKS(t, st, kek)
	k := create(t, other, "")
	if got, err := lagging.Get(ctx, k.Name); err != nil || got.Current != 1 {
		t.Fatalf("get: %v %v", got, err)
	}
	for want := uint32(2); want <= 4; want++ {
		if _, err := other.Rotate(ctx, k.Name, ""); err != nil {
			t.Fatal(err)
		}
		got, st, err := lagging.GetCached(ctx, k.Name)
		if err != nil || got.Current != want || st.Stale {
			t.Fatalf("get after rotation %d on another node: %v %+v %v", want, got, st, err)
		}
	}
	// And Get refreshed the cache: the lagging node signs with the newest.
	if s := sign(t, lagging, Ref{Name: k.Name}, []byte("m")); s.Version != 4 {
		t.Fatalf("after Get the lagging node signs with v%d, want v4", s.Version)
	}
}

// TestConcurrentRotationsTwoNodes: two keystores on one store rotating the
// same key at once produce consecutive versions, each once, none lost; the
// same op_id sent to both has one effect and one answer.
func TestConcurrentRotationsTwoNodes(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	kek := newKEK(t)
	nodes := []*Keystore{openKS(t, st, kek), openKS(t, st, kek)}
	k := create(t, nodes[0], "")
	const each = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	for _, ks := range nodes {
		for range 2 {
			wg.Go(func() {
				for range each {
					res, err := ks.Rotate(ctx, k.Name, "")
					if err != nil {
						t.Errorf("rotate: %v", err)
						return
					}
					mu.Lock()
					seen[res.KID]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	got, err := nodes[1].Get(ctx, k.Name)
	if err != nil {
		t.Fatal(err)
	}
	const want = 1 + 4*each
	if got.Current != want || len(got.Versions) != want || len(seen) != 4*each {
		t.Fatalf("current v%d, %d versions, %d distinct answers; want v%d, %d, %d", got.Current, len(got.Versions), len(seen), want, want, 4*each)
	}
	for kid, n := range seen {
		if n != 1 {
			t.Errorf("%s answered %d times", kid, n)
		}
	}
	for i, v := range got.Versions {
		if v.Number != uint32(i+1) {
			t.Fatalf("version %d is numbered %d", i+1, v.Number)
		}
	}

	// One op_id, both nodes at once, several times each: one rotation.
	results := make(chan RotateResult, 8)
	for i := range 8 {
		wg.Go(func() {
			res, err := nodes[i%2].Rotate(ctx, k.Name, "same-op")
			if err != nil {
				t.Errorf("rotate with an op_id: %v", err)
				return
			}
			results <- res
		})
	}
	wg.Wait()
	close(results)
	first, ok := <-results
	if !ok {
		t.Fatal("no rotation answered")
	}
	for r := range results {
		if r != first {
			t.Fatalf("one op_id answered %+v and %+v", first, r)
		}
	}
	if got, _ := nodes[0].Get(ctx, k.Name); got.Current != want+1 {
		t.Fatalf("one op_id from two nodes: current v%d, want v%d (one effect)", got.Current, want+1)
	}
}

func TestParseCacheTTL(t *testing.T) {
	for in, want := range map[string]CacheTTL{
		"5m":          {5 * time.Minute, 10 * time.Minute},
		"5m,10m":      {5 * time.Minute, 10 * time.Minute},
		"1s":          {time.Second, 2 * time.Second},
		"30s,30s":     {30 * time.Second, 30 * time.Second},
		" 1m , 1h ":   {time.Minute, time.Hour},
		"168h":        {168 * time.Hour, 168 * time.Hour}, // hard capped at the maximum
		"5m0s,10m0s":  {5 * time.Minute, 10 * time.Minute},
		"1h30m,2h45m": {90 * time.Minute, 165 * time.Minute},
	} {
		got, err := ParseCacheTTL(in)
		if err != nil || got != want {
			t.Errorf("ParseCacheTTL(%q) = %v, %v; want %v", in, got, err, want)
		}
		if err := got.Check(); err != nil {
			t.Errorf("ParseCacheTTL(%q) does not pass Check: %v", in, err)
		}
	}
	for _, in := range []string{"", "5", "0", "-5m", "500ms", "5m,", ",5m", "10m,5m", "5m,10m,20m", "169h", "5m,169h", "five minutes"} {
		if got, err := ParseCacheTTL(in); !errors.Is(err, ErrCacheTTL) {
			t.Errorf("ParseCacheTTL(%q) = %v, %v; want ErrCacheTTL", in, got, err)
		}
	}
	if DefaultCacheTTL.String() != "5m0s,10m0s" {
		t.Errorf("default TTL prints as %q", DefaultCacheTTL)
	}
}

// FuzzParseCacheTTL: a value that parses passes Check, and its String
// parses back to it; one that does not is ErrCacheTTL.
func FuzzParseCacheTTL(f *testing.F) {
	for _, s := range []string{"5m", "5m,10m", "30s,1h", "1s", "168h", "10m,5m", "5m,10m,1h", "", "0", "-1s", "1e3h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ttl, err := ParseCacheTTL(s)
		if err != nil {
			if !errors.Is(err, ErrCacheTTL) {
				t.Fatalf("ParseCacheTTL(%q): %v, not ErrCacheTTL", s, err)
			}
			return
		}
		if err := ttl.Check(); err != nil {
			t.Fatalf("ParseCacheTTL(%q) = %v, which fails Check: %v", s, ttl, err)
		}
		back, err := ParseCacheTTL(ttl.String())
		if err != nil || back != ttl {
			t.Fatalf("ParseCacheTTL(%q) = %v; its String %q parses to %v, %v", s, ttl, ttl.String(), back, err)
		}
	})
}
