package lazyfs

import (
	"io"
	"os"
)

// pageSize is the unit in which unsynced writes are kept.
const pageSize = 4096

// content is one regular file's bytes: the durable part in a backing file,
// what was written since the last fsync in memory. Not safe for concurrent
// use: the FS lock guards it.
//
// The live content (what reads see) is, byte by byte: a dirty page when
// the byte's page is dirty; else the backing file's byte when it lies below
// zeroFrom; else zero. Bytes at or beyond size are not part of the file.
// Invariants: zeroFrom ≤ dsize and zeroFrom ≤ size; dirty pages hold zeros
// beyond size.
type content struct {
	back     *os.File         // the durable content, exactly dsize bytes
	dsize    int64            // size at the last sync
	size     int64            // live size
	zeroFrom int64            // backing bytes from here on read as zeros (a truncate since the sync)
	pages    map[int64][]byte // dirty pages by index, pageSize bytes each
}

func newContent(back *os.File) *content {
	return &content{back: back, pages: map[int64][]byte{}}
}

// base returns the live bytes of page i that are not dirty: backing bytes
// below zeroFrom, zeros after.
func (c *content) base(i int64) ([]byte, error) {
	p := make([]byte, pageSize)
	start := i * pageSize
	end := min(start+pageSize, c.zeroFrom)
	if end > start {
		if _, err := c.back.ReadAt(p[:end-start], start); err != nil && err != io.EOF {
			return nil, err
		}
	}
	return p, nil
}

// readAt reads live bytes at off into p and returns how many it read
// (fewer at the end of the file).
func (c *content) readAt(p []byte, off int64) (int, error) {
	if off >= c.size {
		return 0, nil
	}
	p = p[:min(int64(len(p)), c.size-off)]
	for done := 0; done < len(p); {
		pos := off + int64(done)
		i := pos / pageSize
		in := int(pos % pageSize)
		n := min(pageSize-in, len(p)-done)
		if pg, ok := c.pages[i]; ok {
			copy(p[done:done+n], pg[in:])
			done += n
			continue
		}
		// A run of clean pages is read from the backing file at once.
		for done+n < len(p) {
			if _, ok := c.pages[i+1]; ok {
				break
			}
			i++
			n = min(n+pageSize, len(p)-done)
		}
		dst := p[done : done+n]
		clear(dst)
		if end := min(pos+int64(n), c.zeroFrom); end > pos {
			if _, err := c.back.ReadAt(dst[:end-pos], pos); err != nil && err != io.EOF {
				return done, err
			}
		}
		done += n
	}
	return len(p), nil
}

// writeAt writes p at off into memory, growing the file as needed.
func (c *content) writeAt(p []byte, off int64) error {
	for done := 0; done < len(p); {
		pos := off + int64(done)
		i := pos / pageSize
		in := int(pos % pageSize)
		n := min(pageSize-in, len(p)-done)
		pg, ok := c.pages[i]
		if !ok {
			if n == pageSize {
				pg = make([]byte, pageSize)
			} else {
				var err error
				if pg, err = c.base(i); err != nil {
					return err
				}
			}
			c.pages[i] = pg
		}
		copy(pg[in:], p[done:done+n])
		done += n
	}
	c.size = max(c.size, off+int64(len(p)))
	return nil
}

// truncate sets the live size to n. Bytes beyond the old size read as
// zeros; bytes cut off are gone from the live content.
func (c *content) truncate(n int64) {
	if n < c.size {
		for i, pg := range c.pages {
			switch start := i * pageSize; {
			case start >= n:
				delete(c.pages, i)
			case start+pageSize > n:
				clear(pg[n-start:])
			}
		}
		c.zeroFrom = min(c.zeroFrom, n)
	}
	c.size = n
}

// sync makes the live content durable: the backing file becomes it.
func (c *content) sync() error {
	if err := c.back.Truncate(c.zeroFrom); err != nil {
		return err
	}
	for i, pg := range c.pages {
		start := i * pageSize
		if start >= c.size {
			continue
		}
		if _, err := c.back.WriteAt(pg[:min(pageSize, c.size-start)], start); err != nil {
			return err
		}
	}
	if err := c.back.Truncate(c.size); err != nil {
		return err
	}
	c.dsize, c.zeroFrom = c.size, c.size
	clear(c.pages)
	return nil
}

// dirty reports whether anything changed since the last sync.
func (c *content) dirty() bool {
	return len(c.pages) > 0 || c.size != c.dsize || c.zeroFrom != c.dsize
}

// cut forgets everything since the last sync.
func (c *content) cut() {
	clear(c.pages)
	c.size, c.zeroFrom = c.dsize, c.dsize
}
