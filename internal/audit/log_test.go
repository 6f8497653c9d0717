package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestChainAcrossRotatedFiles(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.MaxFileBytes = 16 << 10
	opts.CheckpointEvery = 50
	l := mustOpen(t, dir, opts)
	appendConcurrently(t, l, 8, 250)
	appendN(t, l, 5000, 7)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, dir)
	if r.Records != 2007 || r.LastSeq != 2007 || !r.Closed || len(r.Warnings) != 0 || r.UnsignedRecords != 0 {
		t.Fatalf("report %+v", r)
	}
	// open + every 50 + close
	if want := 1 + 2007/50 + 1; r.Checkpoints != want {
		t.Errorf("%d checkpoints, want %d", r.Checkpoints, want)
	}
	if r.Files < 5 {
		t.Fatalf("only %d files: rotation did not happen", r.Files)
	}
	if r.StoreGeneration != 42 {
		t.Errorf("store generation %d", r.StoreGeneration)
	}
	ns, _ := listFiles(dir)
	for _, n := range ns {
		fi, err := os.Stat(filepath.Join(dir, FileName(n)))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", fi.Name(), fi.Mode())
		}
		if fi.Size() > opts.MaxFileBytes+512 {
			t.Errorf("%s has %d bytes, limit %d", fi.Name(), fi.Size(), opts.MaxFileBytes)
		}
	}
	// Each file after the first starts where the previous one ended.
	lines := readLog(t, dir)
	for i := 1; i < len(lines); i++ {
		if lines[i].file != lines[i-1].file && lines[i].line != 2 { // line 1 is the v2 header
			t.Fatal("readLog bug")
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", fi.Mode())
	}
}

func TestConcurrentAppendsGroupCommit(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	const workers, each = 64, 200
	before := l.Stats()
	appendConcurrently(t, l, workers, each)
	st := l.Stats()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs, fsyncs := st.Records-before.Records, st.Fsyncs-before.Fsyncs
	t.Logf("%d records, %d batches, %d fsyncs: %.1f records per fsync", recs, st.Batches-before.Batches, fsyncs, float64(recs)/float64(fsyncs))
	if recs != workers*each {
		t.Fatalf("%d records durable, want %d", recs, workers*each)
	}
	if fsyncs*4 > recs {
		t.Errorf("%d fsyncs for %d records: no group commit", fsyncs, recs)
	}
	r := mustVerify(t, dir)
	if r.Records != workers*each || r.LastSeq != workers*each {
		t.Fatalf("report %+v", r)
	}
	// Every request is in the log exactly once.
	seen := map[string]int{}
	for _, ln := range readLog(t, dir) {
		if ln.rec != nil {
			seen[ln.rec.RequestID]++
		}
	}
	for i := range workers * each {
		if n := seen[testRecord(i).RequestID]; n != 1 {
			t.Fatalf("record %d is in the log %d times", i, n)
		}
	}
}

func TestReopenContinuesChain(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.CheckpointEvery = 4
	l := mustOpen(t, dir, opts)
	if info := l.Info(); info.Seq != 0 || info.LastCheckpoint != nil {
		t.Fatalf("new log info %+v", info)
	}
	appendN(t, l, 0, 10)
	l.Close()
	first := mustVerify(t, dir)

	l = mustOpen(t, dir, opts)
	info := l.Info()
	if info.Seq != 10 || info.Hash != first.LastHash || info.LastCheckpoint == nil || info.LastCheckpoint.Reason != ReasonClose {
		t.Fatalf("reopen info %+v", info)
	}
	appendN(t, l, 10, 10)
	l.Close()
	r := mustVerify(t, dir)
	// open, 4, 8, close(10), open, 14, 18, close(20)
	if r.Records != 20 || r.Checkpoints != 8 || !r.Closed {
		t.Fatalf("report %+v", r)
	}
	lines := readLog(t, dir)
	if i := findSeq(t, lines, 11); lines[i].rec.Prev != first.LastHash {
		t.Fatal("seq 11 does not chain to seq 10")
	}
}

func TestReopenAfterRotationWithoutCheckpointInLastFile(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.MaxFileBytes = 2000 // a few records per file
	opts.CheckpointEvery = 1000
	l := mustOpen(t, dir, opts)
	appendN(t, l, 0, 40)
	l.Close()
	// Cut the close checkpoint, as a crash would: the last file holds no
	// checkpoint, so Open must look further back.
	lines := readLog(t, dir)
	writeLog(t, dir, lines[:len(lines)-1])
	if last := lines[len(lines)-2]; last.file == FileName(1) {
		t.Fatalf("test needs several records in a later file, got %s:%d", last.file, last.line)
	}
	l = mustOpen(t, dir, opts)
	appendN(t, l, 40, 3)
	l.Close()
	if r := mustVerify(t, dir); r.Records != 43 || !r.Closed {
		t.Fatalf("report %+v", r)
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	appendN(t, l, 0, 5)
	l.Close()
	// A crash: no close checkpoint, and half a record at the end.
	lines := readLog(t, dir)
	writeLog(t, dir, lines[:len(lines)-1])
	path := filepath.Join(dir, FileName(1))
	r6 := testRecord(6)
	r6.Seq = 6
	half := r6.appendLine(nil)[:100]
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(half)
	f.Close()

	r := mustVerify(t, dir)
	if r.TornBytes != 100 || r.Closed || len(r.Warnings) != 2 || r.UnsignedRecords != 5 {
		t.Fatalf("report %+v", r)
	}
	l = mustOpen(t, dir, testOptions())
	if info := l.Info(); info.TornBytes != 100 || info.TornFile != FileName(1) || info.Seq != 5 {
		t.Fatalf("info %+v", info)
	}
	appendN(t, l, 5, 2)
	l.Close()
	if r := mustVerify(t, dir); r.TornBytes != 0 || r.Records != 7 || len(r.Warnings) != 0 {
		t.Fatalf("report after repair %+v", r)
	}
}

func TestOpenRefusesBrokenTail(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	appendN(t, l, 0, 5)
	l.Close()
	lines := readLog(t, dir)
	i := findSeq(t, lines, 3)
	lines[i].text = []byte(strings.Replace(string(lines[i].text), `"op":"sign"`, `"op":"sigm"`, 1))
	writeLog(t, dir, lines)
	_, err := Open(dir, testOptions())
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Seq != 3 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open: %v", err)
	}
	// Another audit key does not continue this log either.
	lines[i].text = []byte(strings.Replace(string(lines[i].text), `"op":"sigm"`, `"op":"sign"`, 1))
	writeLog(t, dir, lines)
	opts := testOptions()
	opts.AuditKeySeed = make([]byte, 32)
	if _, err := Open(dir, opts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with another key: %v", err)
	}
}

func TestAppendAfterClose(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions())
	l.Close()
	if err := l.Append(context.Background(), testRecord(1)); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Healthy(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Healthy after Close: %v", err)
	}
}

func TestInvalidRecord(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions())
	defer l.Close()
	for _, r := range []Record{{Result: ResultOK}, {Op: "sign"}, {Op: "sign", Result: ResultOK, InputB3: []byte{1, 2}}} {
		if err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("Append(%+v): %v", r, err)
		}
	}
	// Invalid UTF-8 is stored as U+FFFD, not refused.
	r := testRecord(1)
	r.Kid = "bad\xffkid"
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func TestRollback(t *testing.T) {
	dir := t.TempDir()
	gen := uint64(10)
	opts := testOptions()
	opts.StoreGeneration = func() uint64 { return gen }
	l := mustOpen(t, dir, opts)
	appendN(t, l, 0, 3)
	gen = 12
	l.Close()

	gen = 5       // an old copy of the store
	for range 2 { // noticed at every start, not only the first
		l = mustOpen(t, dir, opts)
		rb := l.Info().Rollback
		if rb == nil || !errors.Is(rb, ErrRollback) || rb.StoreGeneration != 5 || rb.CheckpointGeneration != 12 || l.Info().RollbackAccepted {
			t.Fatalf("rollback %+v", rb)
		}
		l.Close()
	}
	if r := mustVerify(t, dir); r.StoreGeneration != 12 || len(r.Warnings) != 0 {
		t.Fatalf("report %+v", r)
	}

	opts.AcceptRollback = true
	l = mustOpen(t, dir, opts)
	if !l.Info().RollbackAccepted {
		t.Fatal("rollback not accepted")
	}
	l.Close()
	r := mustVerify(t, dir)
	if r.StoreGeneration != 5 || len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "went down from 12 to 5") {
		t.Fatalf("report %+v", r)
	}
	opts.AcceptRollback = false
	l = mustOpen(t, dir, opts)
	if l.Info().Rollback != nil {
		t.Fatal("accepted rollback reported again")
	}
	l.Close()
}

func TestPublicKeyFile(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, filepath.Join(dir, DirName), testOptions())
	defer l.Close()
	if err := WritePublicKeyFile(dir, l.PublicKey()); err != nil {
		t.Fatal(err)
	}
	pub, err := ReadPublicKeyFile(dir)
	if err != nil || !pub.Equal(testPub) {
		t.Fatalf("ReadPublicKeyFile: %x, %v", pub, err)
	}
	if pub, err := ParsePublicKey(testPub); err != nil || !pub.Equal(testPub) {
		t.Fatalf("raw key: %v", err)
	}
	if _, err := ParsePublicKey([]byte("zz")); err == nil {
		t.Fatal("parsed garbage")
	}
}
