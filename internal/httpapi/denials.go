package httpapi

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/audit"
)

// Denials of requests without a valid token (DECISIONS.md, "Unauthenticated
// denials"). Anyone can send them, as fast as the network allows, so they
// are audited without costing a durable record each: per source (the
// client's IP address) and window, the first is written at once and
// durably, as every record is; the next ones are only counted in memory
// and written as one record when the window ends (or the Server closes).
// An authenticated request is never collapsed, denied or not: its record
// is written on its own, before its answer.

const (
	// denialWindow is how long the unauthenticated denials of a source
	// after its first are counted before they are written as one record.
	// It bounds what those records cost: two a window per source.
	denialWindow = 10 * time.Second

	// maxDenialSources bounds the sources tracked in one window. The
	// denials of any further source are counted together, in one record
	// for them all, and none of them is written at once.
	maxDenialSources = 256
)

// Close writes the unauthenticated denials still counted in memory to the
// audit log, and returns the error of that write. Call it once the HTTP
// server has drained and before the audit log is closed. The Server still
// serves afterwards, but no longer collapses: each denial is then written
// on its own.
func (s *Server) Close() error {
	if s.denials == nil {
		return nil
	}
	return s.denials.close()
}

// denialsLost reports collapsed denials whose record could not be written:
// they were answered already, so all that is left is to say so.
func (s *Server) denialsLost(rs []audit.Record, err error) {
	var n uint64
	for _, r := range rs {
		n += max(r.Count, 1)
		s.metrics.Failures.WithLabelValues(r.Op, string(api.CodeStoreUnavailable)).Inc()
	}
	s.log.Error("audit: the records of collapsed unauthenticated denials could not be written",
		slog.Int("records", len(rs)), slog.Uint64("denials", n), slog.String("error", err.Error()))
}

// denialAggregator collapses the audit records of unauthenticated denials,
// per source and window. Window: from the first denial after the previous
// window ended until window later, when a timer writes what was counted.
// Safe for concurrent use.
type denialAggregator struct {
	window     time.Duration
	maxSources int
	// write appends records durably (Auditor.AppendAll); lost reports
	// counted records that could not be written (their answers went out
	// already).
	write func(ctx context.Context, rs []audit.Record) error
	lost  func(rs []audit.Record, err error)

	// wmu is held while a window's counts are taken and written, so that
	// close waits for a flush under way.
	wmu sync.Mutex

	mu      sync.Mutex
	sources map[string]*denialCount // sources denied in this window
	other   denialCount             // sources beyond maxSources
	timer   *time.Timer             // ends the window; nil between windows
	closed  bool                    // after close, nothing is collapsed
}

// denialCount is what a window counted for one source.
type denialCount struct {
	n     uint64       // denials counted (not written yet)
	first audit.Record // the first of them, with its time
	last  time.Time
}

func newDenialAggregator(window time.Duration, maxSources int, write func(context.Context, []audit.Record) error, lost func([]audit.Record, error)) *denialAggregator {
	return &denialAggregator{window: window, maxSources: maxSources, write: write, lost: lost,
		sources: make(map[string]*denialCount)}
}

// requestSource is the source a denial of r is counted under: the client's
// IP address, the host of r.RemoteAddr. Never anything the client sends
// (a token, a hash of it, a forwarded-for header), so a client cannot pick
// its source, nor get a secret into the log. Behind a proxy every client
// is one source.
func requestSource(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// collapse takes the record of an unauthenticated denial from source. It
// reports true when the record was counted: the caller then writes nothing
// and may answer at once. Otherwise (the source's first denial in this
// window, or the aggregator is closed) it names the source in rec.Detail,
// and the caller writes rec as usual.
func (a *denialAggregator) collapse(source string, rec *audit.Record) bool {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		rec.Detail = "unauthenticated, from " + source
		return false
	}
	if a.timer == nil {
		a.timer = time.AfterFunc(a.window, a.endWindow)
	}
	c, seen := a.sources[source]
	if !seen {
		if len(a.sources) < a.maxSources {
			a.sources[source] = &denialCount{}
			rec.Detail = fmt.Sprintf("unauthenticated, from %s; its next denials within %v are counted in one record", source, a.window)
			return false
		}
		c = &a.other
	}
	if c.n == 0 {
		c.first = *rec
		c.first.TS = now
	}
	c.n++
	c.last = now
	return true
}

// endWindow writes what the window counted; the timer calls it.
func (a *denialAggregator) endWindow() {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	a.flush(a.take(false))
}

// close writes what is counted and stops collapsing: every later denial is
// written on its own. It returns the error of that last write.
func (a *denialAggregator) close() error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	return a.flush(a.take(true))
}

// take ends the window: it returns the records of what was counted, in the
// order of their first denial, and forgets the sources.
func (a *denialAggregator) take(closing bool) []audit.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.closed = a.closed || closing
	var rs []audit.Record
	for src, c := range a.sources {
		if c.n > 0 {
			rs = append(rs, c.record("from "+src))
		}
	}
	slices.SortFunc(rs, func(x, y audit.Record) int { return x.TS.Compare(y.TS) })
	if a.other.n > 0 {
		rs = append(rs, a.other.record(fmt.Sprintf("from sources beyond the %d tracked in a window", a.maxSources)))
	}
	clear(a.sources)
	a.other = denialCount{}
	return rs
}

// flush writes rs durably, reporting them lost if it cannot.
func (a *denialAggregator) flush(rs []audit.Record) error {
	if len(rs) == 0 {
		return nil
	}
	err := a.write(context.Background(), rs)
	if err != nil {
		a.lost(rs, err)
	}
	return err
}

// record is the one record that stands for the denials c counted: the
// first of them (op, tenant, key, code, request id, time), with their
// number and span.
func (c *denialCount) record(from string) audit.Record {
	r := c.first
	if c.n > 1 {
		r.Count = c.n
	}
	r.Detail = fmt.Sprintf("unauthenticated, %s: %d denials collapsed, %s to %s; this record describes the first",
		from, c.n, c.first.TS.UTC().Format(time.RFC3339Nano), c.last.UTC().Format(time.RFC3339Nano))
	return r
}
