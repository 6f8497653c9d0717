package cli

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/loadgen"
)

func newBench(cf *clientFlags) *cobra.Command {
	var (
		cfg       loadgen.Config
		raw, asJS bool
	)
	cmd := &cobra.Command{
		Use:   "bench [--op OP] [--alg A] [--duration D] [--concurrency N] [--raw]",
		Short: "Drive a running server with one operation and report throughput, latency and errors",
		Long: `bench creates --keys keys of --alg on the server at --addr, then sends --op
requests from --concurrency keep-alive clients for --duration, spread over
the keys, and prints operations per second (batch items), requests per
second, request latency percentiles (p50, p95, p99, max; exact) and errors by
contract code ("transport" when no answer came).

--raw measures the same operation and algorithm in this process with no
server (crypto/ed25519, or the project's signature, KEM and AES schemes) on
--concurrency goroutines (default GOMAXPROCS), so that service figures can be
read as a fraction of the machine's raw speed.

Operations: ` + strings.Join(loadgen.Ops(), ", ") + `. The algorithm defaults to
ed25519 for signatures, mlkem768-x25519 for wrap and unwrap, aes-256-gcm for
encrypt. Keys created by bench stay on the server (tenant "bench", purpose
"load").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			bar := newBenchBar(cmd.ErrOrStderr(), cfg.Duration)
			var (
				r   loadgen.Result
				err error
			)
			if raw {
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
	f.StringVar(&cfg.Alg, "alg", "", "key algorithm (default ed25519, mlkem768-x25519 for wrap/unwrap, aes-256-gcm for encrypt)")
	f.IntVar(&cfg.PayloadBytes, "payload-bytes", 0, "bytes of message_b64 to sign (0: a 32-byte payload_b3 digest); data key or plaintext size for wrap/unwrap/encrypt (0: 32)")
	f.IntVar(&cfg.Batch, "batch", loadgen.DefaultBatch, "items per sign-batch or verify-batch request")
	f.IntVar(&cfg.Concurrency, "concurrency", 0, fmt.Sprintf("workers: keep-alive clients (default %d), or goroutines with --raw (default GOMAXPROCS)", loadgen.DefaultConcurrency))
	f.DurationVar(&cfg.Duration, "duration", loadgen.DefaultDuration, "how long to send requests")
	f.IntVar(&cfg.Keys, "keys", 1, "keys to create first and spread requests over")
	f.BoolVar(&raw, "raw", false, "measure in this process with no server")
	f.BoolVar(&asJS, "json", false, "print the result as JSON")
	return cmd
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
	c, err := client.New(cf.address(), tok, hc)
	if err != nil {
		return loadgen.Result{}, err
	}
	p, err := loadgen.Prepare(cmd.Context(), c, cfg)
	if err != nil {
		return loadgen.Result{}, err
	}
	return p.Run(cmd.Context(), progress), nil
}

// printBench writes a result for people: throughput, latency, errors.
func printBench(w io.Writer, r loadgen.Result) error {
	payload := fmt.Sprintf("%d B", r.PayloadBytes)
	if r.PayloadBytes == 0 {
		payload = "digest"
	}
	errs := "none"
	if len(r.Errors) > 0 {
		var parts []string
		for _, c := range slices.Sorted(maps.Keys(r.Errors)) {
			parts = append(parts, fmt.Sprintf("%s=%d", c, r.Errors[c]))
		}
		errs = strings.Join(parts, " ")
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.3fms", float64(d)/float64(time.Millisecond)) }
	_, err := fmt.Fprintf(w, "%s %s %s: %.0f ops/s, %.0f req/s (%d items, %d requests in %.2fs; batch %d, payload %s, concurrency %d, keys %d)\n"+
		"latency: p50 %s  p95 %s  p99 %s  max %s (%d requests)\nerrors: %s\n",
		r.Mode, r.Op, r.Alg, r.OpsPerSec, r.RequestsPerSec, r.Items, r.Requests, r.Elapsed.Seconds(),
		r.Batch, payload, r.Concurrency, r.Keys,
		ms(r.Latency.P50), ms(r.Latency.P95), ms(r.Latency.P99), ms(r.Latency.Max), r.Latency.Count, errs)
	return err
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
