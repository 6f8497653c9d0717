package main

import (
	"fmt"
	"io"
	"strings"
)

// writeTable writes every service result of rs as a row of a Markdown
// table, in input order, with the raw run paired with it (the raw run of
// the same operation that follows it in its file) and their ratio: the
// tables of BENCHMARKS.md. A result without a paired raw run has "-"
// there.
func writeTable(w io.Writer, rs []Result) error {
	var b strings.Builder
	b.WriteString("| label | op | alg | batch | clients | rate | keys | items/s | raw/s | ratio | p50 ms | p99 ms | max ms | errors |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i := range rs {
		r := &rs[i]
		if r.Mode != ModeService {
			continue
		}
		raw, ratio := "-", "-"
		if v := pairedRaw(rs, i); v > 0 {
			raw, ratio = fmt.Sprintf("%.0f", v), fmt.Sprintf("%.3f", r.OpsPerSec/v)
		}
		rate := "closed"
		if r.Rate > 0 {
			rate = fmt.Sprintf("%.0f", r.Rate)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s | %d | %.0f | %s | %s | %.3f | %.3f | %.3f | %d |\n",
			r.Label, r.Op, r.Alg, r.Batch, r.Concurrency, rate, r.Keys, r.OpsPerSec, raw, ratio,
			ms(r.Latency.P50), ms(r.Latency.P99), ms(r.Latency.Max), r.ErrorTotal)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
