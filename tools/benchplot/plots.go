package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Output file names, in the order they are written.
const (
	fileThroughput  = "throughput.png"
	fileRatio       = "ratio.png"
	fileLatency     = "latency.png"
	fileLatencyRate = "latency-rate.png"
	fileKeys        = "keys.png"
)

var outputFiles = []string{fileThroughput, fileRatio, fileLatency, fileLatencyRate, fileKeys}

// options are what the flags choose.
type options struct {
	Targets    targets
	LatencyOp  string
	LatencyAlg string // empty: every algorithm of LatencyOp
}

// target is a ratio the issue asks for: Level times the raw baseline, for
// the series of operation Op (and of algorithm Alg, when not empty).
type target struct {
	Op, Alg string
	Level   float64
}

// targets is the repeatable -target flag: op=level or op/alg=level.
type targets []target

func (t *targets) String() string {
	var parts []string
	for _, x := range *t {
		parts = append(parts, x.name()+"="+short(x.Level))
	}
	return strings.Join(parts, " ")
}

func (t *targets) Set(s string) error {
	name, level, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want op=level or op/alg=level, got %q", s)
	}
	v, err := strconv.ParseFloat(level, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) {
		return fmt.Errorf("level %q is not a positive number", level)
	}
	op, alg, _ := strings.Cut(name, "/")
	*t = append(*t, target{Op: op, Alg: alg, Level: v})
	return nil
}

func (x target) name() string {
	if x.Alg == "" {
		return x.Op
	}
	return x.Op + "/" + x.Alg
}

func (x target) matches(k seriesKey) bool {
	return x.Op == k.Op && (x.Alg == "" || x.Alg == k.Alg)
}

// output is one PNG to write.
type output struct {
	Name string
	Fig  *figure
}

// buildPlots returns the figures the results hold data for, in the order of
// outputFiles, and for each file left out the reason.
func buildPlots(rs []Result, o options) (outs []output, skipped map[string]string) {
	a := analyze(rs)
	skipped = map[string]string{}
	add := func(name string, f *figure, why string) {
		if f == nil {
			skipped[name] = why
			return
		}
		outs = append(outs, output{name, f})
	}
	add(fileThroughput, throughputFigure(a), "no closed-loop service results")
	add(fileRatio, ratioFigure(a, o.Targets), "no service result has a raw baseline (raw, concurrency 1, same op and alg)")
	add(fileLatency, latencyFigure(a, o), fmt.Sprintf("no closed-loop service results of op %q", o.LatencyOp))
	add(fileLatencyRate, latencyRateFigure(a, o), fmt.Sprintf("no service results of op %q with a rate", o.LatencyOp))
	add(fileKeys, keysFigure(rs), "no labelled closed-loop service results")
	return outs, skipped
}

const (
	xConcurrency = "concurrency (keep-alive client connections, log scale)"
	xRate        = "offered load (requests/s, log scale)"
)

// throughputFigure: ops/s against concurrency, one line per closed-loop
// series, and each series' raw one-core baseline as a dashed line in its
// colour.
func throughputFigure(a analysis) *figure {
	if len(a.Closed) == 0 {
		return nil
	}
	p := newPlot("ron-kms service throughput (closed loop; a batch counts each item)", xConcurrency,
		"throughput (operations/s, log scale)")
	f := newFigure(p)
	valueAxis(&p.X, xValues(a.Closed))
	var ys []float64
	for _, s := range a.Closed {
		for _, pt := range s.Points {
			ys = append(ys, pt.Ops)
		}
		ys = append(ys, a.Baselines[s.Key.base()])
	}
	lo, hi := positiveRange(ys)
	logAxis(&p.Y, lo, hi, formatNumber)
	for i, s := range a.Closed {
		f.addLine(p, s.Name, xys(s, func(pt point) float64 { return pt.Ops }), style{colorOf(i), solid, glyphOf(i)}, true)
	}
	seen := map[baseKey]bool{}
	for i, s := range a.Closed {
		k := s.Key.base()
		b := a.Baselines[k]
		if b <= 0 || seen[k] {
			continue
		}
		seen[k] = true
		name := "raw " + k.Op + " " + k.Alg + ", 1 core"
		f.addLine(p, name, plotter.XYs{{X: p.X.Min, Y: b}, {X: p.X.Max, Y: b}}, style{colorOf(i), dashed, nil}, true)
	}
	return f
}

// ratioFigure: each closed-loop series as a fraction of its raw baseline,
// with the targets as dotted lines in the colour of the first series they
// apply to.
func ratioFigure(a analysis, ts targets) *figure {
	p := newPlot("ron-kms service throughput ÷ raw one-core throughput", xConcurrency,
		"ratio (service ops/s ÷ raw ops/s on 1 core)")
	f := newFigure(p)
	var xs, ys []float64
	for _, s := range a.Closed {
		for _, pt := range s.Points {
			if !math.IsNaN(pt.Ratio) {
				xs = append(xs, pt.X)
				ys = append(ys, pt.Ratio)
			}
		}
	}
	if len(ys) == 0 {
		return nil
	}
	for _, t := range ts {
		ys = append(ys, t.Level)
	}
	valueAxis(&p.X, dedupe(xs))
	p.Y.Min, p.Y.Max = 0, slices.Max(ys)*1.1
	for i, s := range a.Closed {
		f.addLine(p, s.Name, xys(s, func(pt point) float64 { return pt.Ratio }), style{colorOf(i), solid, glyphOf(i)}, true)
	}
	for _, t := range ts {
		c := color.Color(color.Black)
		for i, s := range a.Closed {
			if t.matches(s.Key) {
				c = colorOf(i)
				break
			}
		}
		name := fmt.Sprintf("target %s ≥ %s", t.name(), short(t.Level))
		f.addLine(p, name, plotter.XYs{{X: p.X.Min, Y: t.Level}, {X: p.X.Max, Y: t.Level}}, style{c, dotted, nil}, true)
	}
	return f
}

// percentiles are the latency lines: name, colour and figure.
var percentiles = []struct {
	name  string
	color color.Color
	get   func(point) float64
}{
	{"p50", palette[0], func(pt point) float64 { return pt.P50 }},
	{"p95", palette[1], func(pt point) float64 { return pt.P95 }},
	{"p99", palette[3], func(pt point) float64 { return pt.P99 }},
}

// latencySeries returns the series of ss for the latency plots' op and alg.
func latencySeries(ss []series, o options) []series {
	return slices.DeleteFunc(slices.Clone(ss), func(s series) bool {
		return s.Key.Op != o.LatencyOp || (o.LatencyAlg != "" && s.Key.Alg != o.LatencyAlg)
	})
}

// addPercentiles draws p50, p95 and p99 of each series: colour by
// percentile, dashes and glyph by series.
func addPercentiles(f *figure, p *plot.Plot, ss []series) {
	var ys []float64
	for _, s := range ss {
		for _, pt := range s.Points {
			ys = append(ys, pt.P50, pt.P95, pt.P99)
		}
	}
	lo, hi := positiveRange(ys)
	logAxis(&p.Y, lo, hi, short)
	for j, s := range ss {
		for _, pc := range percentiles {
			name := pc.name
			if len(ss) > 1 {
				name += " " + s.Name
			}
			f.addLine(p, name, xys(s, pc.get), style{pc.color, dashes[j%len(dashes)], glyphOf(j)}, true)
		}
	}
}

// latencyFigure: p50, p95 and p99 request latency against concurrency.
func latencyFigure(a analysis, o options) *figure {
	ss := latencySeries(a.Closed, o)
	if len(ss) == 0 {
		return nil
	}
	title := "ron-kms request latency, " + o.LatencyOp + " (closed loop)"
	if len(ss) == 1 {
		title = "ron-kms request latency, " + ss[0].Name + " (closed loop)"
	}
	p := newPlot(title, xConcurrency, "request latency (ms, log scale)")
	f := newFigure(p)
	valueAxis(&p.X, xValues(ss))
	addPercentiles(f, p, ss)
	return f
}

// latencyRateFigure: p50, p95 and p99 against the offered rate of open-loop
// runs and, when the results report it, the achieved rate beside it.
func latencyRateFigure(a analysis, o options) *figure {
	ss := latencySeries(a.Open, o)
	if len(ss) == 0 {
		return nil
	}
	title := "latency of " + o.LatencyOp + " at a fixed offered load"
	if len(ss) == 1 {
		title = "latency of " + ss[0].Name + " at a fixed offered load"
	}
	p := newPlot(title, xRate, "request latency (ms, log scale)")
	f := newFigure(p)
	rateAxis(&p.X, xValues(ss))
	addPercentiles(f, p, ss)

	var achieved []float64
	for _, s := range ss {
		for _, pt := range s.Points {
			if pt.Achieved > 0 {
				achieved = append(achieved, pt.Achieved)
			}
		}
	}
	if len(achieved) == 0 {
		return f
	}
	q := newPlot("achieved vs offered load", xRate, "achieved load (requests/s, log scale)")
	rateAxis(&q.X, xValues(ss))
	lo, hi := positiveRange(append(achieved, q.X.Min, q.X.Max))
	logAxis(&q.Y, lo, hi, formatNumber)
	f.addLine(q, "achieved = offered", plotter.XYs{{X: q.X.Min, Y: q.X.Min}, {X: q.X.Max, Y: q.X.Max}},
		style{color.Gray{Y: 110}, dotted, nil}, true)
	for j, s := range ss {
		name := "achieved"
		if len(ss) > 1 {
			name += " " + s.Name
		}
		f.addLine(q, name, xys(s, func(pt point) float64 { return pt.Achieved }),
			style{color.Black, dashes[j%len(dashes)], glyphOf(j)}, true)
	}
	f.Panels = append(f.Panels, q)
	return f
}

// rateAxis labels the offered rates themselves when there are few, else
// powers of ten.
func rateAxis(a *plot.Axis, xs []float64) {
	if len(xs) <= 8 {
		valueAxis(a, xs)
		return
	}
	logAxis(a, slices.Min(xs), slices.Max(xs), formatNumber)
}

// keysFigure: for the labelled closed-loop service results, throughput and
// p99 latency per label as grouped bars, one colour per operation,
// algorithm and concurrency.
func keysFigure(rs []Result) *figure {
	ls := labels(rs)
	ss := labelSeries(rs, ls)
	if len(ss) == 0 {
		return nil
	}
	tp := newPlot("throughput by label", "", "throughput (operations/s)")
	lat := newPlot("p99 request latency by label", "", "p99 request latency (ms)")
	f := newFigure(tp, lat)
	f.Legend.ThumbnailWidth = vg.Points(12)
	// The bars of one label fill 70% of its slot; the slot's width in
	// points is estimated from the figure (legend and axes take the rest).
	slot := (figWidth/2 - vg.Points(150)) / vg.Length(len(ls))
	w := slot * 0.7 / vg.Length(len(ss))
	for _, p := range []*plot.Plot{tp, lat} {
		p.NominalX(ls...)
		p.X.Min, p.X.Max = -0.5, float64(len(ls))-0.5
		p.Y.Min = 0
	}
	for j, s := range ss {
		ops := make(plotter.Values, len(ls))
		p99 := make(plotter.Values, len(ls))
		for _, pt := range s.Points {
			ops[int(pt.X)], p99[int(pt.X)] = pt.Ops, pt.P99
		}
		off := w * (vg.Length(j) - vg.Length(len(ss)-1)/2)
		for k, vs := range []plotter.Values{ops, p99} {
			b, err := plotter.NewBarChart(vs, w)
			if err != nil {
				panic(err) // vs holds finite medians only
			}
			b.Color = colorOf(j)
			b.LineStyle.Width = 0
			b.Offset = off
			if k == 0 {
				tp.Add(b)
				f.Legend.Add(s.Name, b)
			} else {
				lat.Add(b)
			}
		}
	}
	for _, p := range []*plot.Plot{tp, lat} {
		p.Y.Max *= 1.08
		p.Y.Tick.Marker = plotTicks{format: formatNumber}
	}
	return f
}

// labelSeries groups the labelled closed-loop service results by operation,
// algorithm, batch, payload and concurrency (not by keys, which a label
// usually names); a point's X is its label's index in ls.
func labelSeries(rs []Result, ls []string) []series {
	var samples []sample
	for i := range rs {
		r := &rs[i]
		if r.Mode != ModeService || r.Rate != 0 || r.Label == "" {
			continue
		}
		k := seriesKey{Op: r.Op, Alg: r.Alg, Batch: r.Batch, PayloadBytes: r.PayloadBytes, Concurrency: r.Concurrency}
		samples = append(samples, sample{r: r, key: k, x: float64(slices.Index(ls, r.Label)), ratio: math.NaN()})
	}
	return buildSeries(samples, nil)
}

// plotTicks are gonum's default linear ticks with our number format.
type plotTicks struct{ format func(float64) string }

func (t plotTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = t.format(ticks[i].Value)
		}
	}
	return ticks
}

// xys returns the points of s with y chosen by get.
func xys(s series, get func(point) float64) plotter.XYs {
	out := make(plotter.XYs, len(s.Points))
	for i, pt := range s.Points {
		out[i] = plotter.XY{X: pt.X, Y: get(pt)}
	}
	return out
}

// xValues returns the distinct x values of ss, sorted.
func xValues(ss []series) []float64 {
	var xs []float64
	for _, s := range ss {
		for _, pt := range s.Points {
			xs = append(xs, pt.X)
		}
	}
	return dedupe(xs)
}

func dedupe(xs []float64) []float64 {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return slices.Compact(xs)
}

// positiveRange returns the least and greatest positive finite values of
// vs, or 1, 10 when there are none.
func positiveRange(vs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if v > 0 && !math.IsInf(v, 0) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	if math.IsInf(lo, 0) {
		return 1, 10
	}
	return lo, hi
}
