package cli

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/internal/loadgen"
)

func newBench(cf *clientFlags) *cobra.Command {
	var (
		cfg                   loadgen.Config
		mix, kidsFile         string
		raw, asJS             bool
		http2, clientBatching bool
		conns                 int
		fsync                 benchFsyncFlags
	)
	cmd := &cobra.Command{
		Use:   "bench [--op OP | --mix OP=W,...] [--alg A] [--duration D] [--concurrency N] [--rate R] [--kids-file F] [--raw]",
		Short: "Drive a running server with one operation or a mix and report throughput, latency and errors",
		Long: `bench creates --keys keys of --alg on the server at --addr, then sends --op
requests from --concurrency keep-alive clients for --duration, spread over
the keys, and prints operations per second (batch items), requests per
second, request latency percentiles (p50, p95, p99, max; exact) and errors by
contract code ("transport" when no answer came).

--mix sign=70,verify=20,wrap=10 sends several operations instead of one
(not with --op): every client walks a fixed cycle in which each operation
appears in proportion to its weight (1 to 1000), so runs are repeatable.
Each operation uses its default algorithm, or --alg when --alg is of its
kind; keys are created per algorithm and shared by the operations that use
it. The result has a line per operation and the total (in JSON: per_op).

--rate R paces the clients at R requests per second in all (0, the default,
sends each client's next request as soon as the last is answered). Client w
sends its k-th request at start + (k*N + w)/R for N clients, and latency
counts from that scheduled time, not from when the request actually left, so
a slow server shows in the percentiles instead of slowing the load (no
coordinated omission). The result gives the target rate, the achieved rate
and the requests that were due but never sent. Each client has one request
in flight: give --concurrency well above R times the expected latency. To
measure latency at half the maximum throughput, run once without --rate,
then with --rate at half the req/s it printed.

--kids-file F uses the keys listed in F (one kid a line, with or without
#vN; "#" starts a comment line) instead of creating any: every operation
spreads its requests over the listed keys of its algorithm, at random
(--key-spread), and every operation's algorithm must have some. Preparing
sends no request per listed key, so a file of a million kids is fine, and
nobody checks that they exist: a missing one counts as NotFound. Operations
that need a fixture per key, verify, verify-batch and unwrap, make one for
--keys of the listed keys (evenly spaced in the file) and use only those.

With an http:// address requests go through a lean HTTP/1.1 driver: one
connection per client, request bytes built once, a small response parser,
so that the load generator costs little CPU next to the server it measures.
https:// addresses, or --driver net/http, use Go's net/http instead.
--http2 sends them over HTTP/2 (h2c, or h2 for https://), every worker's
requests multiplexed over --conns connections. --client-batching drives
sign and verify through the Go client package from --concurrency goroutines
sharing one client, whose automatic batching coalesces their calls.

Against a server, bench also reads its /metrics before and after the run and
prints the server's own latency per stage of a request (auth, queue, decode,
sign, verify, audit, write; p50 and p99 from kms_stage_latency_seconds) beside
the client's. --fsync append|prealloc measures no server at all: bare syncs of
--fsync-bytes, as the audit log does them, for the floor of its latency.

--raw measures the same operations and algorithms in this process with no
server (crypto/ed25519, or the project's signature, KEM and AES schemes) on
--concurrency goroutines (default GOMAXPROCS), so that service figures can be
read as a fraction of the machine's raw speed. --mix and --rate work there
too; --kids-file does not.

Operations: ` + strings.Join(loadgen.Ops(), ", ") + `. The algorithm defaults to
ed25519 for signatures, mlkem768-x25519 for wrap and unwrap, aes-256-gcm for
encrypt. Keys created by bench stay on the server (tenant "bench", purpose
"load").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if mix != "" {
				if cmd.Flags().Changed("op") {
					return errors.New("--op and --mix are mutually exclusive")
				}
				m, err := loadgen.ParseMix(mix)
				if err != nil {
					return err
				}
				cfg.Op, cfg.Mix = "", m
			}
			if err := benchDriver(cmd, &cfg, http2, clientBatching, conns); err != nil {
				return err
			}
			if kidsFile != "" {
				kids, err := readKIDsFile(kidsFile)
				if err != nil {
					return err
				}
				cfg.KIDs = kids
			}
			ctx := cmd.Context()
			bar := newBenchBar(cmd.ErrOrStderr(), cfg.Duration)
			var (
				r   loadgen.Result
				err error
			)
			if fsync.mode != "" {
				r, err = fsync.run(ctx, cfg, bar.update)
			} else if raw {
				r, err = loadgen.RunRaw(ctx, cfg, bar.update)
			} else {
				r, err = benchService(cmd, cf, cfg, bar.update)
			}
			bar.finish()
			if err != nil {
				return err
			}
			if asJS {
				err = printJSON(cmd.OutOrStdout(), r)
			} else {
				err = printBench(cmd.OutOrStdout(), r)
			}
			if err != nil {
				return err
			}
			if r.Items == 0 {
				return exitError(1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Op, "op", "sign", "operation: "+strings.Join(loadgen.Ops(), "|"))
	f.StringVar(&mix, "mix", "", "weighted operations instead of --op, e.g. sign=70,verify=20,wrap=10")
	f.StringVar(&cfg.Alg, "alg", "", "key algorithm of the operations of its kind (default ed25519, mlkem768-x25519 for wrap/unwrap, aes-256-gcm for encrypt)")
	f.IntVar(&cfg.PayloadBytes, "payload-bytes", 0, "bytes of message_b64 to sign (0: a 32-byte payload_b3 digest); data key or plaintext size for wrap/unwrap/encrypt (0: 32)")
	f.IntVar(&cfg.Batch, "batch", loadgen.DefaultBatch, "items per sign-batch or verify-batch request")
	f.IntVar(&cfg.Concurrency, "concurrency", 0, fmt.Sprintf("workers: keep-alive clients (default %d), or goroutines with --raw (default GOMAXPROCS)", loadgen.DefaultConcurrency))
	f.DurationVar(&cfg.Duration, "duration", loadgen.DefaultDuration, "how long to send requests")
	f.Float64Var(&cfg.Rate, "rate", 0, "requests per second across all workers, latency counted from the schedule (0: as fast as answered)")
	f.IntVar(&cfg.Keys, "keys", 1, "keys to create first, per algorithm, and spread requests over; with --kids-file, the listed keys verify/unwrap make fixtures for")
	f.StringVar(&kidsFile, "kids-file", "", "use the existing keys listed in this file (one kid a line) instead of creating keys")
	f.StringVar(&cfg.KeySpread, "key-spread", "", "how requests pick keys: round-robin (default) or random (default with --kids-file)")
	f.StringVar(&cfg.Driver, "driver", "", "HTTP driver: lean (default for http://) or net/http (default for https://)")
	f.BoolVar(&http2, "http2", false, "send requests over HTTP/2 (h2c for http://), multiplexed over --conns connections")
	f.IntVar(&conns, "conns", loadgen.DefaultConns, "HTTP/2 connections with --http2")
	f.BoolVar(&clientBatching, "client-batching", false, "drive sign/verify through the Go client's Sign/Verify with automatic batching")
	f.BoolVar(&raw, "raw", false, "measure in this process with no server")
	f.BoolVar(&asJS, "json", false, "print the result as JSON")
	fsync.register(f)
	return cmd
}

// benchDriver applies --http2, --conns and --client-batching to cfg.
func benchDriver(cmd *cobra.Command, cfg *loadgen.Config, http2, clientBatching bool, conns int) error {
	switch {
	case http2 && clientBatching:
		return errors.New("--http2 and --client-batching are mutually exclusive")
	case (http2 || clientBatching) && cmd.Flags().Changed("driver"):
		return errors.New("--driver cannot be combined with --http2 or --client-batching")
	case cmd.Flags().Changed("conns") && !http2:
		return errors.New("--conns needs --http2")
	case http2:
		cfg.Driver, cfg.Conns = loadgen.DriverHTTP2, conns
	case clientBatching:
		cfg.Driver = loadgen.DriverClient
	}
	return nil
}

// readKIDsFile reads a --kids-file.
func readKIDsFile(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--kids-file: %w", err)
	}
	defer fh.Close()
	kids, err := loadgen.ReadKIDs(fh)
	if err != nil {
		return nil, fmt.Errorf("--kids-file %s: %w", path, err)
	}
	return kids, nil
}

// benchService prepares and runs a plan against the server of cf.
func benchService(cmd *cobra.Command, cf *clientFlags, cfg loadgen.Config, progress loadgen.Progress) (loadgen.Result, error) {
	tok, err := cf.token()
	if err != nil {
		return loadgen.Result{}, err
	}
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = loadgen.DefaultConcurrency
	}
	hc := loadgen.NewHTTPClient(conc)
	defer hc.CloseIdleConnections()
	p, err := loadgen.Prepare(cmd.Context(), loadgen.Target{Addr: cf.address(), Token: tok, HTTPClient: hc}, cfg)
	if err != nil {
		return loadgen.Result{}, err
	}
	stages := startStageScrape(cmd.Context(), hc, cf.address())
	r := p.Run(cmd.Context(), progress)
	r.Stages = stages.done(cmd.Context())
	return r, nil
}

// printBench writes a result for people: throughput, latency, errors; for a
// mix, a line per operation and the total; for a paced run, the rates.
func printBench(w io.Writer, r loadgen.Result) error {
	var err error
	if r.Mode == loadgen.ModeFsync {
		return printFsync(w, r)
	}
	if len(r.Mix) > 0 {
		err = printBenchMix(w, r)
	} else {
		_, err = fmt.Fprintf(w, "%s %s %s: %.0f ops/s, %.0f req/s (%d items, %d requests in %.2fs; batch %d, payload %s, concurrency %d, keys %d)\n"+
			"latency: p50 %s  p95 %s  p99 %s  max %s (%d requests)\nerrors: %s\n",
			r.Mode, r.Op, r.Alg, r.OpsPerSec, r.RequestsPerSec, r.Items, r.Requests, r.Elapsed.Seconds(),
			r.Batch, benchPayload(r.PayloadBytes), r.Concurrency, r.Keys,
			benchMS(r.Latency.P50), benchMS(r.Latency.P95), benchMS(r.Latency.P99), benchMS(r.Latency.Max), r.Latency.Count,
			benchErrors(r.Errors))
	}
	if err == nil && r.TargetRate != 0 {
		_, err = fmt.Fprintf(w, "rate: target %.0f req/s, achieved %.0f req/s, %d due but not sent\n",
			r.TargetRate, r.AchievedRate, r.Missed)
	}
	if err != nil {
		return err
	}
	return printStages(w, r.Stages)
}

// printBenchMix writes a mix's result: a header, a table with a row per
// operation and the total, and the errors.
func printBenchMix(w io.Writer, r loadgen.Result) error {
	if _, err := fmt.Fprintf(w, "%s mix %s: %.0f ops/s, %.0f req/s (%d items, %d requests in %.2fs; batch %d, payload %s, concurrency %d, keys %d)\n",
		r.Mode, loadgen.FormatMix(r.Mix), r.OpsPerSec, r.RequestsPerSec, r.Items, r.Requests, r.Elapsed.Seconds(),
		r.Batch, benchPayload(r.PayloadBytes), r.Concurrency, r.Keys); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  op\talg\tops/s\treq/s\tp50\tp95\tp99\tmax\terrors")
	row := func(op, alg string, opsPerSec, reqPerSec float64, l loadgen.Latency, errs int64) {
		fmt.Fprintf(tw, "  %s\t%s\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%d\n",
			op, alg, opsPerSec, reqPerSec, benchMS(l.P50), benchMS(l.P95), benchMS(l.P99), benchMS(l.Max), errs)
	}
	for _, m := range r.Mix {
		o := r.PerOp[m.Op]
		row(m.Op, o.Alg, o.OpsPerSec, o.RequestsPerSec, o.Latency, o.ErrorTotal)
	}
	row("total", "", r.OpsPerSec, r.RequestsPerSec, r.Latency, r.ErrorTotal)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "errors: %s\n", benchErrors(r.Errors))
	return err
}

func benchPayload(n int) string {
	if n == 0 {
		return "digest"
	}
	return fmt.Sprintf("%d B", n)
}

func benchMS(d time.Duration) string {
	return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond))
}

func benchErrors(errs map[string]int64) string {
	if len(errs) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(errs)) {
		parts = append(parts, fmt.Sprintf("%s=%d", c, errs[c]))
	}
	return strings.Join(parts, " ")
}

// benchBar is the live progress bar on a terminal's stderr; its methods do
// nothing when stderr is not a terminal.
type benchBar struct {
	bar *progressbar.ProgressBar
}

func newBenchBar(stderr io.Writer, d time.Duration) *benchBar {
	f, ok := stderr.(*os.File)
	if !ok || d <= 0 {
		return &benchBar{}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return &benchBar{}
	}
	return &benchBar{bar: progressbar.NewOptions64(d.Milliseconds(),
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("bench"),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)}
}

func (b *benchBar) update(elapsed time.Duration, requests int64) {
	if b.bar == nil {
		return
	}
	b.bar.Describe(fmt.Sprintf("%d requests", requests))
	b.bar.Set64(min(elapsed.Milliseconds(), b.bar.GetMax64()))
}

func (b *benchBar) finish() {
	if b.bar != nil {
		b.bar.Finish()
	}
}
