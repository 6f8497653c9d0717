package audit

import (
	"bytes"
	"errors"
	"os"

	"github.com/ron-kms/ron-kms/internal/fsutil"
)

// Segment formats. A log file ("segment") is in one of two formats, and a
// log may hold both: files written before format v2 existed stay v1 and are
// read as such forever.
//
//   - v1: lines of canonical JSON, each ended by "\n", nothing else. The
//     file grows with every write.
//   - v2: the header line segmentHeader, then the same lines, then zero
//     bytes up to the file's allocated size. The writer zero-fills the
//     file ahead of its records, so an append changes neither the file's
//     size nor its block map and an fdatasync makes it durable.
//
// A line never holds a NUL byte (canonical JSON escapes every control
// character), so in a v2 file the line data ends at the first NUL after
// the header.
const segmentHeader = "ron-kms audit segment v2\n"

// segmentPrefix begins the header of every format after v1; a file that
// starts with it but not with segmentHeader is of a format this code does
// not know.
const segmentPrefix = "ron-kms audit segment "

// errSegmentVersion reports a file of a segment format newer than this code.
var errSegmentVersion = errors.New("audit: unknown segment format (written by a newer ron-kms?)")

// segment is where the parts of one file's bytes lie.
type segment struct {
	version int // 1 or 2
	// headerTorn: the file holds a beginning of the v2 header and nothing
	// else but zeros: its creation did not complete (a crash).
	headerTorn bool
	start      int // the first line begins here (after the header)
	complete   int // just past the last complete line ("\n")
	end        int // line data ends here: an incomplete line is [complete, end)
	// dirty is just past the last non-zero byte of the file, ≥ end: in v2,
	// [end, dirty) is what a torn write left beyond the padding's first
	// zero. In v1 it equals end (= the file's length).
	dirty int
}

// torn is the number of bytes after the last complete line that are not
// padding: an incomplete line, the remains of a torn write, a torn header.
func (s segment) torn() int { return s.dirty - s.complete }

// parseSegment finds the parts of a file's bytes. Its only error is
// errSegmentVersion.
func parseSegment(data []byte) (segment, error) {
	if !bytes.HasPrefix(data, []byte(segmentPrefix)) {
		head := data
		if i := bytes.IndexByte(data, 0); i >= 0 {
			head = data[:i]
		}
		if len(data) > 0 && len(head) < len(segmentHeader) && bytes.HasPrefix([]byte(segmentHeader), head) && allZero(data[len(head):]) {
			return segment{version: 2, headerTorn: true, start: 0, complete: 0, end: len(head), dirty: len(head)}, nil
		}
		// v1: all of it is line data.
		s := segment{version: 1, end: len(data), dirty: len(data)}
		s.complete = bytes.LastIndexByte(data, '\n') + 1
		return s, nil
	}
	if !bytes.HasPrefix(data, []byte(segmentHeader)) {
		if len(data) < len(segmentHeader) && bytes.HasPrefix([]byte(segmentHeader), data) {
			return segment{version: 2, headerTorn: true, end: len(data), dirty: len(data)}, nil
		}
		return segment{}, errSegmentVersion
	}
	s := segment{version: 2, start: len(segmentHeader)}
	body := data[s.start:]
	n := bytes.IndexByte(body, 0)
	if n < 0 {
		n = len(body)
	}
	s.end = s.start + n
	s.complete = s.start + bytes.LastIndexByte(body[:n], '\n') + 1
	s.dirty = s.end
	if i := lastNonZero(data[s.end:]); i >= 0 {
		s.dirty = s.end + i + 1
	}
	return s, nil
}

// lines calls fn for every complete line of data (without its "\n"), with
// its 1-based line number in the file (a v2 header is line 1), stopping at
// the first error.
func (s segment) lines(data []byte, fn func(ln int, line []byte) error) error {
	ln := 1
	if s.version == 2 {
		ln = 2
	}
	b := data[s.start:s.complete]
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if err := fn(ln, b[:i]); err != nil {
			return err
		}
		b = b[i+1:]
		ln++
	}
	return nil
}

func allZero(b []byte) bool { return lastNonZero(b) < 0 }

// lastNonZero returns the index of the last non-zero byte of b, or -1.
func lastNonZero(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i
		}
	}
	return -1
}

// DefaultPreallocBytes is the default of Options.PreallocBytes.
const DefaultPreallocBytes = 4 << 20

// zeros is what a file is extended with.
var zeros = make([]byte, 64<<10)

// writeZeros writes n zero bytes to f at off.
func writeZeros(f logFile, off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := f.WriteAt(zeros[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// osFile is a log file on disk.
type osFile struct{ *os.File }

var _ logFile = osFile{}

// Datasync makes the file's data durable without its metadata (fdatasync
// where the system has it, else a full fsync). It is enough only when the
// write did not change the file's size or block map.
func (f osFile) Datasync() error { return fsutil.Datasync(f.File) }
