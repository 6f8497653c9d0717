package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/ron-kms/ron-kms/internal/loadgen"
)

// benchFsyncFlags select `bench --fsync`: a bare-sync baseline instead of
// a run against a server.
type benchFsyncFlags struct {
	mode  string
	bytes int
	dir   string
}

func (b *benchFsyncFlags) register(f *pflag.FlagSet) {
	f.StringVar(&b.mode, "fsync", "", "measure bare syncs instead of a server, as the audit log does them: append (write at the end, fsync) or prealloc (write into a zero-filled file, fdatasync); --duration and --rate apply")
	f.IntVar(&b.bytes, "fsync-bytes", loadgen.DefaultFsyncBytes, "bytes written per sync with --fsync")
	f.StringVar(&b.dir, "fsync-dir", "", "directory of --fsync's scratch file (default the temporary directory); put it on the server's file system")
}

func (b *benchFsyncFlags) run(ctx context.Context, cfg loadgen.Config, progress loadgen.Progress) (loadgen.Result, error) {
	return loadgen.RunFsync(ctx, loadgen.FsyncConfig{Mode: b.mode, Dir: b.dir, Bytes: b.bytes, Duration: cfg.Duration, Rate: cfg.Rate}, progress)
}

// stageScrape reads the server's stage histogram before a run; done reads
// it after and returns the difference. A server whose /metrics cannot be
// read gives no stage report, not an error: the run's own figures stand.
type stageScrape struct {
	hc     *http.Client
	addr   string
	before loadgen.StageSnapshot
}

func startStageScrape(ctx context.Context, hc *http.Client, addr string) *stageScrape {
	s := &stageScrape{hc: hc, addr: addr}
	s.before, _ = loadgen.ScrapeStages(ctx, hc, addr)
	return s
}

func (s *stageScrape) done(ctx context.Context) []loadgen.StageLatency {
	if s.before == nil {
		return nil
	}
	after, err := loadgen.ScrapeStages(ctx, s.hc, s.addr)
	if err != nil {
		return nil
	}
	return loadgen.StagesBetween(s.before, after)
}

// printStages writes the server-side stage table of a run, if it has one.
func printStages(w io.Writer, st []loadgen.StageLatency) error {
	if len(st) == 0 {
		return nil
	}
	fmt.Fprintln(w, "server stages (from its kms_stage_latency_seconds; p50/p99 interpolated within buckets):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  stage\tcount\tmean\tp50\tp99")
	for _, s := range st {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", s.Stage, s.Count, benchMS(s.Mean), benchMS(s.P50), benchMS(s.P99))
	}
	return tw.Flush()
}

// printFsync writes the result of bench --fsync.
func printFsync(w io.Writer, r loadgen.Result) error {
	_, err := fmt.Fprintf(w, "fsync %s: %.0f syncs/s of %d B (%d in %.2fs)\nlatency: p50 %s  p95 %s  p99 %s  max %s\n",
		r.Op, r.OpsPerSec, r.PayloadBytes, r.Requests, r.Elapsed.Seconds(),
		benchMS(r.Latency.P50), benchMS(r.Latency.P95), benchMS(r.Latency.P99), benchMS(r.Latency.Max))
	if err == nil && r.TargetRate != 0 {
		_, err = fmt.Fprintf(w, "rate: target %.0f syncs/s, achieved %.0f syncs/s\n", r.TargetRate, r.AchievedRate)
	}
	return err
}
