package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// TestAppendAll: a batch lands in order, consecutive, with about one fsync,
// and verifies; an invalid record refuses the whole batch; a failing disk
// fails it.
func TestAppendAll(t *testing.T) {
	dir := t.TempDir()
	var failWrite, failSync atomic.Bool
	l := mustOpen(t, dir, faultyOptions(&failWrite, &failSync))
	appendN(t, l, 0, 3)
	before := l.Stats()
	rs := make([]Record, 500)
	for i := range rs {
		rs[i] = testRecord(100 + i)
	}
	if err := l.AppendAll(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	after := l.Stats()
	if n := after.Records - before.Records; n != 500 {
		t.Fatalf("%d records written, want 500", n)
	}
	if n := after.Batches - before.Batches; n > 5 {
		t.Errorf("500 records took %d writes, want a few", n)
	}

	bad := []Record{testRecord(1), {Op: "sign"}}
	if err := l.AppendAll(context.Background(), bad); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("invalid record: %v", err)
	}
	if n := l.Stats().Records; n != after.Records {
		t.Fatalf("a refused batch wrote %d records", n-after.Records)
	}

	failSync.Store(true)
	if err := l.AppendAll(context.Background(), rs[:10]); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("AppendAll on a failing disk: %v", err)
	}
	failSync.Store(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendAll(context.Background(), rs[:1]); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}

	rep := mustVerify(t, dir)
	if rep.Records != 503 {
		t.Fatalf("%d records in the log, want 503", rep.Records)
	}
	lines := readLog(t, dir)
	i := findSeq(t, lines, 4)
	for j := range rs {
		if got := lines[i+j].rec; got == nil || got.RequestID != rs[j].RequestID {
			t.Fatalf("record %d of the batch out of order", j)
		}
	}
}

// TestAppendAllConsecutiveAcrossFiles: batches appended concurrently each
// land as one run of consecutive records, also when the log rotates in the
// middle of a batch, and the chain verifies across the files.
func TestAppendAllConsecutiveAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.MaxFileBytes = 3000 // a few records per file: every batch spans files
	opts.CheckpointEvery = 7
	l := mustOpen(t, dir, opts)
	const workers, batches, size = 6, 5, 23
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for b := range batches {
				rs := make([]Record, size)
				for i := range rs {
					rs[i] = testRecord(1000*w + 100*b + i)
				}
				if err := l.AppendAll(context.Background(), rs); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir)
	if rep.Records != workers*batches*size || rep.Files < workers*batches {
		t.Fatalf("report %+v", rep)
	}
	var recs []*Record
	for _, ln := range readLog(t, dir) {
		if ln.rec != nil {
			recs = append(recs, ln.rec)
		}
	}
	for i := 0; i < len(recs); i += size {
		first := recs[i].RequestID
		var w, b, n int
		if _, err := fmt.Sscanf(first, "req-%d", &n); err != nil || n%100 != 0 {
			t.Fatalf("seq %d: a batch starts with %q", recs[i].Seq, first)
		}
		w, b = n/1000, n%1000/100
		for j := range size {
			if want := fmt.Sprintf("req-%d", 1000*w+100*b+j); recs[i+j].RequestID != want {
				t.Fatalf("seq %d: %q where the batch continues with %q", recs[i+j].Seq, recs[i+j].RequestID, want)
			}
		}
	}
}
