package main

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// seriesKey identifies one line of a plot: the results that differ only in
// their x value (concurrency, or offered rate) and in repetition.
type seriesKey struct {
	Op, Alg      string
	Batch        int
	PayloadBytes int
	Keys         int
	// Concurrency is part of the key of open-loop series only (x is the
	// offered rate there); 0 for closed-loop series.
	Concurrency int
	Label       string
}

// baseKey identifies a raw baseline: what a service series is a fraction
// of. Keys and labels do not matter to raw speed.
type baseKey struct {
	Op, Alg      string
	Batch        int
	PayloadBytes int
}

func baseKeyOf(r *Result) baseKey {
	return baseKey{Op: r.Op, Alg: r.Alg, Batch: r.Batch, PayloadBytes: r.PayloadBytes}
}

func (k seriesKey) base() baseKey {
	return baseKey{Op: k.Op, Alg: k.Alg, Batch: k.Batch, PayloadBytes: k.PayloadBytes}
}

// point is the figures of one series at one x value: the medians of the
// results there (repeated runs, or several input files).
type point struct {
	X             float64
	N             int     // results at X
	Ops           float64 // median items per second
	P50, P95, P99 float64 // median latency percentiles, milliseconds
	// Ratio is the median of each result's ops/s divided by its raw
	// baseline (see analyze); NaN when there is none.
	Ratio float64
	// Achieved is the median achieved request rate of open-loop results; 0
	// when the results do not report it.
	Achieved float64
}

// series is one line: its points sorted by X.
type series struct {
	Key    seriesKey
	Name   string
	Points []point
}

// analysis is what the plots are drawn from.
type analysis struct {
	// Closed are the closed-loop service series (rate 0), x = concurrency.
	Closed []series
	// Open are the open-loop service series (rate > 0), x = offered rate.
	Open []series
	// Baselines are the median ops/s of the raw results with concurrency 1:
	// one core's speed with no service.
	Baselines map[baseKey]float64
}

// analyze groups service results into series and computes each one's
// fraction of the raw baseline.
//
// A service result that is immediately followed, in the same file, by a raw
// result with concurrency 1 of the same operation, algorithm, batch and
// payload is paired with it (scripts/bench-sweep measures them moments
// apart), and its ratio is its ops/s divided by that raw result's. Other
// service results are divided by the median baseline. Results are taken in
// the order given; the output is sorted and does not depend on map order.
//
// Labelled results are left out (they are for keys.png) unless every
// service result is labelled; then each label has its own series.
func analyze(rs []Result) analysis {
	a := analysis{Baselines: map[baseKey]float64{}}
	rawOps := map[baseKey][]float64{}
	for i := range rs {
		r := &rs[i]
		if r.Mode == ModeRaw && r.Concurrency == 1 && r.OpsPerSec > 0 {
			k := baseKeyOf(r)
			rawOps[k] = append(rawOps[k], r.OpsPerSec)
		}
	}
	for k, v := range rawOps {
		a.Baselines[k] = median(v)
	}

	allLabelled := !slices.ContainsFunc(rs, func(r Result) bool { return r.Mode == ModeService && r.Label == "" })
	var closed, open []sample
	for i := range rs {
		r := &rs[i]
		if r.Mode != ModeService || (r.Label != "" && !allLabelled) {
			continue
		}
		ratio := math.NaN()
		if p := pairedRaw(rs, i); p > 0 {
			ratio = r.OpsPerSec / p
		} else if b := a.Baselines[baseKeyOf(r)]; b > 0 {
			ratio = r.OpsPerSec / b
		}
		k := seriesKey{Op: r.Op, Alg: r.Alg, Batch: r.Batch, PayloadBytes: r.PayloadBytes, Keys: r.Keys, Label: r.Label}
		if r.Rate > 0 {
			k.Concurrency = r.Concurrency
			open = append(open, sample{r: r, key: k, x: r.Rate, ratio: ratio})
		} else {
			closed = append(closed, sample{r: r, key: k, x: float64(r.Concurrency), ratio: ratio})
		}
	}
	rank := labelOrder(rs)
	a.Closed = buildSeries(closed, rank)
	a.Open = buildSeries(open, rank)
	return a
}

// sample is one service result placed in a series at x.
type sample struct {
	r     *Result
	key   seriesKey
	x     float64
	ratio float64 // NaN: no raw figure
}

// buildSeries groups samples by key into named series of points, each point
// the medians of the samples at its x. Series are sorted by compareKeys.
func buildSeries(samples []sample, labelRank map[string]int) []series {
	groups := map[seriesKey]map[float64][]sample{}
	for _, sm := range samples {
		if groups[sm.key] == nil {
			groups[sm.key] = map[float64][]sample{}
		}
		groups[sm.key][sm.x] = append(groups[sm.key][sm.x], sm)
	}
	var out []series
	for k, byX := range groups {
		s := series{Key: k}
		for x, samples := range byX {
			var ops, p50, p95, p99, ratios, achieved []float64
			for _, sm := range samples {
				ops = append(ops, sm.r.OpsPerSec)
				p50 = append(p50, ms(sm.r.Latency.P50))
				p95 = append(p95, ms(sm.r.Latency.P95))
				p99 = append(p99, ms(sm.r.Latency.P99))
				if !math.IsNaN(sm.ratio) {
					ratios = append(ratios, sm.ratio)
				}
				if sm.r.AchievedRate > 0 {
					achieved = append(achieved, sm.r.AchievedRate)
				}
			}
			pt := point{X: x, N: len(samples), Ops: median(ops),
				P50: median(p50), P95: median(p95), P99: median(p99), Ratio: math.NaN()}
			if len(ratios) > 0 {
				pt.Ratio = median(ratios)
			}
			if len(achieved) > 0 {
				pt.Achieved = median(achieved)
			}
			s.Points = append(s.Points, pt)
		}
		slices.SortFunc(s.Points, func(p, q point) int { return cmp.Compare(p.X, q.X) })
		out = append(out, s)
	}
	slices.SortFunc(out, func(s, t series) int { return compareKeys(s.Key, t.Key, labelRank) })
	nameSeries(out)
	return out
}

// pairedRaw returns the ops/s of the raw result paired with service result
// rs[i] (see analyze), or 0.
func pairedRaw(rs []Result, i int) float64 {
	if i+1 >= len(rs) {
		return 0
	}
	r, n := &rs[i], &rs[i+1]
	if n.Mode != ModeRaw || n.Concurrency != 1 || n.File != r.File || baseKeyOf(n) != baseKeyOf(r) {
		return 0
	}
	return n.OpsPerSec
}

// labelOrder ranks labels by first appearance in rs, the order a sweep ran
// them in; the empty label first.
func labelOrder(rs []Result) map[string]int {
	rank := map[string]int{"": 0}
	for i := range rs {
		if _, ok := rank[rs[i].Label]; !ok {
			rank[rs[i].Label] = len(rank)
		}
	}
	return rank
}

// labels returns the non-empty labels of rs in order of first appearance.
func labels(rs []Result) []string {
	var out []string
	for i := range rs {
		if l := rs[i].Label; l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// opOrder is the order operations are listed in; others follow by name.
var opOrder = []string{"sign", "verify", "sign-batch", "verify-batch", "wrap", "unwrap", "encrypt"}

func compareOps(a, b string) int {
	ia, ib := slices.Index(opOrder, a), slices.Index(opOrder, b)
	if ia < 0 {
		ia = len(opOrder)
	}
	if ib < 0 {
		ib = len(opOrder)
	}
	return cmp.Or(cmp.Compare(ia, ib), cmp.Compare(a, b))
}

func compareKeys(a, b seriesKey, labelRank map[string]int) int {
	return cmp.Or(
		compareOps(a.Op, b.Op),
		compareAlgs(a.Alg, b.Alg),
		cmp.Compare(a.Batch, b.Batch),
		cmp.Compare(a.PayloadBytes, b.PayloadBytes),
		cmp.Compare(labelRank[a.Label], labelRank[b.Label]),
		cmp.Compare(a.Keys, b.Keys),
		cmp.Compare(a.Concurrency, b.Concurrency),
	)
}

// compareAlgs puts Ed25519, the reference algorithm, first.
func compareAlgs(a, b string) int {
	rank := func(alg string) int {
		if alg == "ed25519" {
			return 0
		}
		return 1
	}
	return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
}

// nameSeries gives each series its legend name: operation and algorithm,
// then what sets it apart from the others of the same operation and
// algorithm (batch size, keys, payload, concurrency of an open loop), then
// its label.
func nameSeries(ss []series) {
	type opAlg struct{ op, alg string }
	keys := map[opAlg]map[int]bool{}
	payloads := map[opAlg]map[int]bool{}
	for _, s := range ss {
		oa := opAlg{s.Key.Op, s.Key.Alg}
		if keys[oa] == nil {
			keys[oa], payloads[oa] = map[int]bool{}, map[int]bool{}
		}
		keys[oa][s.Key.Keys] = true
		payloads[oa][s.Key.PayloadBytes] = true
	}
	for i := range ss {
		k := ss[i].Key
		oa := opAlg{k.Op, k.Alg}
		var parts []string
		if k.Batch > 1 {
			parts = append(parts, fmt.Sprintf("batch %d", k.Batch))
		}
		if len(keys[oa]) > 1 && k.Label == "" {
			parts = append(parts, plural(k.Keys, "key"))
		}
		if len(payloads[oa]) > 1 {
			if k.PayloadBytes == 0 {
				parts = append(parts, "digest")
			} else {
				parts = append(parts, fmt.Sprintf("%d B", k.PayloadBytes))
			}
		}
		if k.Concurrency > 0 {
			parts = append(parts, fmt.Sprintf("%d clients", k.Concurrency))
		}
		if k.Label != "" {
			parts = append(parts, k.Label)
		}
		ss[i].Name = strings.TrimSpace(k.Op + " " + k.Alg)
		if len(parts) > 0 {
			ss[i].Name += " (" + strings.Join(parts, ", ") + ")"
		}
	}
}

// plural writes n and a noun: "1 key", "2 keys".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// median returns the median of vs (the mean of the middle two of an even
// count), NaN for none. It does not change vs.
func median(vs []float64) float64 {
	n := len(vs)
	if n == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// ms converts nanoseconds to milliseconds.
func ms(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }
