package loadgen

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/server"
)

// Runs are short and nothing here checks a timing: only counts.
const (
	testDuration    = 300 * time.Millisecond
	testConcurrency = 8
)

// testServer is a served memory-store ron-kms on a loopback listener.
type testServer struct {
	url   string
	token string
	c     *client.Client
}

// target is the server as a Target, with a net/http client of its own.
func (s *testServer) target(t *testing.T) Target {
	hc := NewHTTPClient(testConcurrency)
	t.Cleanup(hc.CloseIdleConnections)
	return Target{Addr: s.url, Token: s.token, HTTPClient: hc}
}

func startServer(t *testing.T) *testServer {
	t.Helper()
	ctx := context.Background()
	cfg := server.Defaults()
	cfg.Store = "memory"
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.MaxInflight = 4 * testConcurrency
	srv, err := server.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	hc := NewHTTPClient(testConcurrency)
	t.Cleanup(hc.CloseIdleConnections)
	url := "http://" + ln.Addr().String()
	c, err := client.New(url, srv.AmnesiaAdminToken(), hc)
	if err != nil {
		t.Fatal(err)
	}
	return &testServer{url: url, token: srv.AmnesiaAdminToken(), c: c}
}

// opsTotal reads kms_ops_total{alg,op} from the server's /metrics (0 when
// absent).
func (s *testServer) opsTotal(t *testing.T, op, alg string) int64 {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	prefix := `kms_ops_total{alg="` + alg + `",op="` + op + `"} `
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return int64(f)
		}
	}
	return 0
}

func run(t *testing.T, s *testServer, cfg Config) Result {
	t.Helper()
	cfg.Duration, cfg.Concurrency = testDuration, testConcurrency
	p, err := Prepare(context.Background(), s.target(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p.Run(context.Background(), nil)
}

func checkClean(t *testing.T, r Result) {
	t.Helper()
	if r.ErrorTotal != 0 || len(r.Errors) != 0 {
		t.Errorf("errors: %v (total %d)", r.Errors, r.ErrorTotal)
	}
	if r.Requests == 0 || r.Items == 0 {
		t.Errorf("no work done: %d requests, %d items", r.Requests, r.Items)
	}
	if r.Latency.Count != r.Requests+r.ErrorTotal {
		t.Errorf("%d latencies for %d requests", r.Latency.Count, r.Requests)
	}
	if r.OpsPerSec <= 0 || r.RequestsPerSec <= 0 {
		t.Errorf("rates %v ops/s, %v req/s", r.OpsPerSec, r.RequestsPerSec)
	}
}

// TestSignCounts: one item per request, and the server counted exactly the
// signatures the engine did.
func TestSignCounts(t *testing.T) {
	s := startServer(t)
	r := run(t, s, Config{Op: "sign", Keys: 3})
	checkClean(t, r)
	if r.Items != r.Requests {
		t.Errorf("%d items for %d sign requests", r.Items, r.Requests)
	}
	if got := s.opsTotal(t, "sign", "ed25519"); got != r.Items {
		t.Errorf("server counted %d signatures, engine %d", got, r.Items)
	}
	if r.Mode != "service" || r.Batch != 1 || r.Keys != 3 || r.Alg != "ed25519" {
		t.Errorf("result header %+v", r)
	}
}

// TestSignBatchCounts: Batch items per request, each counted by the server.
func TestSignBatchCounts(t *testing.T) {
	s := startServer(t)
	const batch = 16
	r := run(t, s, Config{Op: "sign-batch", Batch: batch, Keys: 2, PayloadBytes: 100})
	checkClean(t, r)
	if r.Items != batch*r.Requests {
		t.Errorf("%d items for %d batch requests of %d", r.Items, r.Requests, batch)
	}
	if got := s.opsTotal(t, "sign_batch", "ed25519"); got != r.Items {
		t.Errorf("server counted %d batch signatures, engine %d", got, r.Items)
	}
	if got := s.opsTotal(t, "sign", "ed25519"); got != 0 {
		t.Errorf("server counted %d single signatures in a batch run", got)
	}
}

// TestEveryServiceOp runs each operation with its default algorithm through
// both drivers and expects no errors, and as many items as the server
// counted for the operations it counts.
func TestEveryServiceOp(t *testing.T) {
	s := startServer(t)
	for _, driver := range []string{DriverLean, DriverNetHTTP} {
		for _, op := range Ops() {
			t.Run(driver+"/"+op, func(t *testing.T) {
				r := run(t, s, Config{Op: op, Batch: 4, Keys: 2, Driver: driver})
				checkClean(t, r)
				if r.Driver != driver {
					t.Errorf("driver %q", r.Driver)
				}
				if pr := r.PerOp[op]; pr.Requests != r.Requests || pr.Items != r.Items || pr.Latency != r.Latency {
					t.Errorf("per_op %+v differs from the totals %+v", pr, r)
				}
			})
		}
	}
}

// TestChunkedBatches: 64-item batch answers are over 2 KB, which net/http's
// server sends chunked; the lean driver still counts every item, and the
// server agrees.
func TestChunkedBatches(t *testing.T) {
	s := startServer(t)
	r := run(t, s, Config{Op: "sign-batch", Batch: 64, Keys: 3, Driver: DriverLean})
	checkClean(t, r)
	if r.Items != 64*r.Requests {
		t.Errorf("%d items for %d batch requests of 64", r.Items, r.Requests)
	}
	if got := s.opsTotal(t, "sign_batch", "ed25519"); got != r.Items {
		t.Errorf("server counted %d batch signatures, engine %d", got, r.Items)
	}
	r = run(t, s, Config{Op: "verify-batch", Batch: 64, Keys: 3, Driver: DriverLean})
	checkClean(t, r)
	if r.Items != 64*r.Requests {
		t.Errorf("%d items for %d verify batches of 64", r.Items, r.Requests)
	}
	if got := s.opsTotal(t, "verify_batch", "ed25519"); got != r.Items {
		t.Errorf("server counted %d batch verifications, engine %d", got, r.Items)
	}
}

// TestVerifyFailed: a signature that does not verify is a 200 answer with
// ok false, counted as VerifyFailed by both drivers, singly and in batches.
func TestVerifyFailed(t *testing.T) {
	s := startServer(t)
	for _, driver := range []string{DriverLean, DriverNetHTTP} {
		for _, op := range []string{"verify", "verify-batch"} {
			t.Run(driver+"/"+op, func(t *testing.T) {
				p, err := Prepare(context.Background(), s.target(t),
					Config{Op: op, Batch: 2, Keys: 2, Driver: driver, Concurrency: testConcurrency, Duration: testDuration})
				if err != nil {
					t.Fatal(err)
				}
				o := p.ops[0]
				o.sigs[0], o.sigs[1] = o.sigs[1], o.sigs[0] // each key gets the other's signature
				r := p.Run(context.Background(), nil)
				if r.Items != 0 || r.Errors[codeVerifyFailed] == 0 || len(r.Errors) != 1 {
					t.Errorf("%d items, errors %v: want VerifyFailed only", r.Items, r.Errors)
				}
				if r.Requests == 0 {
					t.Error("answered requests not counted")
				}
			})
		}
	}
}

// TestErrorsByCode: a verify of an unknown kid is counted as NotFound, once
// per request, and nothing is counted as done.
func TestErrorsByCode(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	p, err := Prepare(ctx, s.target(t), Config{Op: "verify", Concurrency: testConcurrency, Duration: testDuration})
	if err != nil {
		t.Fatal(err)
	}
	kids := p.ops[0].kids
	kids[0] = kids[0][:strings.LastIndex(kids[0], "/")+1] + "00000000-0000-4000-8000-000000000000#v1"
	r := p.Run(ctx, nil)
	if r.Errors[string(api.CodeNotFound)] == 0 {
		t.Fatalf("no NotFound counted: %v", r.Errors)
	}
	if r.ErrorTotal != r.Errors[string(api.CodeNotFound)] || len(r.Errors) != 1 {
		t.Errorf("errors %v, total %d: want NotFound only", r.Errors, r.ErrorTotal)
	}
	if r.Requests != 0 || r.Items != 0 {
		t.Errorf("%d requests and %d items counted as done", r.Requests, r.Items)
	}
	if r.Latency.Count != r.ErrorTotal {
		t.Errorf("%d latencies for %d failed requests", r.Latency.Count, r.ErrorTotal)
	}
}

func TestCodeOf(t *testing.T) {
	if got := codeOf(&client.Error{Status: 404, Body: api.ErrorBody{Code: api.CodeNotFound}}); got != "NotFound" {
		t.Errorf("contract error: %q", got)
	}
	if got := codeOf(errors.New("dial tcp: connection refused")); got != "transport" {
		t.Errorf("transport error: %q", got)
	}
}

// TestTransportErrors: a server that is gone is counted as "transport", by
// both drivers.
func TestTransportErrors(t *testing.T) {
	s := startServer(t)
	for _, driver := range []string{DriverLean, DriverNetHTTP} {
		t.Run(driver, func(t *testing.T) {
			p, err := Prepare(context.Background(), s.target(t),
				Config{Op: "sign", Concurrency: 2, Duration: 50 * time.Millisecond, Driver: driver})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ln.Close()
			p.dial, p.base = addr, "http://"+addr
			r := p.Run(context.Background(), nil)
			if r.Errors["transport"] == 0 || r.Requests != 0 {
				t.Errorf("errors %v, %d requests", r.Errors, r.Requests)
			}
		})
	}
}

// TestRaw: every operation measured in-process does some work, without
// errors.
func TestRaw(t *testing.T) {
	for _, op := range Ops() {
		t.Run(op, func(t *testing.T) {
			var ticks int
			r, err := RunRaw(context.Background(), Config{Op: op, Batch: 4, Concurrency: 2, Duration: 100 * time.Millisecond},
				func(time.Duration, int64) { ticks++ })
			if err != nil {
				t.Fatal(err)
			}
			checkClean(t, r)
			if r.Mode != "raw" {
				t.Errorf("mode %q", r.Mode)
			}
			if ticks == 0 {
				t.Error("progress never called")
			}
		})
	}
}

func TestConfigChecks(t *testing.T) {
	for _, cfg := range []Config{
		{Op: "frobnicate"},
		{Op: "sign", Alg: "x25519"},
		{Op: "wrap", Alg: "ed25519"},
		{Op: "sign", Alg: "rsa"},
		{Op: "sign-batch", Batch: api.MaxBatch + 1},
		{Op: "wrap", PayloadBytes: api.MaxDataKey + 1},
		{Op: "sign", Concurrency: -1},
		{Op: "sign", Mix: []OpWeight{{"verify", 1}}},
		{Mix: []OpWeight{{"sign", 1}, {"sign", 2}}},
		{Mix: []OpWeight{{"sign", 0}}},
		{Mix: []OpWeight{{"sign", 1}, {"wrap", 1}}, PayloadBytes: api.MaxDataKey + 1},
		{Op: "sign", Rate: -1},
		{Op: "sign", KeySpread: "zigzag"},
		{Op: "sign", KIDs: []string{"a/b/ed25519/0190a0b0-0000-7000-8000-000000000001"}},
	} {
		if _, err := RunRaw(context.Background(), cfg, nil); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

// TestPercentiles checks nearest-rank percentiles on a known set: 1..100 ms
// shuffled, one sample, none.
func TestPercentiles(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	rand.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
	got := Percentiles(s)
	want := Latency{Count: 100, P50: 50 * time.Millisecond, P95: 95 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("1..100: got %+v, want %+v", got, want)
	}
	// 1000 samples: 999 of 1 µs and one of 1 s; p99 is still 1 µs.
	s = make([]time.Duration, 1000)
	for i := range s {
		s[i] = time.Microsecond
	}
	s[500] = time.Second
	got = Percentiles(s)
	if got.P99 != time.Microsecond || got.Max != time.Second || got.P50 != time.Microsecond {
		t.Errorf("outlier: %+v", got)
	}
	if got := Percentiles([]time.Duration{7}); got != (Latency{Count: 1, P50: 7, P95: 7, P99: 7, Max: 7}) {
		t.Errorf("one sample: %+v", got)
	}
	if got := Percentiles(nil); got != (Latency{}) {
		t.Errorf("none: %+v", got)
	}
}
