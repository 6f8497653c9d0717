package loadgen

import (
	"bytes"
	"context"
	"math"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/metrics"
)

// exposition is what the server's /metrics serves after obs.
func exposition(t testing.TB, m *metrics.Metrics) []byte {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	snap, err := ScrapeStages(context.Background(), srv.Client(), srv.URL)
	if err != nil || snap == nil {
		t.Fatalf("ScrapeStages: %v", err)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.Bytes()
}

// TestStagesBetween: a real registry, observed between two scrapes; the
// report counts only what came between and puts each percentile in the
// bucket that holds it.
func TestStagesBetween(t *testing.T) {
	m := metrics.New()
	for range 50 {
		m.ObserveStage(metrics.StageAudit, 0.004) // before: must not count
	}
	before, err := ParseStages(bytes.NewReader(exposition(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		m.ObserveStage(metrics.StageAudit, 0.00012) // in (0.0001, 0.00015]
		if i == 0 {
			m.ObserveStage(metrics.StageAudit, 0.0045) // in (0.004, 0.005], above p99's rank
			m.ObserveStage(metrics.StageAudit, 0.0046)
		}
		m.ObserveStage(metrics.StageSign, 0.00003)
	}
	after, err := ParseStages(bytes.NewReader(exposition(t, m)))
	if err != nil {
		t.Fatal(err)
	}
	st := StagesBetween(before, after)
	if len(st) != 2 || st[0].Stage != "sign" || st[1].Stage != "audit" {
		t.Fatalf("stages %+v: want sign, then audit", st)
	}
	in := func(d time.Duration, lo, hi float64) bool {
		s := d.Seconds()
		return s > lo-1e-12 && s <= hi+1e-12
	}
	a := st[1]
	if a.Count != 102 {
		t.Errorf("audit counted %d, want 102", a.Count)
	}
	if !in(a.P50, 0.0001, 0.00015) {
		t.Errorf("audit p50 %v not in its bucket (100µs, 150µs]", a.P50)
	}
	// rank 0.99×102 = 100.98 > 100: p99 falls among the two slow ones.
	if !in(a.P99, 0.004, 0.005) {
		t.Errorf("audit p99 %v not in (4ms, 5ms]", a.P99)
	}
	wantMean := (100*0.00012 + 0.0045 + 0.0046) / 102
	if math.Abs(a.Mean.Seconds()-wantMean) > 1e-7 {
		t.Errorf("audit mean %v, want %v", a.Mean, wantMean)
	}
	if s := st[0]; s.Count != 100 || !in(s.P50, 0.00002, 0.00003) || !in(s.P99, 0.00002, 0.00003) {
		t.Errorf("sign: %+v", s)
	}
	// A restarted server (counts went down) gives no report for it.
	if got := StagesBetween(after, before); len(got) != 0 {
		t.Errorf("counts that went down gave %+v", got)
	}
}

func TestQuantile(t *testing.T) {
	upper := []float64{1, 2, 4, math.Inf(1)}
	cum := []uint64{10, 30, 40, 40}
	// Rank 20 is the 10th of the 20 in (1, 2]: halfway.
	if q := quantile(upper, cum, 40, 0.5); q != 1.5 {
		t.Errorf("p50 %v, want 1.5", q)
	}
	// Rank 5 is halfway through the first bucket, from 0.
	if q := quantile(upper, cum, 40, 0.125); q != 0.5 {
		t.Errorf("p12.5 %v, want 0.5", q)
	}
	// In +Inf: the highest finite bound.
	if q := quantile(upper, []uint64{0, 0, 1, 2}, 2, 0.99); q != 4 {
		t.Errorf("p99 in +Inf %v, want 4", q)
	}
}

// FuzzParseStages: ParseStages never panics, and the report of any
// snapshot against itself is empty (no request came between).
func FuzzParseStages(f *testing.F) {
	m := metrics.New()
	m.ObserveStage(metrics.StageSign, 0.0002)
	m.ObserveStage(metrics.StageAudit, 0.002)
	real := exposition(f, m)
	f.Add(real)
	f.Add([]byte(strings.Replace(string(real), `le="0.001"`, `le="x"`, 1)))
	f.Add([]byte("kms_stage_latency_seconds_count{stage=\"sign\"} 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, err := ParseStages(bytes.NewReader(b))
		if err != nil {
			return
		}
		if got := StagesBetween(snap, snap); len(got) != 0 {
			t.Fatalf("a snapshot against itself: %+v", got)
		}
		StagesBetween(StageSnapshot{}, snap)
	})
}

// TestRunFsync: both modes sync, report a latency per sync, and leave no
// scratch file.
func TestRunFsync(t *testing.T) {
	for _, mode := range []string{FsyncAppend, FsyncPrealloc} {
		dir := t.TempDir()
		r, err := RunFsync(context.Background(), FsyncConfig{Mode: mode, Dir: dir, Bytes: 4096, Duration: 100 * time.Millisecond}, nil)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if r.Mode != "fsync" || r.Op != mode || r.Requests == 0 || r.Latency.Count != r.Requests || r.Latency.P50 <= 0 {
			t.Errorf("%s: %+v", mode, r)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%s left %d files", mode, len(ents))
		}
	}
	if _, err := RunFsync(context.Background(), FsyncConfig{Mode: "sometimes"}, nil); err == nil {
		t.Error("an unknown mode ran")
	}
}
