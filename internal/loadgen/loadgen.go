// Package loadgen is the engine of `ron-kms bench`: it drives a running
// ron-kms server with one operation from many keep-alive clients for a fixed
// duration, or measures the same algorithm in-process with no service (raw
// mode), and reports throughput, exact request latency percentiles and
// errors by contract code.
//
// Everything is bounded: every worker stops starting requests once the
// duration has passed, and the engine talks only to the client it is given.
// Nothing here fails on timing; the figures are for people.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ron-kms/ron-kms/client"
)

// Config selects what to measure. The zero value of each field means its
// default.
type Config struct {
	// Op is one of Ops(): sign, verify, sign-batch, verify-batch, wrap,
	// unwrap, encrypt.
	Op string
	// Alg is the key algorithm; default: ed25519 for signature operations,
	// mlkem768-x25519 for wrap and unwrap, aes-256-gcm for encrypt.
	Alg string
	// PayloadBytes > 0 signs a random message_b64 of that many bytes; 0 signs
	// a 32-byte payload_b3 digest. For wrap, unwrap and encrypt it is the
	// size of the data key or plaintext (default DefaultDataBytes).
	PayloadBytes int
	// Batch is the number of items of a sign-batch or verify-batch request
	// (default DefaultBatch, at most api.MaxBatch). Other operations have one
	// item per request.
	Batch int
	// Concurrency is the number of workers: keep-alive clients against a
	// service (default DefaultConcurrency), goroutines in raw mode (default
	// runtime.GOMAXPROCS).
	Concurrency int
	// Duration is how long workers start new requests (default
	// DefaultDuration).
	Duration time.Duration
	// Keys is the number of keys created first; requests are spread over
	// them round robin (default 1).
	Keys int
	// Tenant and Purpose name the created keys (default "bench", "load").
	Tenant, Purpose string
}

// Defaults of Config.
const (
	DefaultBatch       = 64
	DefaultConcurrency = 64
	DefaultDuration    = 10 * time.Second
	DefaultDataBytes   = 32
)

// Progress is called about ten times a second during a run with the time
// elapsed and the requests completed so far (successful or not). It must
// return quickly.
type Progress func(elapsed time.Duration, requests int64)

// Result is what a run measured. Requests and Items count successful
// requests and successful items (a batch request counts once in Requests and
// once per successful item in Items; other requests count once in each).
// Latency covers every completed request, failed ones included. Errors
// counts failures by contract code (client.Error Body.Code, or the item
// error's code within a batch), "transport" for a request that got no
// contract answer, and "VerifyFailed" for a signature the service or the raw
// scheme refused.
type Result struct {
	Mode           string           `json:"mode"` // "service" or "raw"
	Op             string           `json:"op"`
	Alg            string           `json:"alg"`
	PayloadBytes   int              `json:"payload_bytes"`
	Batch          int              `json:"batch"`
	Concurrency    int              `json:"concurrency"`
	Keys           int              `json:"keys"`
	Elapsed        time.Duration    `json:"elapsed_ns"`
	Requests       int64            `json:"requests"`
	Items          int64            `json:"items"`
	OpsPerSec      float64          `json:"ops_per_sec"`
	RequestsPerSec float64          `json:"requests_per_sec"`
	Latency        Latency          `json:"latency"`
	Errors         map[string]int64 `json:"errors"`
	ErrorTotal     int64            `json:"error_total"`
}

// Latency holds exact percentiles (nearest rank) of request latencies.
type Latency struct {
	Count int64         `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P95   time.Duration `json:"p95_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Percentiles computes the nearest-rank p50, p95, p99 and max of samples,
// which it sorts in place. The zero Latency for no samples.
func Percentiles(samples []time.Duration) Latency {
	n := len(samples)
	if n == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	rank := func(p int) time.Duration {
		// Nearest rank: the smallest sample with at least p% of the
		// samples at or below it, ceil(p·n/100) counted from one.
		r := (p*n + 99) / 100
		return samples[max(r, 1)-1]
	}
	return Latency{Count: int64(n), P50: rank(50), P95: rank(95), P99: rank(99), Max: samples[n-1]}
}

// NewHTTPClient returns an http.Client for concurrency keep-alive workers
// against one host: enough idle connections per host that no worker
// reconnects between requests.
func NewHTTPClient(concurrency int) *http.Client {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // the bench targets the given address only
			MaxIdleConns:        2 * concurrency,
			MaxIdleConnsPerHost: 2 * concurrency,
			IdleConnTimeout:     time.Minute,
		},
		Timeout: 30 * time.Second,
	}
}

// outcome is what one request did: whether it was answered with success
// (ok), how many of its items succeeded, and the codes of those that failed
// (a request-level failure is one code and ok false).
type outcome struct {
	ok    bool
	items int
	codes []string
}

// failed is the outcome of a request that failed as a whole.
func failed(err error) outcome { return outcome{codes: []string{codeOf(err)}} }

// call performs one request (or one raw operation) for worker w on its n-th
// call.
type call func(ctx context.Context, w, n int) outcome

// tally is one worker's private record; workers never share one.
type tally struct {
	requests, items int64
	lat             []time.Duration
	errs            map[string]int64
}

// latencyPrealloc is each worker's initial latency capacity: a worker that
// makes more requests grows its slice (amortized, rare).
const latencyPrealloc = 1 << 14

// drive runs fn on workers goroutines until d has passed and gathers the
// tallies into r. progress may be nil.
func drive(ctx context.Context, workers int, d time.Duration, fn call, progress Progress, r *Result) {
	var (
		done  atomic.Int64
		wg    sync.WaitGroup
		tally = make([]tally, workers)
	)
	start := time.Now()
	deadline := start.Add(d)
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	if progress != nil {
		pwg.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					progress(time.Since(start), done.Load())
				}
			}
		})
	}
	for w := range workers {
		wg.Go(func() {
			tl := &tally[w]
			tl.lat = make([]time.Duration, 0, latencyPrealloc)
			tl.errs = map[string]int64{}
			for n := 0; ctx.Err() == nil; n++ {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				o := fn(ctx, w, n)
				tl.lat = append(tl.lat, time.Since(t0))
				done.Add(1)
				tl.items += int64(o.items)
				if o.ok {
					tl.requests++
				}
				for _, c := range o.codes {
					tl.errs[c]++
				}
			}
		})
	}
	wg.Wait()
	r.Elapsed = time.Since(start)
	close(stop)
	pwg.Wait()
	if progress != nil {
		progress(r.Elapsed, done.Load())
	}

	var all []time.Duration
	r.Errors = map[string]int64{}
	for i := range tally {
		tl := &tally[i]
		r.Requests += tl.requests
		r.Items += tl.items
		all = append(all, tl.lat...)
		for c, k := range tl.errs {
			r.Errors[c] += k
			r.ErrorTotal += k
		}
	}
	r.Latency = Percentiles(all)
	if s := r.Elapsed.Seconds(); s > 0 {
		r.OpsPerSec = float64(r.Items) / s
		r.RequestsPerSec = float64(r.Requests) / s
	}
}

// codeOf names err for Result.Errors: its contract code, else "transport".
func codeOf(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return string(ce.Body.Code)
	}
	return "transport"
}

// codeVerifyFailed counts signatures that did not verify.
const codeVerifyFailed = "VerifyFailed"

// normalize fills in the defaults of c and checks it against the operation
// table. raw selects the raw-mode concurrency default.
func (c Config) normalize(raw bool, rawConcurrency int) (Config, *opSpec, error) {
	spec, ok := opTable[c.Op]
	if !ok {
		return c, nil, fmt.Errorf("loadgen: unknown op %q (want one of %v)", c.Op, Ops())
	}
	if c.Alg == "" {
		c.Alg = spec.defaultAlg
	}
	if err := spec.check(c.Alg); err != nil {
		return c, nil, err
	}
	if !spec.batched {
		c.Batch = 1
	} else if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.Batch < 1 || c.Batch > maxBatch {
		return c, nil, fmt.Errorf("loadgen: batch %d is outside 1..%d", c.Batch, maxBatch)
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
		if raw {
			c.Concurrency = rawConcurrency
		}
	}
	if c.Concurrency < 1 {
		return c, nil, fmt.Errorf("loadgen: concurrency %d is not positive", c.Concurrency)
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Duration < 0 {
		return c, nil, fmt.Errorf("loadgen: duration %v is negative", c.Duration)
	}
	if c.Keys == 0 {
		c.Keys = 1
	}
	if c.Keys < 1 || c.Keys > maxKeys {
		return c, nil, fmt.Errorf("loadgen: keys %d is outside 1..%d", c.Keys, maxKeys)
	}
	if c.PayloadBytes < 0 {
		return c, nil, fmt.Errorf("loadgen: payload bytes %d is negative", c.PayloadBytes)
	}
	if !spec.signature && c.PayloadBytes == 0 {
		c.PayloadBytes = DefaultDataBytes
	}
	if lim := spec.maxPayload; c.PayloadBytes > lim {
		return c, nil, fmt.Errorf("loadgen: %s payload of %d bytes is over the limit of %d", c.Op, c.PayloadBytes, lim)
	}
	if c.Tenant == "" {
		c.Tenant = "bench"
	}
	if c.Purpose == "" {
		c.Purpose = "load"
	}
	return c, spec, nil
}

// maxKeys bounds --keys: key creation is part of the setup, not the load.
const maxKeys = 10000

func (c Config) result(mode string) Result {
	return Result{Mode: mode, Op: c.Op, Alg: c.Alg, PayloadBytes: c.PayloadBytes,
		Batch: c.Batch, Concurrency: c.Concurrency, Keys: c.Keys}
}

// Ops returns the operation names, sorted.
func Ops() []string {
	names := make([]string, 0, len(opTable))
	for n := range opTable {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
