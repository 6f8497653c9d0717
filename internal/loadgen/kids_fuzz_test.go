package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// seededKIDs returns the kids files in testdata/kids-out, written by
// `ron-kms keys seed --count N [--tenant T --purpose P] --alg A --kids-out F`
// against a server (ed25519 with the default tenant and purpose, ml-dsa-65
// under t-9_x/p-load_2, mldsa65-ed25519).
func seededKIDs(t testing.TB) [][]byte {
	t.Helper()
	names, err := filepath.Glob("testdata/kids-out/*.kids")
	if err != nil || len(names) == 0 {
		t.Fatalf("no kids files in testdata/kids-out: %v", err)
	}
	var files [][]byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, b)
	}
	return files
}

// countingReader reads r, then tail bytes of key ids, and counts the bytes
// it gives.
type countingReader struct {
	r    io.Reader
	tail int64
	n    int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF && c.tail > 0 {
		kid := "seed/load/ed25519/01a25092-1260-72d7-aa50-2172c7ec26f4#v1\n"
		c.r = io.LimitReader(strings.NewReader(strings.Repeat(kid, int(c.tail)/len(kid)+1)), c.tail)
		c.tail = 0
		n, err = c.r.Read(p)
	}
	c.n += int64(n)
	return n, err
}

// wantKIDs is what ReadKIDs should make of b, worked out another way: the
// kids of the lines of b in order, or the number (from 1) of the first line
// that is neither a kid, blank nor a comment.
func wantKIDs(b []byte) (kids []string, badLine int) {
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, err := api.ParseKeyRef(line); err != nil {
			return nil, i + 1
		}
		kids = append(kids, line)
	}
	return kids, 0
}

// FuzzReadKIDs: ReadKIDs reads at most its limit and one byte more, and
// refuses a larger file; a file it accepts gives the kids of its lines in
// order, each a canonical key id or name that kidAlg splices as it is, and
// written one a line, as keys seed writes them, reads back the same; a file
// it refuses is ErrKIDs (naming the first bad line, and wrapping
// api.ErrBadKID, when a line is to blame) and no kids.
func FuzzReadKIDs(f *testing.F) {
	for _, file := range seededKIDs(f) {
		f.Add(file, uint16(len(file)))
		f.Add(file, uint16(len(file)-1))
		s := string(file)
		first, _, _ := strings.Cut(s, "\n")
		for _, near := range []string{
			"# made by keys seed\n\n" + strings.ReplaceAll(s, "\n", "\r\n"),
			strings.TrimSuffix(s, "\n"),
			"  " + strings.ReplaceAll(s, "#v1", "") + "\t",
			strings.Replace(s, "#v1", "#v01", 1),
			strings.Replace(s, "#v1", "#v0", 1),
			strings.Replace(s, "#v1", "#V1", 1),
			strings.Replace(s, "\n", "\n"+strings.ToUpper(first)+"\n", 1),
			strings.Replace(s, "\n", "\n"+first+" "+first+"\n", 1),
			strings.Replace(s, "\n", "\n\x00\n", 1),
			strings.Replace(s, "/", "//", 1),
			s + "#",
			s + strings.Repeat("a", 300),
		} {
			f.Add([]byte(near), uint16(65535))
		}
	}
	f.Add([]byte{}, uint16(0))
	f.Add([]byte("\n\n# nothing\n"), uint16(100))
	f.Fuzz(func(t *testing.T, b []byte, limit uint16) {
		r := &countingReader{r: bytes.NewReader(b)}
		kids, err := readKIDs(r, int64(limit))
		if r.n > int64(limit)+1 {
			t.Fatalf("read %d bytes with a limit of %d", r.n, limit)
		}
		if len(b) > int(limit) {
			if !errors.Is(err, ErrKIDs) || kids != nil {
				t.Fatalf("%d bytes with a limit of %d: %v, %v", len(b), limit, kids, err)
			}
			return
		}
		want, bad := wantKIDs(b)
		if err != nil {
			if !errors.Is(err, ErrKIDs) || kids != nil {
				t.Fatalf("readKIDs(%q) = %q, %v; want nil, ErrKIDs", b, kids, err)
			}
			switch {
			case bad != 0 && (!errors.Is(err, api.ErrBadKID) || !strings.Contains(err.Error(), fmt.Sprintf("line %d:", bad))):
				t.Fatalf("readKIDs(%q): %v; want line %d named", b, err, bad)
			case bad == 0 && len(want) != 0:
				t.Fatalf("readKIDs(%q) refused kids %q: %v", b, want, err)
			}
			return
		}
		if bad != 0 || !slices.Equal(kids, want) {
			t.Fatalf("readKIDs(%q) = %q; want %q (bad line %d)", b, kids, want, bad)
		}
		for _, kid := range kids {
			ref, err := api.ParseKeyRef(kid)
			if err != nil || ref.String() != kid {
				t.Fatalf("readKIDs(%q) gave %q, not canonical: %v", b, kid, err)
			}
			if a, err := kidAlg(kid); err != nil || a != ref.Alg {
				t.Fatalf("kidAlg(%q) = %q, %v; want %q", kid, a, err, ref.Alg)
			}
		}
		out := strings.Join(kids, "\n") + "\n"
		again, err := ReadKIDs(strings.NewReader(out))
		if err != nil || !slices.Equal(again, kids) {
			t.Fatalf("kids %q written one a line read back as %q, %v", kids, again, err)
		}
	})
}

// TestReadKIDsStopsAtItsLimit: a file over the limit is refused as ErrKIDs
// after the limit and one byte more, and not read further.
func TestReadKIDsStopsAtItsLimit(t *testing.T) {
	const limit = 1 << 16
	for _, file := range seededKIDs(t) {
		r := &countingReader{r: bytes.NewReader(file), tail: 4 * limit}
		kids, err := readKIDs(r, limit)
		if !errors.Is(err, ErrKIDs) || kids != nil || r.n != limit+1 {
			t.Fatalf("a file over the limit: %d kids, %v, after reading %d bytes; want ErrKIDs after %d", len(kids), err, r.n, limit+1)
		}
		kids, err = ReadKIDs(bytes.NewReader(file))
		if err != nil || len(kids) != bytes.Count(file, []byte("\n")) {
			t.Fatalf("ReadKIDs of a keys seed file: %q, %v", kids, err)
		}
	}
}
