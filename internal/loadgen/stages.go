package loadgen

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// stageMetric is the server's per-stage histogram (internal/metrics).
const stageMetric = "kms_stage_latency_seconds"

// maxMetricsBytes bounds the /metrics answer read.
const maxMetricsBytes = 8 << 20

// StageSnapshot is the server's kms_stage_latency_seconds at one moment:
// per stage, the cumulative bucket counts by upper bound.
type StageSnapshot map[string]stageHist

type stageHist struct {
	upper []float64 // ascending, +Inf last
	cum   []uint64  // cumulative counts, one per bound
	count uint64
	sum   float64
}

// StageLatency is what the requests of a run spent in one stage of the
// server (auth, queue, decode, sign, verify, audit, write), estimated from
// the server's histogram: P50 and P99 are interpolated within a bucket, so
// they are as exact as the bucket bounds (see internal/metrics).
type StageLatency struct {
	Stage string        `json:"stage"`
	Count uint64        `json:"count"`
	Mean  time.Duration `json:"mean_ns"`
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
}

// ScrapeStages reads the stage histogram from addr's /metrics with hc.
// A server without the histogram gives an empty snapshot.
func ScrapeStages(ctx context.Context, hc *http.Client, addr string) (StageSnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(addr, "/")+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadgen: reading /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("loadgen: /metrics answered %s", resp.Status)
	}
	return ParseStages(io.LimitReader(resp.Body, maxMetricsBytes))
}

// ParseStages reads the stage histogram from a Prometheus text exposition.
// A malformed exposition is an error; one without the histogram gives an
// empty snapshot.
func ParseStages(r io.Reader) (StageSnapshot, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("loadgen: /metrics: %w", err)
	}
	snap := StageSnapshot{}
	fam, ok := fams[stageMetric]
	if !ok || fam.GetType() != dto.MetricType_HISTOGRAM {
		return snap, nil
	}
	for _, m := range fam.GetMetric() {
		var stage string
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "stage" {
				stage = lp.GetValue()
			}
		}
		h := m.GetHistogram()
		if stage == "" || h == nil {
			continue
		}
		var sh stageHist
		for _, b := range h.GetBucket() {
			sh.upper = append(sh.upper, b.GetUpperBound())
			sh.cum = append(sh.cum, b.GetCumulativeCount())
		}
		if len(sh.upper) == 0 || !math.IsInf(sh.upper[len(sh.upper)-1], 1) {
			sh.upper = append(sh.upper, math.Inf(1))
			sh.cum = append(sh.cum, h.GetSampleCount())
		}
		sh.count, sh.sum = h.GetSampleCount(), h.GetSampleSum()
		snap[stage] = sh
	}
	return snap, nil
}

// stageOrder is the order stages are reported in: the order a request
// passes them.
var stageOrder = []string{"auth", "queue", "decode", "sign", "verify", "audit", "write"}

// StagesBetween returns what the requests between two snapshots spent in
// each stage, for the stages that saw any, in the order a request passes
// them (unknown stages last, by name). A stage whose buckets differ between
// the snapshots (a restarted server) is left out.
func StagesBetween(before, after StageSnapshot) []StageLatency {
	names := make([]string, 0, len(after))
	for name := range after {
		names = append(names, name)
	}
	rank := func(s string) int {
		if i := slices.Index(stageOrder, s); i >= 0 {
			return i
		}
		return len(stageOrder)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	var out []StageLatency
names:
	for _, name := range names {
		a, b := after[name], before[name]
		if b.upper == nil {
			b = stageHist{upper: a.upper, cum: make([]uint64, len(a.upper))}
		}
		if !slices.Equal(a.upper, b.upper) || a.count < b.count {
			continue
		}
		n := a.count - b.count
		if n == 0 {
			continue
		}
		cum := make([]uint64, len(a.cum))
		for i := range cum {
			if a.cum[i] < b.cum[i] {
				continue names
			}
			cum[i] = a.cum[i] - b.cum[i]
		}
		out = append(out, StageLatency{Stage: name, Count: n,
			Mean: seconds((a.sum - b.sum) / float64(n)),
			P50:  seconds(quantile(a.upper, cum, n, 0.50)),
			P99:  seconds(quantile(a.upper, cum, n, 0.99))})
	}
	return out
}

// quantile estimates the q-quantile of n observations in buckets (upper
// bounds, cumulative counts) by linear interpolation within the bucket that
// holds it, as Prometheus's histogram_quantile does. In the +Inf bucket it
// answers the highest finite bound.
func quantile(upper []float64, cum []uint64, n uint64, q float64) float64 {
	rank := q * float64(n)
	for i, c := range cum {
		if float64(c) < rank {
			continue
		}
		if math.IsInf(upper[i], 1) {
			if i == 0 {
				return 0
			}
			return upper[i-1]
		}
		lo, below := 0.0, uint64(0)
		if i > 0 {
			lo, below = upper[i-1], cum[i-1]
		}
		in := c - below
		if in == 0 {
			return upper[i]
		}
		return lo + (upper[i]-lo)*(rank-float64(below))/float64(in)
	}
	return upper[len(upper)-1]
}

func seconds(s float64) time.Duration {
	if math.IsNaN(s) || s < 0 {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}
