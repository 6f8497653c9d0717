package audit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errInjected = errors.New("injected disk failure")

// faultyFile fails writes (after writing half, like a full disk) or fsyncs
// on demand.
type faultyFile struct {
	logFile
	failWrite, failSync *atomic.Bool
}

func (f *faultyFile) WriteAt(b []byte, off int64) (int, error) {
	if f.failWrite.Load() {
		n, _ := f.logFile.WriteAt(b[:len(b)/2], off)
		return n, errInjected
	}
	return f.logFile.WriteAt(b, off)
}

func (f *faultyFile) Sync() error {
	if f.failSync.Load() {
		return errInjected
	}
	return f.logFile.Sync()
}

func (f *faultyFile) Datasync() error {
	if f.failSync.Load() {
		return errInjected
	}
	return f.logFile.Datasync()
}

func faultyOptions(failWrite, failSync *atomic.Bool) Options {
	opts := testOptions()
	opts.wrapFile = func(f logFile) logFile { return &faultyFile{f, failWrite, failSync} }
	return opts
}

func TestWriteFailure(t *testing.T) {
	for _, mode := range []string{"write", "fsync"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			var failWrite, failSync atomic.Bool
			fail := &failWrite
			if mode == "fsync" {
				fail = &failSync
			}
			opts := faultyOptions(&failWrite, &failSync)
			opts.RetryInterval = 20 * time.Millisecond
			l := mustOpen(t, dir, opts)
			appendN(t, l, 0, 5)

			fail.Store(true)
			var wg sync.WaitGroup
			var failed atomic.Int32
			for i := range 16 {
				wg.Go(func() {
					err := l.Append(context.Background(), testRecord(100+i))
					if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errInjected) {
						t.Errorf("Append while failing: %v", err)
					}
					failed.Add(1)
				})
			}
			wg.Wait()
			if failed.Load() != 16 {
				t.Fatal("not every Append failed")
			}
			err := l.Healthy()
			if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errInjected) {
				t.Fatalf("Healthy while failing: %v", err)
			}
			t.Log(err)
			time.Sleep(50 * time.Millisecond) // retries fail too
			if l.Healthy() == nil {
				t.Fatal("healthy while still failing")
			}

			fail.Store(false)
			deadline := time.Now().Add(5 * time.Second)
			for l.Healthy() != nil { // recovered by the retry, without an Append
				if time.Now().After(deadline) {
					t.Fatalf("still unhealthy: %v", l.Healthy())
				}
				time.Sleep(5 * time.Millisecond)
			}
			appendN(t, l, 5, 5)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			r := mustVerify(t, dir)
			if r.Records != 10 || r.LastSeq != 10 || len(r.Warnings) != 0 {
				t.Fatalf("report %+v", r)
			}
			var recovers int
			for _, ln := range readLog(t, dir) {
				if ln.cp != nil && ln.cp.Reason == ReasonRecover {
					recovers++
				}
				if ln.rec != nil && ln.rec.RequestID >= "req-100" && len(ln.rec.RequestID) == 7 {
					t.Errorf("a failed record is in the log: %s", ln.text)
				}
			}
			if recovers != 1 {
				t.Errorf("%d recover checkpoints, want 1", recovers)
			}
		})
	}
}

// An Append after the failure ends recovers the log by itself, even if the
// retry timer has not fired.
func TestAppendRecovers(t *testing.T) {
	dir := t.TempDir()
	var failWrite, failSync atomic.Bool
	opts := faultyOptions(&failWrite, &failSync)
	opts.RetryInterval = time.Hour
	l := mustOpen(t, dir, opts)
	failWrite.Store(true)
	if err := l.Append(context.Background(), testRecord(1)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append: %v", err)
	}
	failWrite.Store(false)
	appendN(t, l, 2, 3)
	if err := l.Healthy(); err != nil {
		t.Fatalf("Healthy after a successful Append: %v", err)
	}
	l.Close()
	if r := mustVerify(t, dir); r.Records != 3 {
		t.Fatalf("report %+v", r)
	}
}

func TestCloseFailure(t *testing.T) {
	dir := t.TempDir()
	var failWrite, failSync atomic.Bool
	l := mustOpen(t, dir, faultyOptions(&failWrite, &failSync))
	appendN(t, l, 0, 3)
	failSync.Store(true)
	if err := l.Close(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Close: %v", err)
	}
}

func TestAppendContext(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions())
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either it got in before noticing, or it reports the context.
	if err := l.Append(ctx, testRecord(1)); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
