package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyFixture copies testdata/name (a v1 log written by the code before
// format v2) to a new directory.
func copyFixture(t testing.TB, name string) string {
	t.Helper()
	src := filepath.Join("testdata", name)
	dir := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readFile(t testing.TB, dir string, n int) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, FileName(n)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestV1Fixtures: the old logs verify as they are, and Open continues them
// in a new v2 file, leaving the v1 files as they were (but for a torn line
// cut off).
func TestV1Fixtures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records int
		closed  bool
	}{{"v1-closed", 9, true}, {"v1-torn", 6, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyFixture(t, tc.name)
			r := mustVerify(t, dir)
			if r.Records != tc.records || r.Closed != tc.closed || (r.TornBytes > 0) == tc.closed {
				t.Fatalf("report of the fixture: %+v", r)
			}
			before, _ := listFiles(dir)
			old := map[int][]byte{}
			for _, n := range before {
				old[n] = readFile(t, dir, n)
				if seg, _ := parseSegment(old[n]); seg.version != 1 {
					t.Fatalf("%s is not v1", FileName(n))
				}
			}

			l := mustOpen(t, dir, testOptions())
			if got := l.Info().TornBytes; got != r.TornBytes {
				t.Errorf("Open cut %d bytes, Verify saw %d torn", got, r.TornBytes)
			}
			if l.Info().Seq != r.LastSeq {
				t.Errorf("Open continues after seq %d, the log ends at %d", l.Info().Seq, r.LastSeq)
			}
			appendN(t, l, 100, 3)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}

			after, _ := listFiles(dir)
			if len(after) != len(before)+1 {
				t.Fatalf("files %v after Open, %v before: want one new file", after, before)
			}
			newest := readFile(t, dir, after[len(after)-1])
			if !bytes.HasPrefix(newest, []byte(segmentHeader)) {
				t.Fatalf("the new file does not start with the v2 header: %q", newest[:min(len(newest), 40)])
			}
			for i, n := range before {
				b := readFile(t, dir, n)
				want := old[n]
				if i == len(before)-1 && r.TornBytes > 0 {
					want = want[:len(want)-r.TornBytes]
				}
				if !bytes.Equal(b, want) {
					t.Errorf("%s changed", FileName(n))
				}
			}
			r2 := mustVerify(t, dir)
			if r2.Records != tc.records+3 || !r2.Closed || r2.TornBytes != 0 || r2.Files != len(after) {
				t.Fatalf("report after appending: %+v", r2)
			}
			// Tail reads across the formats.
			if got := tailSeqs(t, dir, -1); len(got) != tc.records+3 || got[len(got)-1] != r2.LastSeq {
				t.Fatalf("Tail read seqs %v", got)
			}
		})
	}
}

// TestSegmentPrealloc: appends into a v2 file's zero-filled part change
// neither its size nor its first bytes after the records; it grows by
// PreallocBytes steps up to MaxFileBytes.
func TestSegmentPrealloc(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.PreallocBytes = 8 << 10
	opts.MaxFileBytes = 20 << 10
	l := mustOpen(t, dir, opts)
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, FileName(1)))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if s := size(); s != opts.PreallocBytes {
		t.Fatalf("new file has %d bytes, want %d", s, opts.PreallocBytes)
	}
	appendN(t, l, 0, 3)
	if s := size(); s != opts.PreallocBytes {
		t.Fatalf("after 3 records the file has %d bytes, want %d", s, opts.PreallocBytes)
	}
	appendN(t, l, 3, 40) // ≈ 16 KB of records: two extensions, then the cap
	if s := size(); s != opts.MaxFileBytes {
		t.Fatalf("after 43 records the file has %d bytes, want the cap %d", s, opts.MaxFileBytes)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ns, _ := listFiles(dir)
	for _, n := range ns {
		b := readFile(t, dir, n)
		seg, err := parseSegment(b)
		if err != nil || seg.version != 2 || seg.torn() != 0 {
			t.Fatalf("%s: %+v, %v", FileName(n), seg, err)
		}
		if int64(len(b)) > opts.MaxFileBytes+512 {
			t.Errorf("%s has %d bytes", FileName(n), len(b))
		}
	}
	if r := mustVerify(t, dir); r.Records != 43 {
		t.Fatalf("%d files, report %+v", len(ns), r)
	}
}

// TestSegmentTornTail: what a crash can leave at the end of a v2 file — an
// incomplete line in the padding, the remains of a torn write further on —
// is reported by Verify, cut off by Open, and every complete record stays.
func TestSegmentTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		junk func(b []byte, end int) // writes into the padding after end
	}{
		{"incomplete line", func(b []byte, end int) { copy(b[end:], `{"actor":"00112233","alg":"ed2`) }},
		{"garbage after zeros", func(b []byte, end int) { copy(b[end+700:], "\xff\x01garbage of a torn write") }},
		{"both", func(b []byte, end int) {
			copy(b[end:], `{"actor":"0011`)
			copy(b[end+300:], "sector of the same torn write\n{")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := mustOpen(t, dir, testOptions())
			appendN(t, l, 0, 5)
			l.Close()
			path := filepath.Join(dir, FileName(1))
			b := readFile(t, dir, 1)
			seg, _ := parseSegment(b)
			tc.junk(b, seg.end)
			os.WriteFile(path, b, 0o600)
			want, _ := parseSegment(b)
			if want.torn() == 0 {
				t.Fatal("the junk left no trace")
			}

			r := mustVerify(t, dir)
			if r.Records != 5 || r.TornBytes != want.torn() {
				t.Fatalf("Verify: %+v, want 5 records and %d torn bytes", r, want.torn())
			}
			l = mustOpen(t, dir, testOptions())
			if info := l.Info(); info.TornBytes != want.torn() || info.TornFile != FileName(1) || info.Seq != 5 {
				t.Fatalf("Open: %+v", info)
			}
			appendN(t, l, 5, 2)
			l.Close()
			if r := mustVerify(t, dir); r.Records != 7 || r.TornBytes != 0 || !r.Closed {
				t.Fatalf("after Open and 2 more: %+v", r)
			}
			b = readFile(t, dir, 1)
			if bytes.Contains(b, []byte("garbage")) || bytes.Contains(b, []byte("sector")) {
				t.Fatal("the torn write's remains are still in the file")
			}
		})
	}
}

// TestSegmentTornCreation: a crash while a new file was being created
// leaves it empty, with a part of the header, or zeros; Open writes it anew
// and the chain goes on in it.
func TestSegmentTornCreation(t *testing.T) {
	for _, content := range []string{"", segmentHeader[:7], segmentHeader[:10] + "\x00\x00\x00\x00", "\x00\x00\x00"} {
		dir := t.TempDir()
		l := mustOpen(t, dir, testOptions())
		appendN(t, l, 0, 3)
		l.Close()
		os.WriteFile(filepath.Join(dir, FileName(2)), []byte(content), 0o600)
		r := mustVerify(t, dir)
		if r.Records != 3 || r.TornBytes != len(strings.TrimRight(content, "\x00")) {
			t.Fatalf("%q: Verify: %+v", content, r)
		}
		l = mustOpen(t, dir, testOptions())
		appendN(t, l, 3, 2)
		l.Close()
		if r := mustVerify(t, dir); r.Records != 5 || r.Files != 2 || r.TornBytes != 0 {
			t.Fatalf("%q: after Open: %+v", content, r)
		}
		if b := readFile(t, dir, 2); !bytes.HasPrefix(b, []byte(segmentHeader)) {
			t.Fatalf("%q: file 2 was not written anew", content)
		}
	}
}

// TestSegmentErrors: what is not a torn end is refused, by Verify and by
// Open: a newer format, an incomplete line or stray bytes in the padding
// of a file that is not the last.
func TestSegmentErrors(t *testing.T) {
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		opts := testOptions()
		opts.MaxFileBytes = 3000
		l := mustOpen(t, dir, opts)
		appendN(t, l, 0, 12)
		l.Close()
		if ns, _ := listFiles(dir); len(ns) < 3 {
			t.Fatalf("only %d files", len(ns))
		}
		return dir
	}
	for _, tc := range []struct {
		name, reason string
		edit         func(b []byte) []byte
	}{
		{"newer format", "unknown segment format", func(b []byte) []byte {
			return append([]byte("ron-kms audit segment v3\n"), b[len(segmentHeader):]...)
		}},
		{"stray bytes after the padding", "after the zero padding", func(b []byte) []byte {
			b[len(b)-1] = 'x'
			return b
		}},
		{"incomplete line", "incomplete line", func(b []byte) []byte {
			seg, _ := parseSegment(b)
			b[seg.complete-1] = ' ' // the last line loses its "\n"
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := setup(t)
			path := filepath.Join(dir, FileName(1))
			b := readFile(t, dir, 1)
			os.WriteFile(path, tc.edit(bytes.Clone(b)), 0o600)
			_, err := Verify(dir, testPub)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.File != FileName(1) || !strings.Contains(ve.Reason, tc.reason) {
				t.Fatalf("Verify: %v, want a *VerifyError in %s saying %q", err, FileName(1), tc.reason)
			}
			// Open reads from the newest checkpoint on; make file 1 part
			// of that by putting it last.
			ns, _ := listFiles(dir)
			for _, n := range ns[1:] {
				os.Remove(filepath.Join(dir, FileName(n)))
			}
			if tc.name == "newer format" {
				if _, err := Open(dir, testOptions()); !errors.Is(err, errSegmentVersion) {
					t.Fatalf("Open of a newer format: %v", err)
				}
			}
		})
	}
}

// FuzzSegment: parseSegment never panics and its parts hold their
// invariants; scanning a file never panics.
func FuzzSegment(f *testing.F) {
	for _, fx := range []string{"v1-closed", "v1-torn"} {
		ents, _ := os.ReadDir(filepath.Join("testdata", fx))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join("testdata", fx, e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	dir := f.TempDir()
	opts := testOptions()
	opts.MaxFileBytes, opts.PreallocBytes = 3000, 1024
	l := mustOpen(f, dir, opts)
	appendN(f, l, 0, 8)
	l.Close()
	ns, _ := listFiles(dir)
	for _, n := range ns {
		b := readFile(f, dir, n)
		f.Add(b)
		seg, _ := parseSegment(b)
		torn := bytes.Clone(b)
		copy(torn[seg.complete:], `{"seq":`)
		f.Add(torn)
	}
	f.Add([]byte(segmentHeader[:5]))
	f.Add([]byte("ron-kms audit segment v9\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		seg, err := parseSegment(data)
		if err != nil {
			if !errors.Is(err, errSegmentVersion) || !bytes.HasPrefix(data, []byte(segmentPrefix)) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !(0 <= seg.start && seg.start <= seg.complete && seg.complete <= seg.end && seg.end <= seg.dirty && seg.dirty <= len(data)) {
			t.Fatalf("parts out of order: %+v of %d bytes", seg, len(data))
		}
		if seg.complete > seg.start && data[seg.complete-1] != '\n' {
			t.Fatalf("complete part does not end with a newline: %+v", seg)
		}
		if bytes.IndexByte(data[seg.complete:seg.end], '\n') >= 0 {
			t.Fatalf("a newline after the last complete line: %+v", seg)
		}
		if !allZero(data[seg.dirty:]) {
			t.Fatalf("non-zero bytes after dirty: %+v", seg)
		}
		if seg.version == 2 && !seg.headerTorn && bytes.IndexByte(data[seg.start:seg.end], 0) >= 0 {
			t.Fatalf("a NUL in the line data of a v2 file: %+v", seg)
		}
		// Scanning may fail but must not panic.
		c := newChain(testPub, true)
		c.scanSegment("f", data, seg, true)
	})
}

// tailSeqs returns the seqs of the records Tail passes for its last n.
func tailSeqs(t testing.TB, dir string, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	err := Tail(t.Context(), dir, n, false, 0, func(e Entry) error {
		if e.Record != nil {
			seqs = append(seqs, e.Record.Seq)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

// countingFile counts a file's syncs by kind.
type countingFile struct {
	logFile
	syncs, datasyncs *int
}

func (f *countingFile) Sync() error     { *f.syncs++; return f.logFile.Sync() }
func (f *countingFile) Datasync() error { *f.datasyncs++; return f.logFile.Datasync() }

// TestSegmentSyncKinds: a batch written into zero-filled space is made
// durable with an fdatasync; one that needed the file extended, with a full
// fsync; a new file is fsynced once before any record goes in.
func TestSegmentSyncKinds(t *testing.T) {
	dir := t.TempDir()
	var syncs, datasyncs int
	opts := testOptions()
	opts.PreallocBytes = 8 << 10
	opts.wrapFile = func(f logFile) logFile { return &countingFile{f, &syncs, &datasyncs} }
	l := mustOpen(t, dir, opts)
	defer l.Close()
	// Open: the new file's fsync, then the open checkpoint's fdatasync.
	if syncs != 1 || datasyncs != 1 {
		t.Fatalf("after Open: %d fsyncs, %d fdatasyncs; want 1 and 1", syncs, datasyncs)
	}
	appendN(t, l, 0, 5) // ≈ 2 KB: within the first 8 KB
	if syncs != 1 || datasyncs != 6 {
		t.Fatalf("after 5 appends: %d fsyncs, %d fdatasyncs; want 1 and 6", syncs, datasyncs)
	}
	before := datasyncs
	appendN(t, l, 5, 20) // crosses 8 KB once
	if syncs != 2 || datasyncs != before+19 {
		t.Fatalf("after 20 more: %d fsyncs, %d fdatasyncs; want 2 and %d", syncs, datasyncs, before+19)
	}
}
