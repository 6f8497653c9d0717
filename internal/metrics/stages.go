package metrics

import "github.com/prometheus/client_golang/prometheus"

// Stage is one stage of serving an API request, a value of the "stage"
// label of kms_stage_latency_seconds. The set is fixed (SPEC §8: labels
// carry no request strings).
type Stage int

// The stages, in the order a request passes them. Not every request passes
// every stage: decode and the key operation (sign, verify) are timed by the
// routes that do them; the others by every authenticated API route.
const (
	StageAuth   Stage = iota // verifying the request's token
	StageQueue               // waiting for the overload limiter, until the route's handler starts
	StageDecode              // reading and decoding the body, checking the capability for the key
	StageSign                // the key store's sign (one item, or a batch's items)
	StageVerify              // the key store's verify (one item, or a batch's items)
	StageAudit               // waiting for the audit record(s) to be durable
	StageWrite               // encoding the answer and writing it to the connection's buffer
	numStages
)

var stageNames = [numStages]string{"auth", "queue", "decode", "sign", "verify", "audit", "write"}

// String returns the stage's label value.
func (s Stage) String() string { return stageNames[s] }

// StageBuckets are kms_stage_latency_seconds' bucket bounds: dense between
// 10 µs and 5 ms, where a stage of a healthy server lies, so that a p99
// read from them is within a bucket's width of the truth.
var StageBuckets = []float64{
	.00001, .00002, .00003, .00005, .000075,
	.0001, .00015, .0002, .0003, .0004, .0005, .00075,
	.001, .0015, .002, .003, .004, .005, .0075,
	.01, .015, .025, .05, .1, .25, .5, 1,
}

// StageHistogramName is the metric's name, for readers of /metrics.
const StageHistogramName = "kms_stage_latency_seconds"

func newStageHistogram() (*prometheus.HistogramVec, [numStages]prometheus.Observer) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    StageHistogramName,
		Help:    "Time API requests spend in each stage of serving, by stage (auth, queue, decode, sign, verify, audit, write).",
		Buckets: StageBuckets,
	}, []string{"stage"})
	var obs [numStages]prometheus.Observer
	for s := range numStages {
		obs[s] = h.WithLabelValues(stageNames[s])
	}
	return h, obs
}

// ObserveStage records that a request spent seconds in stage s. Cheap (no
// label lookup) and safe for concurrent use.
func (m *Metrics) ObserveStage(s Stage, seconds float64) { m.stages[s].Observe(seconds) }
