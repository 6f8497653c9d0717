package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Entry is one line of the log as Tail reads it: exactly one of Record and
// Checkpoint is set.
type Entry struct {
	File       string
	Line       int
	Record     *Record
	Checkpoint *Checkpoint
}

// Tail calls fn for the last n records of the log in dir (all of them if n is
// negative), with the checkpoints among and after them, in order. With follow
// it then keeps reading new lines, across new files, every poll (default one
// second), until ctx ends (Tail then returns nil) or fn returns an error.
//
// Tail is for people watching the log: it parses every line but does not
// check the chain or the signatures; Verify does. It never reads an
// incomplete last line.
func Tail(ctx context.Context, dir string, n int, follow bool, poll time.Duration, fn func(Entry) error) error {
	if poll <= 0 {
		poll = time.Second
	}
	ns, err := listFiles(dir)
	if err != nil {
		return err
	}
	if len(ns) == 0 && !follow {
		return fmt.Errorf("audit: no log files (%s) in %s", FileName(1), dir)
	}
	// Find where the last n records start.
	start, skip := 0, 0
	if n >= 0 {
	search:
		for k := len(ns) - 1; k >= 0; k-- {
			data, err := os.ReadFile(filepath.Join(dir, FileName(ns[k])))
			if err != nil {
				return err
			}
			seg, err := parseSegment(data)
			if err != nil {
				return fmt.Errorf("audit: %s: %w", FileName(ns[k]), err)
			}
			lines := completeLines(data[seg.start:seg.complete])
			start, skip = k, 0
			for i := len(lines) - 1; i >= 0; i-- {
				if bytes.HasPrefix(lines[i], []byte(`{"checkpoint":`)) {
					continue
				}
				if n == 0 {
					skip = i + 1
					break search
				}
				n--
			}
		}
	}
	t := &tailer{dir: dir, fn: fn}
	if len(ns) > 0 {
		for k := start; k < len(ns); k++ {
			t.file, t.off, t.line = ns[k], 0, 0
			s := 0
			if k == start {
				s = skip
			}
			if _, err := t.read(s); err != nil {
				return err
			}
		}
	} else {
		t.file = 1
	}
	if !follow {
		return nil
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// A new file is started only once the one before is complete, so
		// read the rest of this one after seeing the next exists.
		_, nextErr := os.Stat(filepath.Join(dir, FileName(t.file+1)))
		if _, err := t.read(0); err != nil {
			return err
		}
		if nextErr == nil {
			t.file, t.off, t.line = t.file+1, 0, 0
			if _, err := t.read(0); err != nil {
				return err
			}
		}
	}
}

type tailer struct {
	dir  string
	fn   func(Entry) error
	file int
	off  int64
	line int
}

// read passes the complete lines of the current file after t.off to fn,
// skipping the first skip of them. At t.off 0 it first passes over a v2
// header (once complete); in a v2 file it stops at the zero padding.
func (t *tailer) read(skip int) (int, error) {
	f, err := os.Open(filepath.Join(t.dir, FileName(t.file)))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	data, err := readToPadding(f, t.off)
	if err != nil {
		return 0, err
	}
	if t.off == 0 {
		seg, err := parseSegment(data)
		if err != nil {
			return 0, fmt.Errorf("audit: %s: %w", FileName(t.file), err)
		}
		if seg.headerTorn {
			return 0, nil // being created
		}
		if seg.version == 2 {
			t.off, t.line = int64(seg.start), 1
			data = data[seg.start:]
		}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		data = data[:i] // the padding (lines never hold a NUL)
	}
	lines := completeLines(data)
	for i, ln := range lines {
		t.line++
		t.off += int64(len(ln)) + 1
		if i < skip {
			continue
		}
		rec, cp, err := parseLine(ln)
		if err != nil {
			return i, fmt.Errorf("audit: %s line %d: %w", FileName(t.file), t.line, err)
		}
		if err := t.fn(Entry{File: FileName(t.file), Line: t.line, Record: rec, Checkpoint: cp}); err != nil {
			return i, err
		}
	}
	return len(lines), nil
}

// readToPadding reads f from off to its end or to the first NUL (a v2
// file's padding: no need to read megabytes of zeros at every poll), in
// chunks.
func readToPadding(f *os.File, off int64) ([]byte, error) {
	var data []byte
	chunk := make([]byte, 256<<10)
	for {
		n, err := f.ReadAt(chunk, off)
		data = append(data, chunk[:n]...)
		off += int64(n)
		if bytes.IndexByte(chunk[:n], 0) >= 0 || errors.Is(err, io.EOF) {
			return data, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// completeLines splits data into lines without their "\n", leaving out an
// incomplete last line.
func completeLines(data []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return out
		}
		out = append(out, data[:i])
		data = data[i+1:]
	}
}
