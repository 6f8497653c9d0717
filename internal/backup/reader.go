package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Reader reads a backup, checking it as it goes. Records come out before
// the trailer has been checked: a caller that must not act on a damaged
// file reads it to the end first (Verify), then again. It is not safe for
// concurrent use.
type Reader struct {
	r       *bufio.Reader
	sum     hash.Hash
	hdr     Header
	n       int64
	last    string
	trailer *Trailer
	lineNo  int
}

// NewReader reads and checks the header of the backup in r.
func NewReader(r io.Reader) (*Reader, error) {
	br := &Reader{r: bufio.NewReaderSize(r, 64<<10), sum: sha256.New()}
	b, err := br.line()
	if err == io.EOF {
		return nil, formatErr("empty file")
	}
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(b, []byte(`{"format":`)) {
		return nil, formatErr("the first line is not a ron-kms backup header")
	}
	if err := canonical(b, &br.hdr); err != nil {
		return nil, formatErr("header: %v", err)
	}
	if err := br.hdr.check(); err != nil {
		return nil, err
	}
	br.sum.Write(b)
	return br, nil
}

// Header returns the backup's header.
func (r *Reader) Header() Header { return r.hdr }

// Next returns the next record. After the last one it checks the trailer
// and returns io.EOF if the whole file is intact; otherwise an error
// wrapping ErrFormat, ErrTruncated or ErrChecksum. The value belongs to the
// caller and is never nil.
func (r *Reader) Next() (key string, value []byte, err error) {
	if r.trailer != nil {
		return "", nil, io.EOF
	}
	b, err := r.line()
	if err == io.EOF {
		return "", nil, ErrTruncated
	}
	if err != nil {
		return "", nil, err
	}
	switch {
	case bytes.HasPrefix(b, []byte(`{"k":`)):
		var rec record
		if err := canonical(b, &rec); err != nil {
			return "", nil, formatErr("line %d: %v", r.lineNo, err)
		}
		v, err := base64.StdEncoding.Strict().DecodeString(rec.V)
		if err != nil {
			return "", nil, formatErr("line %d: value is not standard padded base64", r.lineNo)
		}
		if rec.K == "" || len(rec.K) > maxKey || bytes.IndexByte([]byte(rec.K), 0) >= 0 {
			return "", nil, formatErr("line %d: invalid key", r.lineNo)
		}
		if r.n > 0 && rec.K <= r.last {
			return "", nil, formatErr("line %d: key %.64q is not after %.64q", r.lineNo, rec.K, r.last)
		}
		r.sum.Write(b)
		r.n++
		r.last = rec.K
		return rec.K, v, nil
	case bytes.HasPrefix(b, []byte(`{"items":`)):
		var t Trailer
		if err := canonical(b, &t); err != nil {
			return "", nil, formatErr("line %d: trailer: %v", r.lineNo, err)
		}
		if len(t.SHA256) != 2*sha256.Size {
			return "", nil, formatErr("line %d: trailer: sha256 must be 64 hex digits", r.lineNo)
		}
		r.sum.Write(b[:len(b)-len(t.SHA256)-len("\"}\n")])
		if t.Items != r.n || t.SHA256 != hex.EncodeToString(r.sum.Sum(nil)) {
			return "", nil, fmt.Errorf("%w (trailer at line %d: %d records and a SHA-256 that does not match the %d records read)", ErrChecksum, r.lineNo, t.Items, r.n)
		}
		if t.Revision < 0 {
			return "", nil, formatErr("line %d: negative revision", r.lineNo)
		}
		if _, err := r.r.ReadByte(); err != io.EOF {
			return "", nil, formatErr("data after the trailer")
		}
		r.trailer = &t
		return "", nil, io.EOF
	default:
		return "", nil, formatErr("line %d is neither a record nor the trailer", r.lineNo)
	}
}

// Trailer returns the checked trailer once Next has returned io.EOF.
func (r *Reader) Trailer() (Trailer, bool) {
	if r.trailer == nil {
		return Trailer{}, false
	}
	return *r.trailer, true
}

// line returns the next line, newline included: io.EOF at a clean end,
// ErrTruncated for a last line without its newline.
func (r *Reader) line() ([]byte, error) {
	var out []byte
	for {
		frag, err := r.r.ReadSlice('\n')
		if len(out)+len(frag) > MaxLine {
			return nil, formatErr("line %d is longer than %d bytes", r.lineNo+1, MaxLine)
		}
		out = append(out, frag...)
		switch {
		case err == nil:
			r.lineNo++
			return out, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(out) == 0:
			return nil, io.EOF
		case err == io.EOF:
			return nil, fmt.Errorf("%w: line %d ends without a newline", ErrTruncated, r.lineNo+1)
		default:
			return nil, fmt.Errorf("backup: reading: %w", err)
		}
	}
}

// canonical decodes the line b into v and requires b to be exactly the
// encoding of v: no unknown or repeated fields, no other spelling, order or
// spacing, no invalid UTF-8.
func canonical(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errors.New("malformed JSON or unknown field")
	}
	again, err := line(v)
	if err != nil || !bytes.Equal(again, b) {
		return errors.New("not in canonical form")
	}
	return nil
}

// Verify reads the whole backup in r and checks it, without keeping the
// records. It returns the header and the trailer of an intact backup.
func Verify(r io.Reader) (Header, Trailer, error) {
	br, err := NewReader(r)
	if err != nil {
		return Header{}, Trailer{}, err
	}
	for {
		_, _, err := br.Next()
		if err == io.EOF {
			t, _ := br.Trailer()
			return br.hdr, t, nil
		}
		if err != nil {
			return Header{}, Trailer{}, err
		}
	}
}
