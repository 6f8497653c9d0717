// Package loadtest holds the HTTP load benchmarks of ron-kms: sign and
// verify over loopback against a real server (internal/server), compared
// with raw crypto/ed25519 measured in the same run. It has no non-test code.
package loadtest

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/server"
)

// The HTTP figures use httpClients concurrent keep-alive clients; the
// baseline is crypto/ed25519.Sign on rawWorkers goroutines. The figures are
// ratios for BENCHMARKS.md; nothing here fails on timing.

const (
	httpClients = 64
	rawWorkers  = 2
)

// loadPayload is the payload_b3 of every request: a 32-byte digest in hex.
var loadPayload = strings.Repeat("ab", 32)

// target is a served ron-kms with one Ed25519 key and a client for it.
type target struct {
	c   *client.Client
	kid string
	sig []api.Signature // a valid signature of loadPayload under kid
}

// startTarget opens a server with the given store ("memory" or "bolt" in a
// temporary directory), serves it on a 127.0.0.1:0 listener and creates a
// key. Everything is torn down with tb's cleanups.
func startTarget(tb testing.TB, store string) *target {
	tb.Helper()
	return startTargetWith(tb, store, nil)
}

// startTargetWith is startTarget with a last say on the configuration.
func startTargetWith(tb testing.TB, store string, configure func(*server.Config)) *target {
	tb.Helper()
	ctx := context.Background()
	cfg := server.Defaults()
	cfg.Store = store
	cfg.DataDir = tb.TempDir()
	cfg.Listen = "127.0.0.1:0"
	// Every client is in flight at once: measure throughput, not the
	// in-flight limit (whose default may be lower than httpClients).
	cfg.MaxInflight = 2 * httpClients
	if configure != nil {
		configure(&cfg)
	}
	srv, err := server.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	token := srv.AmnesiaAdminToken()
	if store != "memory" {
		b, err := os.ReadFile(filepath.Join(cfg.DataDir, server.AdminTokenFile))
		if err != nil {
			tb.Fatal(err)
		}
		token = string(b)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	tb.Cleanup(func() {
		stop()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Errorf("serve: %v", err)
		}
	})

	tr := &http.Transport{
		MaxIdleConns:        2 * httpClients,
		MaxIdleConnsPerHost: 2 * httpClients,
		IdleConnTimeout:     time.Minute,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	// One request per call, as these figures have always measured: the
	// client's batching would turn 64 callers into a few batch requests.
	c, err := client.New("http://"+ln.Addr().String(), token, &http.Client{Transport: tr, Timeout: 30 * time.Second}, client.WithoutBatching())
	if err != nil {
		tb.Fatal(err)
	}
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "bench", Purpose: "load", Alg: "ed25519"})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := c.Sign(ctx, api.SignRequest{KID: k.KID, PayloadB3: loadPayload})
	if err != nil {
		tb.Fatal(err)
	}
	t := &target{c: c, kid: k.KID, sig: s.Sigs}
	// Open the keep-alive connections and fill the caches before timing.
	if _, _, err := drive(httpClients, 4*httpClients, 0, t.sign); err != nil {
		tb.Fatal(err)
	}
	return t
}

func (t *target) sign() error {
	_, err := t.c.Sign(context.Background(), api.SignRequest{KID: t.kid, PayloadB3: loadPayload})
	return err
}

func (t *target) verify() error {
	r, err := t.c.Verify(context.Background(), api.VerifyRequest{KID: t.kid, PayloadB3: loadPayload, Sigs: t.sig})
	if err == nil && !r.OK {
		err = errors.New("verify: valid signature refused")
	}
	return err
}

// rawSigner returns an op that signs loadPayload's bytes with
// crypto/ed25519 and a key expanded once.
func rawSigner() func() error {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	msg, _ := hex.DecodeString(loadPayload)
	return func() error {
		ed25519.Sign(priv, msg)
		return nil
	}
}

// drive calls op from workers goroutines until n calls have been made (when
// n > 0) or d has passed (when d > 0), and returns the number of calls made,
// the elapsed time and the first error.
func drive(workers, n int, d time.Duration, op func() error) (int, time.Duration, error) {
	var (
		calls    atomic.Int64
		failed   atomic.Bool
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				if n > 0 && calls.Add(1) > int64(n) {
					return
				}
				if d > 0 && time.Now().After(deadline) {
					return
				}
				if err := op(); err != nil {
					once.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
				if n <= 0 {
					calls.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	done := int(calls.Load())
	if n > 0 {
		done = min(done, n)
	}
	return done, elapsed, firstErr
}

// benchDrive runs b.N calls of op on workers goroutines and reports ops/s.
func benchDrive(b *testing.B, workers int, op func() error) {
	b.ResetTimer()
	n, elapsed, err := drive(workers, b.N, 0, op)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "ops/s")
}

var loadStores = []string{"memory", "bolt"}

// BenchmarkRawSign2Goroutines is the baseline: crypto/ed25519.Sign on two
// goroutines (one per core of the reference machine).
func BenchmarkRawSign2Goroutines(b *testing.B) {
	benchDrive(b, rawWorkers, rawSigner())
}

// BenchmarkHTTPSign64 is POST /v1/kms/sign from 64 keep-alive clients.
func BenchmarkHTTPSign64(b *testing.B) {
	for _, store := range loadStores {
		b.Run(store, func(b *testing.B) {
			benchDrive(b, httpClients, startTarget(b, store).sign)
		})
	}
}

// BenchmarkHTTPVerify64 is POST /v1/kms/verify from 64 keep-alive clients.
func BenchmarkHTTPVerify64(b *testing.B) {
	for _, store := range loadStores {
		b.Run(store, func(b *testing.B) {
			benchDrive(b, httpClients, startTarget(b, store).verify)
		})
	}
}

// TestLoadRatios measures, in interleaved rounds, raw two-goroutine signing
// and HTTP sign and verify with 64 clients, and logs each HTTP throughput as
// a ratio of the raw one from the same round. It runs only with
// RON_KMS_LOADTEST=1 (RON_KMS_LOADTEST_ROUNDS, default 3, and
// RON_KMS_LOADTEST_DURATION, default 2s per measurement) and never fails on
// timing.
func TestLoadRatios(t *testing.T) {
	if os.Getenv("RON_KMS_LOADTEST") != "1" {
		t.Skip("set RON_KMS_LOADTEST=1 to run the HTTP load test")
	}
	rounds := 3
	if s := os.Getenv("RON_KMS_LOADTEST_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 {
			t.Fatalf("RON_KMS_LOADTEST_ROUNDS: %q is not a positive number", s)
		}
	}
	dur := 2 * time.Second
	if s := os.Getenv("RON_KMS_LOADTEST_DURATION"); s != "" {
		var err error
		if dur, err = time.ParseDuration(s); err != nil || dur <= 0 {
			t.Fatalf("RON_KMS_LOADTEST_DURATION: %q is not a positive duration", s)
		}
	}
	targets := map[string]*target{}
	for _, store := range loadStores {
		targets[store] = startTarget(t, store)
	}
	measure := func(workers int, op func() error) float64 {
		n, elapsed, err := drive(workers, 0, dur, op)
		if err != nil {
			t.Fatal(err)
		}
		return float64(n) / elapsed.Seconds()
	}
	raw := rawSigner()
	t.Logf("%d clients, %v per measurement; ratio = HTTP ops/s ÷ raw ops/s of the same round", httpClients, dur)
	t.Logf("%-5s %-14s %11s %11s %7s", "round", "op", "HTTP ops/s", "raw ops/s", "ratio")
	for r := 1; r <= rounds; r++ {
		base := measure(rawWorkers, raw)
		for _, store := range loadStores {
			tg := targets[store]
			for _, m := range []struct {
				name string
				op   func() error
			}{{"sign", tg.sign}, {"verify", tg.verify}} {
				got := measure(httpClients, m.op)
				t.Logf("%-5d %-14s %11.0f %11.0f %7.3f", r, m.name+"/"+store, got, base, got/base)
			}
		}
	}
}
