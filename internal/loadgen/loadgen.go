// Package loadgen is the engine of `ron-kms bench`: it drives a running
// ron-kms server with one operation, or a weighted mix of them, from many
// keep-alive clients for a fixed duration, closed loop or paced at a target
// rate, or measures the same algorithms in-process with no service (raw
// mode), and reports throughput, exact request latency percentiles and
// errors by contract code, in total and per operation.
//
// Everything is bounded: every worker stops starting requests once the
// duration has passed, and the engine talks only to the server it is given.
// Nothing here fails on timing; the figures are for people.
package loadgen

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/ron-kms/ron-kms/client"
)

// Config selects what to measure. The zero value of each field means its
// default.
type Config struct {
	// Op is one of Ops(): sign, verify, sign-batch, verify-batch, wrap,
	// unwrap, encrypt. Exactly one of Op and Mix is given.
	Op string
	// Mix runs several operations: each worker walks a fixed cycle in
	// which every operation appears in proportion to its weight (see
	// ParseMix). Exactly one of Op and Mix is given.
	Mix []OpWeight
	// Alg is the key algorithm of the operations of its kind (signature,
	// KEM, symmetric); the others use their default: ed25519 for signature
	// operations, mlkem768-x25519 for wrap and unwrap, aes-256-gcm for
	// encrypt. An Alg that fits no operation of the run is an error.
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
	// Rate > 0 paces the run at Rate requests per second across all
	// workers, latency counted from each request's scheduled time; 0 (the
	// default) runs closed loop: each worker sends its next request as soon
	// as the last one is answered. A paced worker has one request in
	// flight, so Concurrency must exceed Rate × latency for the rate to be
	// reached.
	Rate float64
	// Keys is the number of keys created first, per algorithm of the run;
	// requests are spread over them (default 1). With KIDs it is instead
	// the number of keys of the file that verify, verify-batch and unwrap
	// make fixtures for, and spread over.
	Keys int
	// KIDs are existing keys to use instead of creating any (service mode
	// only; see ReadKIDs): every operation spreads over the kids of its
	// algorithm, and every operation's algorithm must have some. Preparing
	// sends no request per kid, except one for each of at most Keys kids
	// of an operation that needs a fixture (a signature to verify, an
	// envelope to unwrap). The server is not asked whether the kids exist:
	// a missing one is counted as NotFound.
	KIDs []string
	// KeySpread is SpreadRoundRobin or SpreadRandom; default SpreadRandom
	// with KIDs, SpreadRoundRobin without.
	KeySpread string
	// Driver is DriverLean, DriverNetHTTP, DriverHTTP2 or DriverClient;
	// default DriverLean for an http:// address and DriverNetHTTP for
	// https://. Raw mode has none.
	Driver string
	// Conns is the number of HTTP/2 connections of DriverHTTP2 (default
	// DefaultConns); other drivers take none.
	Conns int
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

// MixOp is the Op of a Result of a mix.
const MixOp = "mix"

// Progress is called about ten times a second during a run with the time
// elapsed and the requests completed so far (successful or not). It must
// return quickly.
type Progress func(elapsed time.Duration, requests int64)

// Result is what a run measured. Requests and Items count successful
// requests and successful items (a batch request counts once in Requests and
// once per successful item in Items; other requests count once in each).
// Latency covers every completed request, failed ones included. Errors
// counts failures by contract code (the error envelope's code, or the item
// error's code within a batch), "transport" for a request that got no
// contract answer, and "VerifyFailed" for a signature the service or the raw
// scheme refused. PerOp holds the same figures for each operation of the
// run (one entry when there is no mix); the fields above it are the totals.
// For a mix, Op is MixOp and Alg is empty.
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

	// Mix is the run's mix; absent for a single operation.
	Mix []OpWeight `json:"mix,omitempty"`
	// Driver is DriverLean or DriverNetHTTP; absent in raw mode.
	Driver string `json:"driver,omitempty"`
	// KeySpread is how requests picked their keys: SpreadRoundRobin or
	// SpreadRandom.
	KeySpread string `json:"key_spread"`
	// TargetRate is Config.Rate: 0 for a closed-loop run. AchievedRate
	// counts every completed request, failed ones included, per second of
	// Elapsed. Missed counts the requests a paced run had due before its
	// end but never sent, its workers being too far behind.
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	Missed       int64   `json:"missed"`
	// Stages is what the run's requests spent in each stage inside the
	// server, from its /metrics before and after the run (see
	// StagesBetween); absent in raw mode or when the server has no
	// stage histogram. Before PerOp in the JSON, so that scripts
	// reading the last "p99_ns" of a line still read an operation's.
	Stages []StageLatency `json:"stages,omitempty"`
	// PerOp maps each operation of the run to its own figures.
	PerOp map[string]OpResult `json:"per_op"`
}

// OpResult is what a run measured of one of its operations, with the same
// meaning as the totals of Result.
type OpResult struct {
	Alg            string           `json:"alg"`
	PayloadBytes   int              `json:"payload_bytes"`
	Batch          int              `json:"batch"`
	Weight         int              `json:"weight"`
	Keys           int              `json:"keys"`
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
		Timeout: requestTimeout,
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

// opRun is one operation of a run with its own settings: Op, Alg,
// PayloadBytes and Batch of cfg are the operation's.
type opRun struct {
	cfg    Config
	spec   *opSpec
	weight int
	keys   int // how many keys it spreads over, once prepared
}

// normalize fills in the defaults of c and checks it against the operation
// table, and returns the operations of the run in mix order. raw selects the
// raw-mode concurrency default.
func (c Config) normalize(raw bool, rawConcurrency int) (Config, []opRun, error) {
	mix := c.Mix
	switch {
	case c.Op != "" && len(mix) > 0:
		return c, nil, errors.New("loadgen: give an op or a mix, not both")
	case len(mix) == 0:
		if _, ok := opTable[c.Op]; !ok {
			return c, nil, fmt.Errorf("loadgen: unknown op %q (want one of %v)", c.Op, Ops())
		}
		mix = []OpWeight{{Op: c.Op, Weight: 1}}
	default:
		if err := checkMix(mix); err != nil {
			return c, nil, err
		}
	}
	if c.Alg != "" {
		fits := false
		for _, m := range mix {
			fits = fits || opTable[m.Op].check(c.Alg) == nil
		}
		if !fits {
			return c, nil, opTable[mix[0].Op].check(c.Alg)
		}
	}
	if c.Batch == 0 {
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
	if !(c.Rate >= 0) || math.IsInf(c.Rate, 1) {
		return c, nil, fmt.Errorf("loadgen: rate %v is not a finite non-negative number", c.Rate)
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
	if raw && len(c.KIDs) > 0 {
		return c, nil, errors.New("loadgen: a kids file names keys on a server; raw mode has none")
	}
	switch c.KeySpread {
	case "":
		c.KeySpread = SpreadRoundRobin
		if len(c.KIDs) > 0 {
			c.KeySpread = SpreadRandom
		}
	case SpreadRoundRobin, SpreadRandom:
	default:
		return c, nil, fmt.Errorf("loadgen: key spread %q: want %s or %s", c.KeySpread, SpreadRoundRobin, SpreadRandom)
	}
	if c.Tenant == "" {
		c.Tenant = "bench"
	}
	if c.Purpose == "" {
		c.Purpose = "load"
	}
	ops := make([]opRun, len(mix))
	for i, m := range mix {
		spec := opTable[m.Op]
		oc := c
		oc.Op, oc.Mix, oc.Alg = m.Op, nil, spec.defaultAlg
		if c.Alg != "" && spec.check(c.Alg) == nil {
			oc.Alg = c.Alg
		}
		if !spec.batched {
			oc.Batch = 1
		}
		if !spec.signature && oc.PayloadBytes == 0 {
			oc.PayloadBytes = DefaultDataBytes
		}
		if lim := spec.maxPayload; oc.PayloadBytes > lim {
			return c, nil, fmt.Errorf("loadgen: %s payload of %d bytes is over the limit of %d", m.Op, oc.PayloadBytes, lim)
		}
		ops[i] = opRun{cfg: oc, spec: spec, weight: m.Weight}
	}
	if len(c.Mix) == 0 {
		// A single operation reports its own settings, as it always has.
		c.Alg, c.Batch, c.PayloadBytes = ops[0].cfg.Alg, ops[0].cfg.Batch, ops[0].cfg.PayloadBytes
	} else if !slices.ContainsFunc(ops, func(o opRun) bool { return o.spec.batched }) {
		c.Batch = 1
	}
	return c, ops, nil
}

// maxKeys bounds --keys: key creation is part of the setup, not the load.
const maxKeys = 10000

// result is the Result of a run of ops under c, keys being the number of
// distinct keys the run spread over (each operation's is in its opRun).
func (c Config) result(mode, driver string, ops []opRun, keys int, d driven) Result {
	r := Result{Mode: mode, Op: c.Op, Alg: c.Alg, PayloadBytes: c.PayloadBytes,
		Batch: c.Batch, Concurrency: c.Concurrency, Keys: keys, Elapsed: d.elapsed,
		Mix: c.Mix, Driver: driver, KeySpread: c.KeySpread, TargetRate: c.Rate, Missed: d.missed,
		Errors: map[string]int64{}, PerOp: make(map[string]OpResult, len(ops))}
	if len(c.Mix) > 0 {
		r.Op, r.Alg = MixOp, ""
	}
	secs := d.elapsed.Seconds()
	perSec := func(n int64) float64 {
		if secs <= 0 {
			return 0
		}
		return float64(n) / secs
	}
	var all []time.Duration
	for i, o := range ops {
		t := &d.ops[i]
		all = append(all, t.lat...)
		or := OpResult{Alg: o.cfg.Alg, PayloadBytes: o.cfg.PayloadBytes, Batch: o.cfg.Batch, Weight: o.weight,
			Keys: o.keys, Requests: t.requests, Items: t.items,
			OpsPerSec: perSec(t.items), RequestsPerSec: perSec(t.requests),
			Latency: Percentiles(t.lat), Errors: map[string]int64{}}
		for code, k := range t.errs {
			or.Errors[code] += k
			or.ErrorTotal += k
			r.Errors[code] += k
		}
		r.PerOp[o.cfg.Op] = or
		r.Requests += t.requests
		r.Items += t.items
		r.ErrorTotal += or.ErrorTotal
	}
	r.Latency = Percentiles(all)
	r.OpsPerSec, r.RequestsPerSec = perSec(r.Items), perSec(r.Requests)
	r.AchievedRate = perSec(r.Latency.Count)
	return r
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

// workload turns the operations of a run into what drive needs: the calls
// and the weighted cycle.
func workload(c Config, ops []opRun, calls []call, tr func() transport) driveSpec {
	weights := make([]int, len(ops))
	for i, o := range ops {
		weights[i] = o.weight
	}
	return driveSpec{workers: c.Concurrency, duration: c.Duration, rate: c.Rate,
		random: c.KeySpread == SpreadRandom, calls: calls, seq: cycle(weights), transport: tr}
}
