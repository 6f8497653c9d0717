package lazyfs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestContentModel runs random writes, truncates, syncs and cuts against
// a content and a plain []byte model of the same rules (no FUSE involved).
func TestContentModel(t *testing.T) {
	back, err := os.Create(filepath.Join(t.TempDir(), "back"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	c := newContent(back)
	var live, durable []byte
	r := rand.New(rand.NewPCG(1, 2))
	for step := range 5000 {
		switch op := r.IntN(10); {
		case op < 5:
			off := r.IntN(3 * pageSize)
			data := make([]byte, r.IntN(2*pageSize))
			for i := range data {
				data[i] = byte(r.IntN(255) + 1)
			}
			if err := c.writeAt(data, int64(off)); err != nil {
				t.Fatal(err)
			}
			if end := off + len(data); end > len(live) {
				live = append(live, make([]byte, end-len(live))...)
			}
			copy(live[off:], data)
		case op < 7:
			n := r.IntN(4 * pageSize)
			c.truncate(int64(n))
			if n < len(live) {
				live = live[:n]
			} else {
				live = append(live, make([]byte, n-len(live))...)
			}
		case op < 9:
			if err := c.sync(); err != nil {
				t.Fatal(err)
			}
			durable = bytes.Clone(live)
		default:
			c.cut()
			live = bytes.Clone(durable)
		}
		got := make([]byte, len(live)+100)
		n, err := c.readAt(got, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:n], live) {
			t.Fatalf("step %d: the content reads %d bytes that differ from the model's %d", step, n, len(live))
		}
		off := r.IntN(len(live) + 10)
		part := make([]byte, r.IntN(3*pageSize))
		n, err = c.readAt(part, int64(off))
		if err != nil {
			t.Fatal(err)
		}
		want := []byte{}
		if off < len(live) {
			want = live[off:min(len(live), off+len(part))]
		}
		if !bytes.Equal(part[:n], want) {
			t.Fatalf("step %d: %d bytes read at %d differ from the model's %d", step, n, off, len(want))
		}
		if fi, _ := back.Stat(); fi.Size() != c.dsize {
			t.Fatalf("step %d: backing file has %d bytes, durable size is %d", step, fi.Size(), c.dsize)
		}
	}
}
