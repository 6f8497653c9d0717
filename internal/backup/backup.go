// Package backup is the ron-kms backup file format, ron-kms-backup/v1. It
// knows nothing about keys or stores: a backup is a header, a sequence of
// (key, value) records in strictly ascending key order, and a trailer.
//
// The file is UTF-8 text, one JSON object per line, each line ending in
// "\n" and written in exactly one form (the reader re-encodes every line and
// refuses any other spelling, so a file has one meaning and one hash):
//
//	{"format":"ron-kms-backup/v1","created_at":"2026-01-02T03:04:05Z","kek":"root.key","kek_id":"<16 hex>","server":"v1.2.3"}
//	{"k":"k/acme/docs/ed25519/0190…","v":"<standard padded base64>"}
//	…
//	{"items":2,"revision":17,"sha256":"<64 hex>"}
//
// The header names the key-encryption key the values are sealed under (its
// source, "root.key" or "passphrase", and its public 8-byte id) and, for a
// passphrase, the Argon2id parameters (salt included, none of it secret) in
// "kek_params". The KEK itself is never in a backup: values are copied as
// they are stored, so sealed seeds stay sealed. The trailer counts the
// records, gives the store revision the snapshot was taken at, and holds the
// SHA-256 of every byte of the file before its own 64 hex digits (so the
// count and the revision are covered too): a truncated, damaged or edited
// file is refused as a whole. The hash detects accidents and careless
// edits; it is not a signature (anyone can recompute it), and the sealed
// records carry their own authentication.
package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
	"unicode/utf8"
)

// Format is the value of the header's "format" field.
const Format = "ron-kms-backup/v1"

// KEK sources.
const (
	KEKRootKey    = "root.key"
	KEKPassphrase = "passphrase"
)

// MaxLine is the longest line, newline included, a Reader accepts.
const MaxLine = 64 << 20

// maxKey bounds record keys (the storage layer's own bound).
const maxKey = 4096

var (
	// ErrFormat: the input is not a well-formed ron-kms-backup/v1 file.
	ErrFormat = errors.New("backup: not a valid ron-kms backup")
	// ErrTruncated: the input ends before its trailer.
	ErrTruncated = errors.New("backup: the file is truncated (no trailer)")
	// ErrChecksum: the trailer's SHA-256 or item count does not match the
	// file: it was damaged or edited.
	ErrChecksum = errors.New("backup: checksum mismatch: the file was damaged or edited")
)

// Header is the first line of a backup.
type Header struct {
	Format string `json:"format"`
	// CreatedAt is UTC RFC 3339 with second precision.
	CreatedAt string `json:"created_at"`
	// KEK is the source of the key-encryption key: KEKRootKey or
	// KEKPassphrase.
	KEK string `json:"kek"`
	// KEKID is the hex id of the KEK (seal.AESGCM.KEKID): public, it only
	// tells keys apart.
	KEKID string `json:"kek_id"`
	// KEKParams are the passphrase KDF parameters (the kek.params file,
	// compact JSON); only with KEKPassphrase.
	KEKParams json.RawMessage `json:"kek_params,omitempty"`
	// Server is the version of the server that wrote the backup.
	Server string `json:"server"`
}

// Trailer is the last line of a backup.
type Trailer struct {
	Items    int64  `json:"items"`
	Revision int64  `json:"revision"`
	SHA256   string `json:"sha256"`
}

type record struct {
	K string `json:"k"`
	V string `json:"v"`
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// check validates a header's fields.
func (h Header) check() error {
	if h.Format != Format {
		return formatErr("format %.64q is not %s", h.Format, Format)
	}
	if t, err := time.Parse(time.RFC3339, h.CreatedAt); err != nil || t.UTC().Format(time.RFC3339) != h.CreatedAt {
		return formatErr("created_at must be a UTC RFC 3339 time to the second")
	}
	if id, err := hex.DecodeString(h.KEKID); err != nil || len(id) != 8 || hex.EncodeToString(id) != h.KEKID {
		return formatErr("kek_id must be 16 lower-case hex digits")
	}
	switch h.KEK {
	case KEKRootKey:
		if h.KEKParams != nil {
			return formatErr("kek_params is only for a passphrase KEK")
		}
	case KEKPassphrase:
		if len(h.KEKParams) == 0 || h.KEKParams[0] != '{' {
			return formatErr("a passphrase KEK needs kek_params")
		}
	default:
		return formatErr("kek must be %q or %q", KEKRootKey, KEKPassphrase)
	}
	if !utf8.ValidString(h.Server) || len(h.Server) > 128 {
		return formatErr("server must be at most 128 bytes of UTF-8")
	}
	return nil
}

// line encodes v as one canonical line.
func line(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Writer writes a backup. It is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	sum     hash.Hash
	n       int64
	last    string
	started bool
	hdr     []byte
	err     error
}

// NewWriter returns a Writer of a backup with header h (Format is filled in
// when empty). Nothing is written to w before the first Add or Close, so a
// caller whose snapshot fails at once has written nothing.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if h.Format == "" {
		h.Format = Format
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	hdr, err := line(h)
	if err != nil {
		return nil, formatErr("header: %v", err)
	}
	return &Writer{w: w, sum: sha256.New(), hdr: hdr}, nil
}

func (w *Writer) write(b []byte) error {
	if w.err != nil {
		return w.err
	}
	if !w.started {
		w.started = true
		if err := w.write(w.hdr); err != nil {
			return err
		}
	}
	if len(b) == 0 {
		return nil
	}
	w.sum.Write(b)
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("backup: writing: %w", err)
	}
	return w.err
}

// Add writes one record. Keys must be valid UTF-8, 1 to 4096 bytes without
// NUL, and strictly ascending.
func (w *Writer) Add(key string, value []byte) error {
	switch {
	case key == "" || len(key) > maxKey || !utf8.ValidString(key) || bytes.IndexByte([]byte(key), 0) >= 0:
		return formatErr("record key %.64q cannot be written (empty, too long, NUL or not UTF-8)", key)
	case w.n > 0 && key <= w.last:
		return formatErr("record key %.64q is not after %.64q", key, w.last)
	}
	b, err := line(record{K: key, V: base64.StdEncoding.EncodeToString(value)})
	if err != nil {
		return formatErr("record: %v", err)
	}
	if len(b) > MaxLine {
		return formatErr("record %.64q is longer than %d bytes", key, MaxLine)
	}
	if err := w.write(b); err != nil {
		return err
	}
	w.n++
	w.last = key
	return nil
}

// Close writes the trailer (and the header, for a backup without
// records), naming the store revision the records were read at. It does not
// close the underlying writer; the Writer cannot be used afterwards.
func (w *Writer) Close(revision int64) error {
	if !w.started {
		if err := w.write(nil); err != nil {
			return err
		}
	}
	if w.err != nil {
		return w.err
	}
	if revision < 0 {
		return formatErr("negative revision")
	}
	// The hash covers the trailer up to the hash itself.
	b := fmt.Appendf(nil, `{"items":%d,"revision":%d,"sha256":"`, w.n, revision)
	w.sum.Write(b)
	b = fmt.Appendf(b, "%x\"}\n", w.sum.Sum(nil))
	w.err = errors.New("backup: Writer already closed")
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("backup: writing: %w", err)
	}
	return nil
}
