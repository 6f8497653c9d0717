package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tamperLog builds the log every tamper case starts from: 100 records over
// several files, checkpoints every 10 records, and a restart after seq 55
// (so there is a close checkpoint in the middle).
func tamperLog(t *testing.T) (dir string, lines []logLine) {
	t.Helper()
	dir = t.TempDir()
	opts := testOptions()
	opts.CheckpointEvery = 10
	opts.MaxFileBytes = 6000
	l := mustOpen(t, dir, opts)
	appendN(t, l, 0, 55)
	l.Close()
	l = mustOpen(t, dir, opts)
	appendN(t, l, 55, 45)
	l.Close()
	r := mustVerify(t, dir)
	if r.Records != 100 || r.Files < 5 || !r.Closed {
		t.Fatalf("base log: %+v", r)
	}
	return dir, readLog(t, dir)
}

// where returns the file and line of the first line matching pred in dir.
func where(t *testing.T, dir string, pred func(logLine) bool) (string, int) {
	t.Helper()
	for _, ln := range readLog(t, dir) {
		if pred(ln) {
			return ln.file, ln.line
		}
	}
	t.Fatal("no such line")
	return "", 0
}

func isSeq(seq uint64) func(logLine) bool {
	return func(l logLine) bool { return l.rec != nil && l.rec.Seq == seq }
}

func isCP(n uint64) func(logLine) bool {
	return func(l logLine) bool { return l.cp != nil && l.cp.N == n }
}

func remove(lines []logLine, i int) []logLine {
	return append(append([]logLine(nil), lines[:i]...), lines[i+1:]...)
}

func TestTamper(t *testing.T) {
	type want struct {
		file   string
		line   int
		seq    uint64
		reason string
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir string, lines []logLine) want
	}{
		{"flip a byte in a value", func(t *testing.T, dir string, lines []logLine) want {
			i := findSeq(t, lines, 37)
			lines[i].text = bytes.Replace(lines[i].text, []byte("#v1"), []byte("#v2"), 1)
			writeLog(t, dir, lines)
			return want{lines[i].file, lines[i].line, 37, "hash does not match"}
		}},
		{"flip a byte in the syntax", func(t *testing.T, dir string, lines []logLine) want {
			i := findSeq(t, lines, 37)
			lines[i].text[len(lines[i].text)-1] = ']'
			writeLog(t, dir, lines)
			return want{lines[i].file, lines[i].line, 37, "malformed"}
		}},
		{"flip a byte in the hash", func(t *testing.T, dir string, lines []logLine) want {
			i := findSeq(t, lines, 37)
			h := hex.EncodeToString(lines[i].rec.Hash[:])
			lines[i].text = bytes.Replace(lines[i].text, []byte(h), []byte(h[:10]+"0"+h[11:]), 1)
			if h[10] == '0' {
				lines[i].text = bytes.Replace(lines[i].text, []byte(h), []byte(h[:10]+"1"+h[11:]), 1)
			}
			writeLog(t, dir, lines)
			return want{lines[i].file, lines[i].line, 37, "hash does not match"}
		}},
		{"delete a record", func(t *testing.T, dir string, lines []logLine) want {
			writeLog(t, dir, remove(lines, findSeq(t, lines, 37)))
			f, l := where(t, dir, isSeq(38))
			return want{f, l, 38, "out of sequence"}
		}},
		{"duplicate a record", func(t *testing.T, dir string, lines []logLine) want {
			i := findSeq(t, lines, 37)
			lines = append(lines[:i+1], lines[i:]...)
			writeLog(t, dir, lines)
			f, l := where(t, dir, isSeq(37))
			return want{f, l + 1, 37, "out of sequence"}
		}},
		{"swap two records", func(t *testing.T, dir string, lines []logLine) want {
			i := findSeq(t, lines, 37)
			lines[i].text, lines[i+1].text = lines[i+1].text, lines[i].text
			writeLog(t, dir, lines)
			return want{lines[i].file, lines[i].line, 38, "out of sequence"}
		}},
		{"rewrite a record and rehash the chain after it", func(t *testing.T, dir string, lines []logLine) want {
			prev := [HashSize]byte{}
			for i := range lines {
				r := lines[i].rec
				if r == nil {
					continue
				}
				if r.Seq == 37 {
					r.Result, r.Code = ResultDenied, "NoCapability"
				}
				if r.Seq >= 37 {
					r.Prev = prev
					r.Hash = r.ComputeHash()
					lines[i].text = bytes.TrimSuffix(r.appendLine(nil), []byte("\n"))
				}
				prev = r.Hash
			}
			writeLog(t, dir, lines)
			// The chain holds; the next checkpoint (after seq 40) does not.
			i := findSeq(t, lines, 40) + 1
			if lines[i].cp == nil {
				t.Fatal("no checkpoint after seq 40")
			}
			return want{lines[i].file, lines[i].line, 40, "does not match the chain"}
		}},
		{"truncate a file mid-line", func(t *testing.T, dir string, lines []logLine) want {
			path := filepath.Join(dir, FileName(3))
			b, _ := os.ReadFile(path)
			seg, _ := parseSegment(b)
			os.WriteFile(path, b[:seg.complete-50], 0o600) // mid-line, the padding gone too
			var last logLine
			for _, l := range lines {
				if l.file == FileName(3) {
					last = l
				}
			}
			seq := last.rec.Seq // the incomplete line was to be this seq
			if last.rec == nil {
				seq = last.cp.Seq + 1
			}
			return want{FileName(3), last.line, seq, "incomplete line"}
		}},
		{"truncate a file at a line end", func(t *testing.T, dir string, lines []logLine) want {
			var kept []logLine
			var cut int
			for i, l := range lines {
				if l.file == FileName(3) && lines[i+1].file == FileName(3) && lines[i+2].file != FileName(3) {
					cut = 2 // drop the last two lines of file 3
				}
				if cut > 0 {
					cut--
					continue
				}
				kept = append(kept, l)
			}
			writeLog(t, dir, kept)
			first := lines[0]
			for _, l := range lines {
				if l.file == FileName(4) {
					first = l
					break
				}
			}
			seq := uint64(0)
			if first.rec != nil {
				seq = first.rec.Seq
			} else {
				seq = first.cp.Seq
			}
			return want{FileName(4), 2, seq, ""} // line 1 is the v2 header
		}},
		{"delete a middle file", func(t *testing.T, dir string, lines []logLine) want {
			os.Remove(filepath.Join(dir, FileName(3)))
			var seq uint64
			for _, l := range lines {
				if l.file == FileName(2) && l.rec != nil {
					seq = l.rec.Seq
				}
			}
			return want{FileName(3), 0, seq + 1, "file is missing"}
		}},
		{"delete the first file", func(t *testing.T, dir string, lines []logLine) want {
			os.Remove(filepath.Join(dir, FileName(1)))
			return want{FileName(1), 0, 1, "file is missing"}
		}},
		{"drop a periodic checkpoint", func(t *testing.T, dir string, lines []logLine) want {
			i := findSeq(t, lines, 20) + 1
			if lines[i].cp == nil || lines[i].cp.Reason != ReasonEvery {
				t.Fatal("no checkpoint after seq 20")
			}
			writeLog(t, dir, remove(lines, i))
			f, l := where(t, dir, isSeq(21))
			return want{f, l, 21, "a checkpoint is missing"}
		}},
		{"drop the first checkpoint", func(t *testing.T, dir string, lines []logLine) want {
			writeLog(t, dir, lines[1:])
			return want{FileName(1), 2, 1, "before the first checkpoint"}
		}},
		{"drop the close checkpoint of a restart", func(t *testing.T, dir string, lines []logLine) want {
			i := findSeq(t, lines, 55) + 1
			if lines[i].cp == nil || lines[i].cp.Reason != ReasonClose {
				t.Fatalf("no close checkpoint after seq 55: %s", lines[i].text)
			}
			n := lines[i].cp.N
			writeLog(t, dir, remove(lines, i))
			f, l := where(t, dir, isCP(n+1))
			return want{f, l, 55, "a checkpoint is missing or out of place"}
		}},
		{"verify with another audit key", func(t *testing.T, dir string, lines []logLine) want {
			return want{FileName(1), 2, 0, "signature does not verify"}
		}},
		{"re-sign with another audit key", func(t *testing.T, dir string, lines []logLine) want {
			other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
			for i := range lines {
				if cp := lines[i].cp; cp != nil {
					cp.Sig = ed25519.Sign(other, cp.signedMessage())
					lines[i].text = bytes.TrimSuffix(cp.appendLine(nil), []byte("\n"))
				}
			}
			writeLog(t, dir, lines)
			return want{FileName(1), 2, 0, "signature does not verify"}
		}},
		{"move a checkpoint", func(t *testing.T, dir string, lines []logLine) want {
			i := findSeq(t, lines, 30)
			lines[i].text, lines[i+1].text = lines[i+1].text, lines[i].text // checkpoint of seq 30 before record 30
			writeLog(t, dir, lines)
			return want{lines[i].file, lines[i].line, 30, "does not match the chain"}
		}},
		{"move a checkpoint later", func(t *testing.T, dir string, lines []logLine) want {
			i := findSeq(t, lines, 30) + 1
			lines[i].text, lines[i+1].text = lines[i+1].text, lines[i].text // record 31 before checkpoint of seq 30
			writeLog(t, dir, lines)
			return want{lines[i].file, lines[i].line, 31, "a checkpoint is missing"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, lines := tamperLog(t)
			w := tc.tamper(t, dir, lines)
			pub := testPub
			if strings.Contains(tc.name, "another audit key") && !strings.Contains(tc.name, "re-sign") {
				pub = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)).Public().(ed25519.PublicKey)
			}
			_, err := Verify(dir, pub)
			var ve *VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Verify: %v, want a *VerifyError", err)
			}
			if ve.File != w.file || ve.Line != w.line || ve.Seq != w.seq || !strings.Contains(ve.Reason, w.reason) {
				t.Fatalf("Verify: %v\nwant %s line %d: seq %d: …%s…", err, w.file, w.line, w.seq, w.reason)
			}
			t.Log(err)
		})
	}
}

func TestCutOffEndIsAWarning(t *testing.T) {
	dir, lines := tamperLog(t)
	writeLog(t, dir, lines[:len(lines)-5])
	r := mustVerify(t, dir)
	if r.Closed || len(r.Warnings) != 1 || r.LastSeq >= 100 {
		t.Fatalf("report %+v", r)
	}
	t.Log(r.Warnings)
}

func TestVerifyNoLog(t *testing.T) {
	if _, err := Verify(t.TempDir(), testPub); err == nil {
		t.Fatal("empty directory verified")
	}
	if _, err := Verify(filepath.Join(t.TempDir(), "nope"), testPub); err == nil {
		t.Fatal("missing directory verified")
	}
}
