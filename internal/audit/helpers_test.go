package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"lukechampine.com/blake3"
)

var (
	testSeed = bytes.Repeat([]byte{7}, ed25519.SeedSize)
	testPub  = ed25519.NewKeyFromSeed(testSeed).Public().(ed25519.PublicKey)
)

func testOptions() Options {
	return Options{AuditKeySeed: testSeed, StoreGeneration: func() uint64 { return 42 }}
}

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func testRecord(i int) Record {
	in := blake3.Sum256([]byte(fmt.Sprint("input ", i)))
	return Record{Op: "sign", Tenant: "acme", Kid: "acme/pay/ed25519/0190b1d6-3f3c-7c3e-9a4e-1f2a3b4c5d6e#v1",
		Alg: "ed25519", InputB3: in[:], Result: ResultOK, RequestID: fmt.Sprintf("req-%d", i), Actor: "00112233445566778899aabbccddeeff"}
}

func appendN(t testing.TB, l *Log, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := l.Append(context.Background(), testRecord(i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// appendConcurrently appends workers×each records from workers goroutines.
func appendConcurrently(t testing.TB, l *Log, workers, each int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(context.Background(), testRecord(w*each+i)); err != nil {
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
}

// logLine is one line of a log directory.
type logLine struct {
	file string
	line int
	text []byte
	rec  *Record
	cp   *Checkpoint
}

// readLog returns every complete line of the log in dir, in order, the
// way the package reads them: without a v2 header, up to the padding. An
// incomplete last line is returned too, as if it were complete.
func readLog(t testing.TB, dir string) []logLine {
	t.Helper()
	ns, err := listFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []logLine
	for _, n := range ns {
		data, err := os.ReadFile(filepath.Join(dir, FileName(n)))
		if err != nil {
			t.Fatal(err)
		}
		seg, err := parseSegment(data)
		if err != nil {
			t.Fatal(err)
		}
		if seg.end > seg.complete {
			seg.complete = seg.end
			data = append(data[:seg.end:seg.end], '\n')
		}
		seg.lines(data, func(ln int, b []byte) error {
			ll := logLine{file: FileName(n), line: ln, text: bytes.Clone(b)}
			ll.rec, ll.cp, _ = parseLine(ll.text)
			out = append(out, ll)
			return nil
		})
	}
	return out
}

// writeLog writes lines back as the log in dir, replacing its files, each
// line to the file it names, each file in format v2 without padding.
func writeLog(t testing.TB, dir string, lines []logLine) {
	t.Helper()
	ns, _ := listFiles(dir)
	for _, n := range ns {
		os.Remove(filepath.Join(dir, FileName(n)))
	}
	files := map[string][]byte{}
	for _, l := range lines {
		if files[l.file] == nil {
			files[l.file] = []byte(segmentHeader)
		}
		files[l.file] = append(append(files[l.file], l.text...), '\n')
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// findSeq returns the index of record seq in lines.
func findSeq(t testing.TB, lines []logLine, seq uint64) int {
	t.Helper()
	for i, l := range lines {
		if l.rec != nil && l.rec.Seq == seq {
			return i
		}
	}
	t.Fatalf("seq %d not in the log", seq)
	return -1
}

func mustVerify(t testing.TB, dir string) Report {
	t.Helper()
	r, err := Verify(dir, testPub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}
