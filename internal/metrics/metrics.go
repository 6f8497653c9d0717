// Package metrics defines the Prometheus metrics of SPEC §8. Labels never
// carry a kid, a uuid or any caller-supplied string beyond a tenant name;
// route labels are route patterns, not paths.
package metrics

import (
	"math"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one registry with the service's metrics. Safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	// Ops counts completed key operations by op (sign, verify, ...) and alg.
	Ops *prometheus.CounterVec
	// Failures counts failed operations by op and contract error code.
	Failures *prometheus.CounterVec
	// Latency observes key operation latency in seconds by op and alg.
	Latency *prometheus.HistogramVec
	// HTTPRequests counts responses by route pattern, method and status.
	HTTPRequests *prometheus.CounterVec
	// Inflight is the number of requests being served.
	Inflight prometheus.Gauge
	// Rejected counts requests refused before any work, by reason.
	Rejected *prometheus.CounterVec
	// StageLatency observes the time requests spend in each Stage
	// (ObserveStage).
	StageLatency *prometheus.HistogramVec
	stages       [numStages]prometheus.Observer

	// cacheAge is read by kms_verify_cache_age_ms (SetVerifyCacheAge).
	cacheAge atomic.Pointer[func() float64]
}

// New makes a registry with the service metrics and the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		Ops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_ops_total", Help: "Key operations completed, by operation and algorithm.",
		}, []string{"op", "alg"}),
		Failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_failures_total", Help: "Failed operations, by operation and error code.",
		}, []string{"op", "kind"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_op_latency_seconds",
			Help:    "Latency of key operations in the service, by operation and algorithm.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"op", "alg"}),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP responses, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		Inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kms_inflight_requests", Help: "Requests being served now.",
		}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_rejected_total", Help: "Requests refused before any work, by reason.",
		}, []string{"reason"}),
	}
	m.StageLatency, m.stages = newStageHistogram()
	cacheAge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kms_verify_cache_age_ms",
		Help: "How old the key cache is, in milliseconds: 0 while the key store is healthy; while it is unavailable, the time since the cache was last known current (verify answers come from it until the hard TTL).",
	}, func() float64 {
		if f := m.cacheAge.Load(); f != nil {
			return (*f)()
		}
		return math.NaN()
	})
	m.reg.MustRegister(m.Ops, m.Failures, m.Latency, m.HTTPRequests, m.Inflight, m.Rejected, m.StageLatency, cacheAge,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetVerifyCacheAge sets the function kms_verify_cache_age_ms reads at each
// scrape (NaN until it is set). f must be safe for concurrent use.
func (m *Metrics) SetVerifyCacheAge(f func() float64) { m.cacheAge.Store(&f) }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
