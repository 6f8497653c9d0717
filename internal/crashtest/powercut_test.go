package crashtest

// TestPowerLoss is TestCrashSafety with the power cut as well: a killed
// process leaves its writes in the page cache, where they survive, so only
// a file system that forgets what was not fsynced (internal/lazyfs) shows
// a missing fsync. The data directory lives on a lazyfs mount; at a random
// moment under load the file system is cut (from that instant nothing
// reaches it) and the server SIGKILLed, then the file system comes back in
// its durable state and the server starts on it again.

import (
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/lazyfs"
	"github.com/ron-kms/ron-kms/internal/server"
)

// Settings of the power-loss test. RON_KMS_POWERCUT_CYCLES sets the number
// of cuts (default 24).
const (
	defaultPowerCuts = 24
	minPowerRun      = 100 * time.Millisecond
	maxPowerRun      = 400 * time.Millisecond
	// ackWait bounds how long the runs that cut right after an
	// acknowledgement wait for one; generous for a loaded machine.
	ackWait = 30 * time.Second
)

func powerCuts(t *testing.T) int { return envCount(t, "RON_KMS_POWERCUT_CYCLES", defaultPowerCuts) }

// powerRig is one lazyfs mount with a data directory on it, the ledger of
// what was acknowledged there, and the server running on it.
type powerRig struct {
	t    *testing.T
	fsys *lazyfs.FS
	bin  string
	tmp  string // outside the mount: logs
	data string // on the mount
	l    *ledger
	idx  *auditIndex
	live *proc
	tr   *http.Transport // the live server's client connections
	runs int
	prev batch // what the last run acknowledged, checked after the restart

	cuts, torn, verified int
	checked              counts
}

// newPowerRig mounts a lazyfs for a data directory on it. With mkdir, the
// test makes the data directory, durable (its name fsynced into the
// mount's root); otherwise the server makes it.
func newPowerRig(t *testing.T, bin string, mkdir bool) *powerRig {
	t.Helper()
	fsys, mnt := lazyfs.Mount(t)
	r := &powerRig{t: t, fsys: fsys, bin: bin, tmp: t.TempDir(), data: filepath.Join(mnt, "data"), l: newLedger()}
	if mkdir {
		if err := os.Mkdir(r.data, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := syncPath(mnt); err != nil {
			t.Fatal(err)
		}
	}
	r.idx = newAuditIndex(r.data)
	t.Cleanup(func() {
		if r.live != nil {
			r.fsys.Cut()
			r.live.kill()
		}
	})
	return r
}

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// start starts the server on the data directory (it must open) and checks
// what the previous run acknowledged. It returns the checker's errors.
func (r *powerRig) start() *checker {
	t := r.t
	t.Helper()
	log := filepath.Join(r.tmp, fmt.Sprintf("server-%03d.log", r.runs))
	r.live = startServer(t, r.bin, r.data, log)
	r.runs++
	c, tr := connect(t, r.live, r.data)
	r.tr = tr
	k := &checker{c: c, l: r.l, keys: map[string]*api.KeyInfo{}}
	k.check(context.Background(), &r.prev)
	r.checked.add(&r.prev)
	return k
}

// load runs the workload until stop returns (it is called by the test's
// goroutine while the workers run), then cuts the power and kills the
// server at once, and brings the file system back in its durable state.
func (r *powerRig) load(k *checker, stop func()) {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { r.l.worker(ctx, k.c, w) })
	}
	stop()
	// The cut is one instant: the lock keeps workers from recording
	// errors meanwhile, so every error recorded after it is the cut's.
	r.l.mu.Lock()
	before := len(r.l.unexpected)
	r.fsys.Cut()
	r.l.mu.Unlock()
	r.live.kill()
	cancel()
	wg.Wait()
	r.tr.CloseIdleConnections()
	r.l.mu.Lock()
	r.l.unexpected = r.l.unexpected[:before]
	r.l.mu.Unlock()
	r.live = nil
	r.cuts++
	if err := r.fsys.Recover(); err != nil {
		t.Fatalf("cut %d: bringing the file system back: %v", r.cuts, err)
	}
	r.prev = r.l.finishRun()
	if len(r.l.unexpected) > 0 {
		t.Fatalf("cut %d: the live server answered errors before the cut that it should not have:\n  %s",
			r.cuts, strings.Join(r.l.unexpected, "\n  "))
	}
}

// auditAfterCut verifies the audit log as the cut left it (a torn last
// line is a warning) and returns the acknowledged operations missing from
// it.
func (r *powerRig) auditAfterCut() []string {
	t := r.t
	t.Helper()
	_, torn, err := verifyCLI(r.bin, r.data)
	if err != nil {
		t.Fatalf("cut %d: audit log: %v", r.cuts, err)
	}
	if torn {
		r.torn++
	}
	r.verified++
	if err := r.idx.update(); err != nil {
		t.Fatalf("cut %d: reading the audit log: %v", r.cuts, err)
	}
	return r.idx.missing(r.l.takeAudits())
}

func TestPowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary and cuts the power under it; skipped with -short")
	}
	lazyfs.Require(t)
	start := time.Now()
	n := powerCuts(t)
	// The server makes a missing data directory without making its name
	// durable (TestPowerLossFirstStart): this test starts from one that
	// exists.
	r := newPowerRig(t, buildBinary(t, t.TempDir()), true)
	for cycle := range n {
		k := r.start()
		if len(k.errs) > 0 {
			t.Fatalf("cut %d: after the restart, acknowledged results are missing or wrong:\n  %s\nserver log:\n%s",
				cycle, strings.Join(k.errs, "\n  "), tail(r.live.stderr))
		}
		// Every third run is cut right after an acknowledgement arrives,
		// when the most recent writes are the least likely to be synced;
		// the others at a random moment.
		acked := r.l.acks()
		r.load(k, func() {
			if cycle%3 == 2 {
				r.waitAcks(acked + 1 + mrand.IntN(20))
				return
			}
			time.Sleep(minPowerRun + mrand.N(maxPowerRun-minPowerRun))
		})
		if bad := r.auditAfterCut(); len(bad) > 0 {
			t.Fatalf("cut %d: acknowledged operations without their audit record (%d):\n  %s",
				cycle, len(bad), strings.Join(first(bad, 20), "\n  "))
		}
	}

	// A last start: everything acknowledged in every run is still there;
	// then a graceful stop, after which the log verifies and ends with a
	// close checkpoint.
	k := r.start()
	all := r.l.all
	k.check(context.Background(), &all)
	if len(k.errs) > 0 {
		t.Fatalf("final check: acknowledged results are missing or wrong:\n  %s", strings.Join(k.errs, "\n  "))
	}
	sctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := r.live.stop(sctx); err != nil {
		t.Fatalf("graceful stop: %v; log:\n%s", err, tail(r.live.stderr))
	}
	r.live = nil
	rep, err := verifyInProcess(r.data)
	if err != nil {
		t.Fatalf("audit log after the graceful stop: %v", err)
	}
	if !rep.Closed || rep.TornBytes != 0 {
		t.Errorf("after a graceful stop the audit log should end with a close checkpoint and no torn line: %q", rep.Warnings)
	}
	if err := r.idx.update(); err != nil {
		t.Fatalf("reading the audit log after the graceful stop: %v", err)
	}
	r.l.takeAudits()
	if bad := r.idx.missing(r.l.allAudits); len(bad) > 0 {
		t.Fatalf("final: acknowledged operations without their audit record (%d):\n  %s", len(bad), strings.Join(first(bad, 20), "\n  "))
	}

	st := r.fsys.Stats()
	summary := fmt.Sprintf("powercut: %d power cuts under load in %v; acknowledged and checked after a restart: %d creates, %d rotates, %d signs, %d wraps; "+
		"%d acknowledged operations found in their audit records (%d records, %d verifications of the chain); %d cuts left a torn audit tail; "+
		"file system: %d file syncs, %d directory syncs, %d files and %d names lost unsynced changes at a cut",
		r.cuts, time.Since(start).Round(time.Millisecond), r.checked.creates, r.checked.rotates, r.checked.signs, r.checked.wraps,
		len(r.l.allAudits), rep.Records, r.verified, r.torn, st.Syncs, st.DirSyncs, st.Lost, st.LostNames)
	t.Log(summary)
	fmt.Println(summary)
	if r.checked.creates == 0 || r.checked.rotates == 0 || r.checked.signs == 0 {
		t.Errorf("the workload acknowledged too little to test anything (creates %d, rotates %d, signs %d)",
			r.checked.creates, r.checked.rotates, r.checked.signs)
	}
}

// acks counts the acknowledged creates, rotates, signs and wraps of the
// current run.
func (l *ledger) acks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur.creates) + len(l.cur.rotates) + len(l.cur.signs) + len(l.cur.wraps)
}

// waitAcks returns once the current run has n acknowledgements.
func (r *powerRig) waitAcks(n int) {
	deadline := time.Now().Add(ackWait)
	for r.l.acks() < n {
		if time.Now().After(deadline) {
			r.t.Fatalf("the workload did not get %d acknowledgements within %v", n, ackWait)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPowerLossFindsAMissingFsync shows that TestPowerLoss's checks can
// fail: the file system is told to ignore the fsyncs of one file, as if the
// code had lost that fsync, and after a cut made once operations were
// acknowledged the checks must find acknowledged results missing.
func TestPowerLossFindsAMissingFsync(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary and cuts the power under it; skipped with -short")
	}
	lazyfs.Require(t)
	bin := buildBinary(t, t.TempDir())
	for _, tc := range []struct {
		name, pattern string
		// found returns what the checks found missing after the cut.
		found func(r *powerRig, k *checker) []string
	}{
		{"store", server.DBFile, func(r *powerRig, k *checker) []string {
			return k.errs
		}},
		{"audit", "audit-*.log", func(r *powerRig, k *checker) []string {
			return r.auditAfterCut()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newPowerRig(t, bin, true)
			// A first run with every fsync: the server's files exist and
			// are durable, and the checks pass.
			k := r.start()
			r.load(k, func() { r.waitAcks(10) })
			if bad := r.auditAfterCut(); len(bad) > 0 {
				t.Fatalf("with every fsync, acknowledged operations lack their audit record:\n  %s", strings.Join(first(bad, 20), "\n  "))
			}
			// Then without the fsyncs of one file.
			if err := r.fsys.IgnoreSync(tc.pattern); err != nil {
				t.Fatal(err)
			}
			k = r.start()
			if len(k.errs) > 0 {
				t.Fatalf("with every fsync, acknowledged results are missing:\n  %s", strings.Join(k.errs, "\n  "))
			}
			r.load(k, func() { r.waitAcks(r.l.acks() + 20) })
			if st := r.fsys.Stats(); st.IgnoredSyncs == 0 {
				t.Fatalf("no fsync of %s was made and ignored: the test removed nothing", tc.pattern)
			}
			if err := r.fsys.IgnoreSync(); err != nil {
				t.Fatal(err)
			}
			var found []string
			if tc.name == "audit" {
				found = tc.found(r, nil)
			} else {
				k = r.start()
				found = tc.found(r, k)
			}
			if len(found) == 0 {
				t.Fatalf("without the fsyncs of %s, a cut after %d acknowledgements lost nothing the checks could see", tc.pattern, len(r.prev.creates)+len(r.prev.rotates)+len(r.prev.signs)+len(r.prev.wraps))
			}
			t.Logf("without the fsyncs of %s the checks found, as they must (%d):\n  %s", tc.pattern, len(found), strings.Join(first(found, 5), "\n  "))
		})
	}
}

// TestPowerLossFirstStart cuts the power shortly after the first start of
// a server on a data directory it made itself, once it acknowledged
// creates: they must survive like any others.
func TestPowerLossFirstStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary and cuts the power under it; skipped with -short")
	}
	lazyfs.Require(t)
	r := newPowerRig(t, buildBinary(t, t.TempDir()), false)
	k := r.start()
	r.load(k, func() { r.waitAcks(5) })
	if _, err := os.Stat(r.data); err != nil {
		t.Fatalf("after a power cut the data directory the server made is gone (%v): %d acknowledged creates with it", err, len(r.prev.creates))
	}
	k = r.start()
	if len(k.errs) > 0 {
		t.Fatalf("acknowledged results are missing after the cut:\n  %s", strings.Join(k.errs, "\n  "))
	}
}

// TestPowerLossLeavesNoSecretCopies: the server writes its secret files
// (root.key, admin.token) through a temporary file it removes afterwards;
// after a power cut no such temporary copy may be back.
func TestPowerLossLeavesNoSecretCopies(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the real binary and cuts the power under it; skipped with -short")
	}
	lazyfs.Require(t)
	r := newPowerRig(t, buildBinary(t, t.TempDir()), true)
	k := r.start()
	r.load(k, func() { r.waitAcks(5) })
	ents, err := os.ReadDir(r.data)
	if err != nil {
		t.Fatal(err)
	}
	var stray []string
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			stray = append(stray, e.Name())
		}
	}
	if len(stray) > 0 {
		t.Errorf("after a power cut the data directory holds temporary copies the server had removed: %q", stray)
	}
}
