package backup

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

var testHeader = Header{CreatedAt: "2026-01-02T03:04:05Z", KEK: KEKRootKey, KEKID: "0123456789abcdef", Server: "test"}

type rec struct {
	k string
	v []byte
}

func write(t testing.TB, h Header, recs []rec, rev int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Add(r.k, r.v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(rev); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(b []byte) (Header, []rec, Trailer, error) {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return Header{}, nil, Trailer{}, err
	}
	var out []rec
	for {
		k, v, err := r.Next()
		if err == io.EOF {
			t, _ := r.Trailer()
			return r.Header(), out, t, nil
		}
		if err != nil {
			return Header{}, nil, Trailer{}, err
		}
		out = append(out, rec{k, v})
	}
}

var testRecs = []rec{
	{"k/acme/docs/ed25519/1", []byte(`{"name":"x"}`)},
	{"meta/kek-check", []byte{0, 1, 2, 0xff}},
	{"s/acme/docs/ed25519/1/1", []byte{}},
	{"ünï", bytes.Repeat([]byte{7}, 70000)},
}

func TestRoundTrip(t *testing.T) {
	b := write(t, testHeader, testRecs, 42)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != len(testRecs)+2 {
		t.Fatalf("%d lines, want %d", len(lines), len(testRecs)+2)
	}
	if want := `{"format":"ron-kms-backup/v1","created_at":"2026-01-02T03:04:05Z","kek":"root.key","kek_id":"0123456789abcdef","server":"test"}`; lines[0] != want {
		t.Errorf("header line\n%s\nwant\n%s", lines[0], want)
	}
	if want := `{"k":"meta/kek-check","v":"AAEC/w=="}`; lines[2] != want {
		t.Errorf("record line %s, want %s", lines[2], want)
	}
	h, recs, tr, err := readAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.Format != Format || h.KEKID != testHeader.KEKID || tr.Items != 4 || tr.Revision != 42 {
		t.Fatalf("header %+v trailer %+v", h, tr)
	}
	for i := range recs {
		if recs[i].k != testRecs[i].k || !bytes.Equal(recs[i].v, testRecs[i].v) || recs[i].v == nil {
			t.Fatalf("record %d = %q, want %q", i, recs[i].k, testRecs[i].k)
		}
	}

	// An empty backup and a passphrase one.
	ph := testHeader
	ph.KEK, ph.KEKParams = KEKPassphrase, []byte(`{"kdf":"argon2id","salt_b64":"AAAAAAAAAAAAAAAAAAAAAA==","time":3,"memory_kib":65536,"threads":2}`)
	if _, recs, tr, err := readAll(write(t, ph, nil, 0)); err != nil || len(recs) != 0 || tr.Items != 0 {
		t.Fatalf("empty passphrase backup: %v %v %+v", err, recs, tr)
	}
}

func TestWriterRefuses(t *testing.T) {
	for name, h := range map[string]Header{
		"format":     {Format: "ron-kms-backup/v2", CreatedAt: testHeader.CreatedAt, KEK: KEKRootKey, KEKID: testHeader.KEKID},
		"kek":        {CreatedAt: testHeader.CreatedAt, KEK: "pkcs11", KEKID: testHeader.KEKID},
		"kek_id":     {CreatedAt: testHeader.CreatedAt, KEK: KEKRootKey, KEKID: "0123"},
		"created_at": {CreatedAt: "yesterday", KEK: KEKRootKey, KEKID: testHeader.KEKID},
		"no params":  {CreatedAt: testHeader.CreatedAt, KEK: KEKPassphrase, KEKID: testHeader.KEKID},
	} {
		if _, err := NewWriter(io.Discard, h); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: NewWriter = %v", name, err)
		}
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, testHeader)
	if err := w.Add("b", nil); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "", "c\x00", "\xff"} {
		if err := w.Add(k, nil); !errors.Is(err, ErrFormat) {
			t.Errorf("Add(%q) = %v", k, err)
		}
	}
	// Nothing is written before the first record.
	var empty bytes.Buffer
	if _, err := NewWriter(&empty, testHeader); err != nil || empty.Len() != 0 {
		t.Fatalf("NewWriter wrote %d bytes", empty.Len())
	}
}

func TestTruncated(t *testing.T) {
	b := write(t, testHeader, testRecs[:3], 7)
	for n := range len(b) {
		_, _, _, err := readAll(b[:n])
		if err == nil {
			t.Fatalf("a backup cut at %d of %d bytes was accepted", n, len(b))
		}
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrFormat) && !errors.Is(err, ErrChecksum) {
			t.Fatalf("cut at %d: untyped error %v", n, err)
		}
	}
	// Cut at a line boundary before the trailer: truncated, clearly.
	cut := bytes.LastIndexByte(b[:len(b)-1], '\n') + 1
	if _, _, _, err := readAll(b[:cut]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut before the trailer = %v, want ErrTruncated", err)
	}
}

func TestTampered(t *testing.T) {
	b := write(t, testHeader, testRecs[:3], 7)
	for i := range b {
		for _, x := range []byte{0x01, 0x20, 0x80} {
			c := bytes.Clone(b)
			c[i] ^= x
			if _, _, _, err := readAll(c); err == nil {
				t.Fatalf("flipping %#x at byte %d (%q) was accepted", x, i, b[i])
			}
		}
	}
	// Dropping a whole record line, or swapping two, is caught.
	lines := bytes.SplitAfter(b, []byte("\n"))
	drop := bytes.Join(append(append([][]byte{}, lines[:2]...), lines[3:]...), nil)
	if _, _, _, err := readAll(drop); !errors.Is(err, ErrChecksum) {
		t.Fatalf("dropped record = %v, want ErrChecksum", err)
	}
	// Other spellings of the same JSON are refused.
	for _, bad := range []string{
		strings.Replace(string(b), `{"k":"meta/kek-check"`, `{"k": "meta/kek-check"`, 1),
		strings.Replace(string(b), `"v":"AAEC/w=="`, `"v":"AAEC/w==","x":1`, 1),
	} {
		if _, _, _, err := readAll([]byte(bad)); err == nil {
			t.Fatalf("accepted %q", bad)
		}
	}
	if _, _, _, err := readAll(append(bytes.Clone(b), '\n')); !errors.Is(err, ErrFormat) {
		t.Fatalf("data after the trailer = %v", err)
	}
	if _, _, _, err := readAll([]byte("hello\n")); !errors.Is(err, ErrFormat) {
		t.Fatalf("not a backup = %v", err)
	}
}

// FuzzReader: no input panics; an accepted input is re-encoded to the same
// bytes; a refused one gets a typed error.
func FuzzReader(f *testing.F) {
	f.Add(write(f, testHeader, testRecs[:3], 7))
	f.Add(write(f, testHeader, nil, 0))
	f.Add([]byte(`{"format":"ron-kms-backup/v1"}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, recs, tr, err := readAll(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrChecksum) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again := write(t, h, recs, tr.Revision)
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%q\n%q", b, again)
		}
	})
}

func ExampleWriter() {
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, Header{CreatedAt: "2026-01-02T03:04:05Z", KEK: KEKRootKey, KEKID: "0123456789abcdef", Server: "v1"})
	w.Add("k/a", []byte("sealed"))
	w.Close(3)
	fmt.Print(strings.Split(buf.String(), "\n")[1])
	// Output: {"k":"k/a","v":"c2VhbGVk"}
}
