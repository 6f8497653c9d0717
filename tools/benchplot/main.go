// Command benchplot turns `ron-kms bench --json` results into the PNG plots
// of BENCHMARKS.md. It is its own module so that the plotting library
// (gonum.org/v1/plot) stays out of ron-kms's dependencies.
//
//	cd tools/benchplot && go run . -out ../../docs/bench ../../bench-results/*.jsonl
//
// Run it with -h for what it reads and writes. The images depend only on the
// input and the flags: no time, host or path goes into them.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

const usage = `usage: benchplot -out DIR [-target OP=LEVEL]... [-latency-op OP] [-latency-alg ALG] FILE...

benchplot reads results of "ron-kms bench --json" and writes PNG plots of
them into DIR (created if missing).

Input: each FILE holds JSON objects, one per line (as scripts/bench-sweep
writes bench-results/sweep.jsonl; the indented output of a single bench
--json run is accepted too). Each object is one result: mode ("service" or
"raw"), op, alg, batch, payload_bytes, concurrency, keys, ops_per_sec,
latency {p50_ns, p95_ns, p99_ns}, and optionally rate or target_rate
(offered requests/s of a paced run; 0 or absent: closed loop),
achieved_rate, per_op, and label (a name such as "1k keys" for a
side-by-side comparison). Unknown fields are ignored. A malformed or
invalid object stops benchplot with FILE:LINE and the reason. Results with
the same op, alg, batch, payload, keys and label at the same concurrency
(or rate) are combined by median. Labelled results are drawn in keys.png
only, unless every service result is labelled.

Output, in DIR:
  throughput.png    ops/s (batch items) vs concurrency, one line per service
                    op and alg (closed loop); each one's raw one-core
                    baseline (raw results with concurrency 1, median) dashed
  ratio.png         the same as a fraction of the raw baseline; a service
                    result immediately followed in its file by a raw
                    concurrency-1 result of the same op and alg is divided by
                    that one (measured moments apart), others by the median.
                    Each -target is a dotted line
  latency.png       p50/p95/p99 request latency (ms, log scale) vs
                    concurrency for -latency-op
  latency-rate.png  the same vs offered rate, when results have a rate; with
                    achieved vs offered rate beside it when they report it
  keys.png          throughput and p99 per label, as bars, when results have
                    labels (e.g. "1k keys" vs "1M keys")
A plot with no data is not written, and a file of that name left in DIR by an
earlier run is removed, so that DIR matches the input; stderr says which.

Flags:
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run is main with its arguments and error stream; it returns the exit
// code: 0 done, 1 failed, 2 bad usage.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchplot", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		out string
		o   options
	)
	fs.StringVar(&out, "out", "", "`directory` to write the PNG files into (required)")
	fs.Var(&o.Targets, "target", "target ratio to draw on ratio.png as `OP=LEVEL` or OP/ALG=LEVEL, e.g. sign=0.6 (repeatable)")
	fs.StringVar(&o.LatencyOp, "latency-op", "sign", "service `op` whose latency latency.png and latency-rate.png show")
	fs.StringVar(&o.LatencyAlg, "latency-alg", "", "only this `alg` of -latency-op (default: every algorithm)")
	table := fs.Bool("table", false, "print the service results as a Markdown table, each with its paired raw run and their ratio, instead of plotting")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *table && fs.NArg() > 0 {
		rs, err := ReadFiles(fs.Args())
		if err == nil {
			err = writeTable(os.Stdout, rs)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	if out == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "benchplot: need -out DIR and at least one FILE (-h for help)")
		return 2
	}
	if err := plotFiles(fs.Args(), out, o, stderr); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// plotFiles reads paths and writes the plots into dir, reporting skipped
// plots on log.
func plotFiles(paths []string, dir string, o options, log io.Writer) error {
	rs, err := ReadFiles(paths)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return errors.New("benchplot: no results in the input")
	}
	outs, skipped := buildPlots(rs, o)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("benchplot: %w", err)
	}
	for _, name := range outputFiles {
		why, ok := skipped[name]
		if !ok {
			continue
		}
		path := filepath.Join(dir, name)
		switch err := os.Remove(path); {
		case err == nil:
			fmt.Fprintf(log, "benchplot: %s: removed the old file: %s\n", path, why)
		case errors.Is(err, os.ErrNotExist):
			fmt.Fprintf(log, "benchplot: %s: not written: %s\n", path, why)
		default:
			return fmt.Errorf("benchplot: %w", err)
		}
	}
	for _, o := range outs {
		if err := o.Fig.writePNG(filepath.Join(dir, o.Name)); err != nil {
			return err
		}
	}
	return nil
}
