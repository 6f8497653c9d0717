package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/loadgen"
)

// Limits of keys seed.
const (
	// seedMaxCount keeps the index of every key within the ten digits of
	// its op_id.
	seedMaxCount = 10_000_000_000
	// seedMaxRunID bounds a run id, so that an op_id stays well under
	// api.MaxOpIDLen.
	seedMaxRunID = 64
	// seedMaxRetries is how many Backpressure answers in a row one create
	// may get before seed gives up.
	seedMaxRetries = 120
	// maxRetryAfter caps the wait a server's Retry-After may ask for.
	maxRetryAfter = time.Minute
)

// seedOptions are the flags of keys seed.
type seedOptions struct {
	count                int
	tenant, purpose, alg string
	concurrency          int
	kidsOut              string
	runID                string
}

func newKeysSeed(cf *clientFlags) *cobra.Command {
	var o seedOptions
	cmd := &cobra.Command{
		Use:   "seed --count N [--tenant T] [--purpose P] [--alg A] [--concurrency C] [--kids-out FILE] [--run-id ID]",
		Short: "Create many keys, for scale and load tests",
		Long: `seed creates --count keys of --alg under --tenant and --purpose on the server
at --addr, from --concurrency keep-alive clients, each through the ordinary
POST /v1/kms/keys (so every create is authorized and audited as usual). It
shows a progress bar on standard error when that is a terminal, and prints
keys, elapsed time and keys per second at the end.

--kids-out FILE receives the kid of every key (name#v1), one per line, in the
order the answers came; the file is truncated first, written through a
buffer, and flushed and fsynced at the end (also when seed stops early).

Key number i of a run is created with op_id seed-<run id>-<i, ten digits>, so
the server makes each key once per run id. The run id is random unless
--run-id gives one; seed prints it first. Running seed again with the same
--run-id (and the same tenant, purpose and alg) after an interruption
resumes: the keys already made are answered from the server's op_id records
and only the missing ones are created, and --kids-out again lists all --count
kids. A run id used with another purpose or alg is a Conflict.

429 Backpressure answers are retried after their Retry-After; any other error
stops seed, which says how many keys were made and where their kids are. A
first SIGINT or SIGTERM stops handing out new keys and lets the requests in
flight finish; a second one ends the process at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSeed(cmd, cf, o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.count, "count", 0, "keys to create (required)")
	f.StringVar(&o.tenant, "tenant", "seed", "tenant of the keys")
	f.StringVar(&o.purpose, "purpose", "load", "purpose of the keys")
	f.StringVar(&o.alg, "alg", "ed25519", "algorithm of the keys")
	f.IntVar(&o.concurrency, "concurrency", 32, "requests in flight (keep-alive clients)")
	f.StringVar(&o.kidsOut, "kids-out", "", "write the kid of every key to this file, one per line")
	f.StringVar(&o.runID, "run-id", "", "run id the op_ids derive from; repeat a run's id to resume it (default random)")
	cmd.MarkFlagRequired("count")
	return cmd
}

func (o *seedOptions) check() error {
	if o.count <= 0 || o.count > seedMaxCount {
		return fmt.Errorf("--count must be 1 to %d, not %d", seedMaxCount, o.count)
	}
	if o.concurrency <= 0 {
		return fmt.Errorf("--concurrency must be positive, not %d", o.concurrency)
	}
	if err := api.CheckLabel("--tenant", o.tenant); err != nil {
		return err
	}
	if err := api.CheckLabel("--purpose", o.purpose); err != nil {
		return err
	}
	if !api.KnownAlg(o.alg) {
		return fmt.Errorf("--alg %q is not an algorithm", o.alg)
	}
	if len(o.runID) > seedMaxRunID {
		return fmt.Errorf("--run-id is longer than %d characters", seedMaxRunID)
	}
	for _, c := range []byte(o.runID) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("--run-id %q: only letters, digits, '-', '_' and '.' are allowed", o.runID)
		}
	}
	return nil
}

// seedOpID is the op_id of key number i of a run.
func seedOpID(runID string, i int64) string {
	return fmt.Sprintf("seed-%s-%010d", runID, i)
}

func runSeed(cmd *cobra.Command, cf *clientFlags, o seedOptions) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.runID == "" {
		var b [8]byte
		rand.Read(b[:])
		o.runID = hex.EncodeToString(b[:])
	}
	tok, err := cf.token()
	if err != nil {
		return err
	}
	hc := loadgen.NewHTTPClient(o.concurrency)
	defer hc.CloseIdleConnections()
	hc.Transport = retryAfterTransport{base: hc.Transport}
	c, err := client.New(cf.address(), tok, hc)
	if err != nil {
		return err
	}
	kids, err := openKids(o.kidsOut)
	if err != nil {
		return err
	}

	// The first signal stops handing out keys; once it came, the default
	// behaviour is back, so a second one ends the process.
	intr, stopSignals := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	context.AfterFunc(intr, stopSignals)

	fmt.Fprintf(cmd.ErrOrStderr(), "seeding %d %s keys as %s/%s with run id %s\n", o.count, o.alg, o.tenant, o.purpose, o.runID)
	s := &seeder{c: c, o: o, kids: kids, bar: newSeedBar(cmd.ErrOrStderr(), o.count)}
	start := time.Now()
	s.run(cmd.Context(), intr)
	elapsed := time.Since(start)
	if s.bar != nil {
		s.bar.Finish()
	}
	if err := kids.close(); err != nil && s.err == nil {
		s.err = err
	}

	where := "not saved (no --kids-out)"
	if o.kidsOut != "" {
		where = "in " + o.kidsOut
	}
	switch {
	case s.err != nil:
		return fmt.Errorf("keys seed: stopped after %d of %d keys (their kids are %s; to resume, run again with --run-id %s): %w",
			s.made, o.count, where, o.runID, s.err)
	case s.made < int64(o.count):
		return fmt.Errorf("keys seed: interrupted after %d of %d keys (their kids are %s; to resume, run again with --run-id %s)",
			s.made, o.count, where, o.runID)
	}
	_, err = fmt.Fprintf(cmd.OutOrStdout(), "seeded %d %s keys as %s/%s in %s: %.0f keys/s (concurrency %d, %d backpressure retries)\nrun id: %s\nkids: %s\n",
		s.made, o.alg, o.tenant, o.purpose, elapsed.Round(time.Millisecond), float64(s.made)/elapsed.Seconds(),
		o.concurrency, s.retries.Load(), o.runID, where)
	return err
}

// seeder runs the workers of one keys seed.
type seeder struct {
	c    *client.Client
	o    seedOptions
	kids *kidsFile
	bar  *progressbar.ProgressBar // nil when stderr is not a terminal

	next    atomic.Int64 // the next key number to hand out
	retries atomic.Int64 // Backpressure answers retried
	stopped atomic.Bool  // set at the first error

	mu   sync.Mutex // guards made, err, kids and bar
	made int64      // keys answered with a kid
	err  error      // the first error
}

// run creates keys from o.concurrency workers until every key is made, one
// fails, or intr is done. Requests use ctx, so those in flight when intr
// ends still finish.
func (s *seeder) run(ctx, intr context.Context) {
	var wg sync.WaitGroup
	for range min(s.o.concurrency, s.o.count) {
		wg.Go(func() {
			for intr.Err() == nil && !s.stopped.Load() {
				i := s.next.Add(1) - 1
				if i >= int64(s.o.count) {
					return
				}
				kid, err := s.create(ctx, i)
				if err == nil {
					err = s.save(kid)
				}
				if err != nil {
					s.fail(fmt.Errorf("key %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
}

// create makes key number i, retrying Backpressure answers after their
// Retry-After (with up to 10% jitter, so that workers do not come back in
// step).
func (s *seeder) create(ctx context.Context, i int64) (string, error) {
	req := api.CreateKeyRequest{Tenant: s.o.tenant, Purpose: s.o.purpose, Alg: s.o.alg, OpID: seedOpID(s.o.runID, i)}
	for attempt := 0; ; attempt++ {
		var wait time.Duration
		res, err := s.c.CreateKey(context.WithValue(ctx, retryAfterKey{}, &wait), req)
		if err == nil {
			return res.KID, nil
		}
		if !errors.Is(err, client.ErrBackpressure) || attempt == seedMaxRetries {
			return "", err
		}
		s.retries.Add(1)
		if wait > 0 {
			wait += mrand.N(wait/10 + 1)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (s *seeder) save(kid string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.kids.add(kid); err != nil {
		return err
	}
	s.made++
	if s.bar != nil {
		s.bar.Add(1)
	}
	return nil
}

func (s *seeder) fail(err error) {
	s.stopped.Store(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// kidsFile is the --kids-out file; a nil *kidsFile discards kids.
type kidsFile struct {
	f    *os.File
	w    *bufio.Writer
	path string
}

func openKids(path string) (*kidsFile, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--kids-out: %w", err)
	}
	return &kidsFile{f: f, w: bufio.NewWriterSize(f, 64<<10), path: path}, nil
}

func (k *kidsFile) add(kid string) error {
	if k == nil {
		return nil
	}
	k.w.WriteString(kid)
	if err := k.w.WriteByte('\n'); err != nil { // bufio errors are sticky
		return fmt.Errorf("writing %s: %w", k.path, err)
	}
	return nil
}

// close flushes, fsyncs and closes the file.
func (k *kidsFile) close() error {
	if k == nil {
		return nil
	}
	err := k.w.Flush()
	if err == nil {
		err = k.f.Sync()
	}
	if cerr := k.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", k.path, err)
	}
	return nil
}

// newSeedBar returns a progress bar of n keys on stderr, or nil when stderr
// is not a terminal.
func newSeedBar(stderr io.Writer, n int) *progressbar.ProgressBar {
	f, ok := stderr.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return progressbar.NewOptions64(int64(n),
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("seed"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("keys"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// retryAfterKey marks a *time.Duration in a request's context that
// retryAfterTransport sets to the Retry-After of a 429 answer. The client
// package returns the contract error without the response headers; this is
// how seed reads the delay the server asked for.
type retryAfterKey struct{}

// retryAfterTransport records the Retry-After of 429 answers (see
// retryAfterKey). RoundTrip runs before http.Client.Do returns, so the
// caller reads the value without a race.
type retryAfterTransport struct{ base http.RoundTripper }

func (t retryAfterTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		if d, ok := r.Context().Value(retryAfterKey{}).(*time.Duration); ok {
			*d = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
	}
	return resp, err
}

// CloseIdleConnections passes http.Client.CloseIdleConnections on.
func (t retryAfterTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3: seconds or
// an HTTP date), capped at maxRetryAfter; a missing or malformed one means
// one second.
func parseRetryAfter(h string, now time.Time) time.Duration {
	if s, err := strconv.ParseUint(h, 10, 32); err == nil {
		return min(time.Duration(s)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return time.Second
}
