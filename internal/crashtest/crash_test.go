// Package crashtest holds TestCrashSafety: it builds the real ron-kms
// binary, runs it on one data directory, and SIGKILLs it again and again
// while concurrent clients create, rotate, sign and wrap. After every kill
// and restart, what was acknowledged must still be there (SPEC §6: every
// acknowledged write is durable) and the audit log must verify, with a
// record for every acknowledged operation (SPEC §9).
package crashtest

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/server"
)

// Settings. RON_KMS_CRASH_CYCLES sets the number of kills (default 50).
const (
	defaultCycles = 50
	workers       = 8
	minRun        = 50 * time.Millisecond  // shortest time between a start and its kill
	maxRun        = 400 * time.Millisecond // longest
)

func cycles(t *testing.T) int { return envCount(t, "RON_KMS_CRASH_CYCLES", defaultCycles) }

// envCount is the positive integer in the environment variable name, or def
// when it is unset.
func envCount(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// counts are reported at the end.
type counts struct {
	cycles                         int
	creates, rotates, signs, wraps int // acknowledged results checked after a restart
	verified                       int // runs of audit.Verify that passed
	torn                           int // kills that left an incomplete last audit line
}

func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real binary; skipped with -short")
	}
	start := time.Now()
	n := cycles(t)
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	data := filepath.Join(tmp, "data")
	l := newLedger()
	idx := newAuditIndex(data)
	var cnt counts
	var live *proc
	t.Cleanup(func() {
		if live != nil {
			live.kill()
		}
	})
	logFile := func(i int) string { return filepath.Join(tmp, fmt.Sprintf("server-%03d.log", i)) }

	var prev batch // what the last run acknowledged, checked after the restart
	for cycle := 0; cycle < n; cycle++ {
		live = startServer(t, bin, data, logFile(cycle))
		c, tr := connect(t, live, data)

		k := &checker{c: c, l: l, keys: map[string]*api.KeyInfo{}}
		k.check(context.Background(), &prev)
		if len(k.errs) > 0 {
			t.Fatalf("cycle %d: after the restart, acknowledged results are missing or wrong:\n  %s\nserver log:\n%s",
				cycle, strings.Join(k.errs, "\n  "), tail(live.stderr))
		}
		cnt.add(&prev)

		// The workload, then the kill at a random moment.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() { l.worker(ctx, c, w) })
		}
		time.Sleep(minRun + mrand.N(maxRun-minRun))
		live.kill()
		cancel()
		wg.Wait()
		tr.CloseIdleConnections()
		if !live.killedBySIGKILL() {
			t.Fatalf("cycle %d: the server exited on its own before the kill (%v); its log:\n%s", cycle, live.err, tail(live.stderr))
		}
		live = nil
		prev = l.finishRun()
		if len(l.unexpected) > 0 {
			t.Fatalf("cycle %d: the live server answered errors it should not have:\n  %s\nserver log:\n%s",
				cycle, strings.Join(l.unexpected, "\n  "), tail(logFile(cycle)))
		}

		// The log as the crash left it verifies (a torn last line is only
		// a warning) and holds every acknowledged operation.
		if _, torn, err := verifyCLI(bin, data); err != nil {
			t.Fatalf("cycle %d: audit log after the kill: %v", cycle, err)
		} else if torn {
			cnt.torn++
		}
		cnt.verified++
		if err := idx.update(); err != nil {
			t.Fatalf("cycle %d: reading the audit log after the kill: %v", cycle, err)
		}
		if bad := idx.missing(l.takeAudits()); len(bad) > 0 {
			t.Fatalf("cycle %d: acknowledged operations without their audit record (%d):\n  %s", cycle, len(bad), strings.Join(first(bad, 20), "\n  "))
		}
		cnt.cycles++
	}

	// A last start: everything acknowledged in every run is still there;
	// then a graceful stop, after which the log ends with a close
	// checkpoint and no torn line.
	live = startServer(t, bin, data, logFile(n))
	c, tr := connect(t, live, data)
	k := &checker{c: c, l: l, keys: map[string]*api.KeyInfo{}}
	cnt.add(&prev) // checked again below, with everything else
	all := l.all
	k.check(context.Background(), &all)
	if len(k.errs) > 0 {
		t.Fatalf("final check: acknowledged results are missing or wrong:\n  %s", strings.Join(k.errs, "\n  "))
	}
	tr.CloseIdleConnections()
	sctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := live.stop(sctx); err != nil {
		t.Fatalf("graceful stop: %v; log:\n%s", err, tail(live.stderr))
	}
	live = nil
	rep, err := verifyInProcess(data)
	if err != nil {
		t.Fatalf("audit log after the graceful stop: %v", err)
	}
	cnt.verified++
	if !rep.Closed || rep.TornBytes != 0 {
		t.Errorf("after a graceful stop the audit log should end with a close checkpoint and no torn line: %q", rep.Warnings)
	}
	if err := idx.update(); err != nil {
		t.Fatalf("reading the audit log after the graceful stop: %v", err)
	}
	l.takeAudits()
	if bad := idx.missing(l.allAudits); len(bad) > 0 {
		t.Fatalf("final: acknowledged operations without their audit record (%d):\n  %s", len(bad), strings.Join(first(bad, 20), "\n  "))
	}
	if idx.lines != rep.Records {
		t.Errorf("indexed %d audit records, audit.Verify counted %d", idx.lines, rep.Records)
	}

	summary := fmt.Sprintf("crashtest: %d SIGKILL cycles in %v; acknowledged and checked after a restart: %d creates, %d rotates, %d signs, %d wraps; "+
		"%d acknowledged operations found in their audit records (%d records, %d checkpoints, %d verifications of the chain); "+
		"%d kills left a torn audit tail; %d requests unacknowledged (the kills), refused %v",
		cnt.cycles, time.Since(start).Round(time.Millisecond), cnt.creates, cnt.rotates, cnt.signs, cnt.wraps,
		len(l.allAudits), rep.Records, rep.Checkpoints, cnt.verified,
		cnt.torn, l.unacked, l.refused)
	t.Log(summary)
	fmt.Println(summary)
	if cnt.creates == 0 || cnt.signs == 0 || cnt.wraps == 0 {
		t.Errorf("the workload acknowledged too little to test anything (creates %d, signs %d, wraps %d)", cnt.creates, cnt.signs, cnt.wraps)
	}
}

func (c *counts) add(b *batch) {
	c.creates += len(b.creates)
	c.rotates += len(b.rotates)
	c.signs += len(b.signs)
	c.wraps += len(b.wraps)
}

// connect reads the admin token and returns a client of p.
func connect(t *testing.T, p *proc, data string) (*client.Client, *http.Transport) {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(data, server.AdminTokenFile))
	if err != nil {
		t.Fatalf("admin token: %v", err)
	}
	c, tr, err := newClient(p.addr, strings.TrimSpace(string(tok)))
	if err != nil {
		t.Fatal(err)
	}
	return c, tr
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }
