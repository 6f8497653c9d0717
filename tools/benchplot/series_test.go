package main

import (
	"math"
	"slices"
	"testing"
)

func svc(op, alg string, c int, ops float64) Result {
	return Result{Mode: ModeService, Op: op, Alg: alg, Batch: 1, Concurrency: c, Keys: 1, OpsPerSec: ops, File: "a"}
}

func raw(op, alg string, ops float64) Result {
	return Result{Mode: ModeRaw, Op: op, Alg: alg, Batch: 1, Concurrency: 1, OpsPerSec: ops, File: "a"}
}

func withLatency(r Result, p50ms float64) Result {
	r.Latency = Latency{P50: int64(p50ms * 1e6), P95: int64(2 * p50ms * 1e6), P99: int64(4 * p50ms * 1e6)}
	return r
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := slices.Clone(tc.in)
		if got := median(in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		if !slices.Equal(in, tc.in) {
			t.Errorf("median changed its input to %v", in)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median(nil) is not NaN")
	}
}

func TestAnalyzeGroups(t *testing.T) {
	rs := []Result{
		withLatency(svc("verify", "ed25519", 8, 800), 1),
		withLatency(svc("sign", "ed25519", 8, 1000), 2),
		withLatency(svc("sign", "ed25519", 8, 3000), 4), // repeat: medians
		withLatency(svc("sign", "ed25519", 1, 500), 1),
		withLatency(svc("sign", "ml-dsa-65", 1, 100), 10),
		{Mode: ModeService, Op: "sign-batch", Alg: "ed25519", Batch: 64, Concurrency: 1, Keys: 1, OpsPerSec: 900},
	}
	a := analyze(rs)
	var names []string
	for _, s := range a.Closed {
		names = append(names, s.Name)
	}
	want := []string{"sign ed25519", "sign ml-dsa-65", "verify ed25519", "sign-batch ed25519 (batch 64)"}
	if !slices.Equal(names, want) {
		t.Fatalf("series %q, want %q", names, want)
	}
	s := a.Closed[0]
	if len(s.Points) != 2 || s.Points[0].X != 1 || s.Points[1].X != 8 {
		t.Fatalf("sign ed25519 points %+v, want x = 1, 8", s.Points)
	}
	p := s.Points[1]
	if p.N != 2 || p.Ops != 2000 || p.P50 != 3 || p.P95 != 6 || p.P99 != 12 {
		t.Errorf("point at 8 = %+v, want 2 results, median 2000 ops/s, p50 3 ms, p95 6, p99 12", p)
	}
	if !math.IsNaN(p.Ratio) {
		t.Errorf("ratio %v with no raw result, want NaN", p.Ratio)
	}
	if len(a.Open) != 0 {
		t.Errorf("%d open-loop series, want none", len(a.Open))
	}
}

func TestAnalyzeRatio(t *testing.T) {
	rs := []Result{
		svc("sign", "ed25519", 1, 500),
		raw("sign", "ed25519", 1000), // paired with the line above: 0.5
		svc("sign", "ed25519", 8, 900),
		raw("sign", "ed25519", 3000), // paired: 0.3
		svc("sign", "ed25519", 64, 1000),
		raw("verify", "ed25519", 800), // another op: not paired
		{Mode: ModeRaw, Op: "sign", Alg: "ed25519", Batch: 1, Concurrency: 2, OpsPerSec: 1e9}, // not a baseline
		svc("verify", "ed25519", 64, 400),
	}
	rs[len(rs)-1].File = "b" // a raw result in another file is not its pair
	a := analyze(rs)
	if b := a.Baselines[baseKey{Op: "sign", Alg: "ed25519", Batch: 1}]; b != 2000 {
		t.Errorf("sign baseline %v, want the median 2000", b)
	}
	sign := a.Closed[0]
	for i, want := range []float64{0.5, 0.3, 0.5} { // the last one against the median
		if got := sign.Points[i].Ratio; !near(got, want) {
			t.Errorf("sign ratio at %v = %v, want %v", sign.Points[i].X, got, want)
		}
	}
	if got := a.Closed[1].Points[0].Ratio; !near(got, 0.5) {
		t.Errorf("verify ratio %v, want 400/800 (median baseline)", got)
	}
}

func TestAnalyzeOpenLoop(t *testing.T) {
	r1 := svc("sign", "ed25519", 64, 2000)
	r1.Rate, r1.AchievedRate = 2000, 1990
	r2 := svc("sign", "ed25519", 64, 5000)
	r2.Rate = 5000
	r3 := svc("sign", "ed25519", 32, 1000)
	r3.Rate = 1000
	a := analyze([]Result{r2, r1, r3, svc("sign", "ed25519", 64, 9000)})
	if len(a.Closed) != 1 || len(a.Closed[0].Points) != 1 {
		t.Fatalf("closed loop %+v, want one series of one point", a.Closed)
	}
	if len(a.Open) != 2 {
		t.Fatalf("%d open-loop series, want one per concurrency", len(a.Open))
	}
	if a.Open[0].Name != "sign ed25519 (32 clients)" || a.Open[1].Name != "sign ed25519 (64 clients)" {
		t.Errorf("names %q, %q", a.Open[0].Name, a.Open[1].Name)
	}
	ps := a.Open[1].Points
	if len(ps) != 2 || ps[0].X != 2000 || ps[0].Achieved != 1990 || ps[1].X != 5000 || ps[1].Achieved != 0 {
		t.Errorf("points %+v, want x 2000 (achieved 1990), 5000 (not reported)", ps)
	}
}

func TestAnalyzeLabels(t *testing.T) {
	l1 := svc("sign", "ed25519", 64, 100)
	l1.Label, l1.Keys = "1M keys", 1000000
	l2 := svc("sign", "ed25519", 64, 200)
	l2.Label, l2.Keys = "1k keys", 1000

	a := analyze([]Result{svc("sign", "ed25519", 64, 300), l1, l2})
	if len(a.Closed) != 1 || a.Closed[0].Name != "sign ed25519" {
		t.Errorf("with unlabelled results, labelled ones are left out; got %+v", a.Closed)
	}

	a = analyze([]Result{l1, l2})
	if len(a.Closed) != 2 || a.Closed[0].Name != "sign ed25519 (1M keys)" || a.Closed[1].Name != "sign ed25519 (1k keys)" {
		t.Errorf("all labelled: want one series per label in order of appearance, got %+v", a.Closed)
	}

	ls := labels([]Result{l1, l2, l1})
	if !slices.Equal(ls, []string{"1M keys", "1k keys"}) {
		t.Fatalf("labels %q", ls)
	}
	ss := labelSeries([]Result{l1, l2, svc("sign", "ed25519", 64, 300)}, ls)
	if len(ss) != 1 || ss[0].Name != "sign ed25519 (64 clients)" || len(ss[0].Points) != 2 ||
		ss[0].Points[0].X != 0 || ss[0].Points[0].Ops != 100 || ss[0].Points[1].Ops != 200 {
		t.Errorf("label series %+v", ss)
	}
}

func TestNameSeriesDistinguishes(t *testing.T) {
	a := svc("sign", "ed25519", 1, 1)
	b := svc("sign", "ed25519", 1, 1)
	b.Keys = 100
	c := svc("sign", "ed25519", 1, 1)
	c.PayloadBytes = 1024
	got := analyze([]Result{a, b, c}).Closed
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	want := []string{"sign ed25519 (1 key, digest)", "sign ed25519 (100 keys, digest)", "sign ed25519 (1 key, 1024 B)"}
	if !slices.Equal(names, want) {
		t.Errorf("names %q, want %q", names, want)
	}
}

func TestTargetsFlag(t *testing.T) {
	var ts targets
	for _, s := range []string{"sign=0.6", "verify-batch/ed25519=2"} {
		if err := ts.Set(s); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
	}
	want := targets{{Op: "sign", Level: 0.6}, {Op: "verify-batch", Alg: "ed25519", Level: 2}}
	if !slices.Equal(ts, want) {
		t.Errorf("targets %+v, want %+v", ts, want)
	}
	if !ts[0].matches(seriesKey{Op: "sign", Alg: "ml-dsa-65"}) || ts[1].matches(seriesKey{Op: "verify-batch", Alg: "ml-dsa-65"}) {
		t.Error("matches: op alone matches any alg; op/alg only that alg")
	}
	for _, bad := range []string{"sign", "=1", "sign=", "sign=x", "sign=0", "sign=-1", "sign=Inf"} {
		if err := ts.Set(bad); err == nil {
			t.Errorf("Set(%q) succeeded", bad)
		}
	}
}

func TestNice125(t *testing.T) {
	for _, tc := range []struct{ v, down, up float64 }{
		{1, 1, 1}, {1.5, 1, 2}, {3, 2, 5}, {7, 5, 10}, {0.013, 0.01, 0.02}, {25000, 20000, 50000},
	} {
		if got := nice125(tc.v, false); !near(got, tc.down) {
			t.Errorf("nice125(%v, down) = %v, want %v", tc.v, got, tc.down)
		}
		if got := nice125(tc.v, true); !near(got, tc.up) {
			t.Errorf("nice125(%v, up) = %v, want %v", tc.v, got, tc.up)
		}
	}
}
