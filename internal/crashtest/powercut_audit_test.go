package crashtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/audit"
	"github.com/ron-kms/ron-kms/internal/lazyfs"
)

// auditRig is an audit log, in this process, on a lazyfs mount, with files
// small enough that it moves to a new one every few records (the binary
// keeps the 64 MiB default, which no test run reaches).
type auditRig struct {
	t    *testing.T
	fsys *lazyfs.FS
	dir  string // the log's directory
	seed []byte
	pub  ed25519.PublicKey
	idx  *auditIndex
	runs int
}

func newAuditRig(t *testing.T) *auditRig {
	fsys, mnt := lazyfs.Mount(t)
	data := filepath.Join(mnt, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syncPath(mnt); err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	return &auditRig{t: t, fsys: fsys, dir: filepath.Join(data, audit.DirName), seed: seed,
		pub: ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), idx: newAuditIndex(data)}
}

// run opens the log (it must open), appends from four goroutines until
// stop returns, cuts the power, brings the file system back and returns
// the acknowledged records.
func (r *auditRig) run(stop func(acks func() int)) []auditWant {
	t := r.t
	t.Helper()
	l, err := audit.Open(r.dir, audit.Options{AuditKeySeed: r.seed, MaxFileBytes: 2048, CheckpointEvery: 25})
	if err != nil {
		t.Fatalf("run %d: the log does not open after the cut: %v", r.runs, err)
	}
	var mu sync.Mutex
	var wants []auditWant
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				id := fmt.Sprintf("r%d-w%d-%d-%s", r.runs, w, n, randomHex(4))
				err := l.Append(ctx, audit.Record{Op: "sign", Result: audit.ResultOK, RequestID: id, Tenant: tenant})
				if err != nil {
					if !errors.Is(err, audit.ErrUnavailable) && !errors.Is(err, context.Canceled) && !errors.Is(err, audit.ErrClosed) {
						t.Errorf("run %d: Append: %v", r.runs, err)
					}
					return
				}
				mu.Lock()
				wants = append(wants, auditWant{reqID: id, ops: []string{"sign"}})
				mu.Unlock()
			}
		})
	}
	stop(func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(wants)
	})
	r.fsys.Cut()
	cancel()
	wg.Wait()
	l.Close() // fails, the file system being gone, but closes the file
	if err := r.fsys.Recover(); err != nil {
		t.Fatal(err)
	}
	r.runs++
	return wants
}

// waitFor returns once acks() reaches n.
func waitFor(t *testing.T, acks func() int, n int) {
	t.Helper()
	for deadline := time.Now().Add(ackWait); acks() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %d acknowledged records within %v", n, ackWait)
		}
	}
}

// check verifies the log and returns what is wrong: a verification error,
// an indexed file gone or shorter, acknowledged records missing.
func (r *auditRig) check(wants []auditWant) []string {
	if _, err := audit.Verify(r.dir, r.pub); err != nil {
		return []string{fmt.Sprintf("the log does not verify: %v", err)}
	}
	if err := r.idx.update(); err != nil {
		return []string{err.Error()}
	}
	return r.idx.missing(wants)
}

// TestPowerLossAuditSegments cuts the power under the audit log while it
// moves to new files: a new file's name must be durable before a record in
// it is acknowledged. After each cut the log opens and verifies, no file
// indexed before is gone or shorter, and every acknowledged record is
// there.
func TestPowerLossAuditSegments(t *testing.T) {
	if testing.Short() {
		t.Skip("cuts the power under the audit log; skipped with -short")
	}
	r := newAuditRig(t)
	const cuts = 20
	acked := 0
	for cut := range cuts {
		wants := r.run(func(acks func() int) {
			if cut%2 == 0 {
				time.Sleep(10*time.Millisecond + mrand.N(80*time.Millisecond))
			} else { // right after acknowledgements
				waitFor(t, acks, 1+mrand.IntN(40))
			}
		})
		if bad := r.check(wants); len(bad) > 0 {
			t.Fatalf("cut %d: acknowledged records lost or the log broken (%d of %d acknowledged):\n  %s",
				cut, len(bad), len(wants), strings.Join(first(bad, 10), "\n  "))
		}
		acked += len(wants)
	}
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d cuts, %d acknowledged records checked, %d audit files, %d files lost unsynced changes at a cut",
		cuts, acked, len(ents), r.fsys.Stats().Lost)
	if len(ents) < cuts {
		t.Errorf("only %d audit files: the log hardly moved to new files, which is what this test is for", len(ents))
	}
}

// TestPowerLossAuditSegmentsFindsAMissingDirSync: with the fsyncs of the
// log's directory ignored, files made since are not durable, and a cut
// after enough records to fill several files must lose acknowledged ones.
func TestPowerLossAuditSegmentsFindsAMissingDirSync(t *testing.T) {
	if testing.Short() {
		t.Skip("cuts the power under the audit log; skipped with -short")
	}
	r := newAuditRig(t)
	wants := r.run(func(acks func() int) { waitFor(t, acks, 10) })
	if bad := r.check(wants); len(bad) > 0 {
		t.Fatalf("with every fsync: %s", strings.Join(first(bad, 10), "\n  "))
	}
	if err := r.fsys.IgnoreSync(audit.DirName); err != nil {
		t.Fatal(err)
	}
	// A record line is about 250 bytes: 60 records fill several 2 KiB files.
	wants = r.run(func(acks func() int) { waitFor(t, acks, 60) })
	if err := r.fsys.IgnoreSync(); err != nil {
		t.Fatal(err)
	}
	bad := r.check(wants)
	if len(bad) == 0 {
		t.Fatalf("without the directory's fsyncs, a cut after %d acknowledged records lost none the checks could see", len(wants))
	}
	t.Logf("without the directory's fsyncs the checks found, as they must (%d):\n  %s", len(bad), strings.Join(first(bad, 5), "\n  "))
}
