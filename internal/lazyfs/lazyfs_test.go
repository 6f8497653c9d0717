package lazyfs

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func write(t *testing.T, path string, data []byte, sync bool) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
}

func syncDir(t *testing.T, dir string) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func absent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: want it gone after the cut, Lstat says %v", filepath.Base(path), err)
	}
}

func recover(t *testing.T, f *FS) {
	t.Helper()
	if err := f.Recover(); err != nil {
		t.Fatal(err)
	}
}

func TestUnsyncedWriteIsLost(t *testing.T) {
	f, mnt := Mount(t)
	p := filepath.Join(mnt, "a")
	write(t, p, []byte("durable"), true)
	syncDir(t, mnt)
	write(t, p, []byte("-more"), false) // O_RDWR without O_APPEND: overwrites at 0
	if got := read(t, p); string(got) != "-morele" {
		t.Fatalf("before the cut reads see the write: got %q", got)
	}
	recover(t, f)
	if got := read(t, p); string(got) != "durable" {
		t.Errorf("after the cut: got %q, want the synced %q", got, "durable")
	}
	if s := f.Stats(); s.Lost != 1 || s.Cuts != 1 {
		t.Errorf("stats %+v: want 1 file with lost content, 1 cut", s)
	}
}

func TestSyncedWriteSurvives(t *testing.T) {
	f, mnt := Mount(t)
	p := filepath.Join(mnt, "a")
	write(t, p, nil, false)
	syncDir(t, mnt)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1000) // spans pages, ends mid-page
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt(big, 100); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fdatasync(int(fh.Fd())); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt([]byte("lost"), 0); err != nil { // after the sync
		t.Fatal(err)
	}
	fh.Close()
	recover(t, f)
	want := append(make([]byte, 100), big...)
	if got := read(t, p); !bytes.Equal(got, want) {
		t.Errorf("after the cut: %d bytes, want the %d synced ones", len(got), len(want))
	}
}

func TestTruncateAndFallocate(t *testing.T) {
	f, mnt := Mount(t)
	p := filepath.Join(mnt, "seg")
	write(t, p, bytes.Repeat([]byte{'x'}, 10000), true)
	syncDir(t, mnt)
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	// Shrink, then grow again: the cut-off bytes must come back as zeros.
	if err := fh.Truncate(5000); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(fh.Fd()), 0, 0, 12288); err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte{'x'}, 5000), make([]byte, 12288-5000)...)
	if got := read(t, p); !bytes.Equal(got, want) {
		t.Fatalf("after truncate and fallocate reads see %d bytes, not the %d expected", len(got), len(want))
	}
	if err := unix.Fallocate(int(fh.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	if fi, _ := fh.Stat(); fi.Size() != 12288 {
		t.Errorf("FALLOC_FL_KEEP_SIZE changed the size to %d", fi.Size())
	}
	// Unsynced: the cut brings back the 10000 bytes.
	fh.Close()
	recover(t, f)
	if got := read(t, p); !bytes.Equal(got, bytes.Repeat([]byte{'x'}, 10000)) {
		t.Errorf("after a cut of an unsynced truncate: %d bytes, want the 10000 synced", len(got))
	}
	// Synced: the zeros are durable.
	fh, err = os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fh.Truncate(5000); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(fh.Fd()), 0, 0, 12288); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fdatasync(int(fh.Fd())); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	recover(t, f)
	if got := read(t, p); !bytes.Equal(got, want) {
		t.Errorf("after a cut of a synced truncate and fallocate: %d bytes, want %d", len(got), len(want))
	}
}

func TestCreateNeedsDirSync(t *testing.T) {
	f, mnt := Mount(t)
	if err := os.Mkdir(filepath.Join(mnt, "d"), 0o700); err != nil {
		t.Fatal(err)
	}
	syncDir(t, mnt)
	d := filepath.Join(mnt, "d")
	write(t, filepath.Join(d, "unsynced-name"), []byte("data"), true) // the file is synced, its name not
	recover(t, f)
	absent(t, filepath.Join(d, "unsynced-name"))

	write(t, filepath.Join(d, "synced-name"), []byte("data"), true)
	syncDir(t, d)
	write(t, filepath.Join(d, "later"), []byte("x"), true)
	recover(t, f)
	if got := read(t, filepath.Join(d, "synced-name")); string(got) != "data" {
		t.Errorf("a synced file in a synced directory: got %q", got)
	}
	absent(t, filepath.Join(d, "later"))

	// A directory's own name needs its parent synced.
	if err := os.Mkdir(filepath.Join(mnt, "e"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(mnt, "e", "f"), []byte("x"), true)
	syncDir(t, filepath.Join(mnt, "e"))
	recover(t, f)
	absent(t, filepath.Join(mnt, "e"))
}

func TestRemoveNeedsDirSync(t *testing.T) {
	f, mnt := Mount(t)
	p := filepath.Join(mnt, "a")
	write(t, p, []byte("keep"), true)
	syncDir(t, mnt)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	recover(t, f)
	if got := read(t, p); string(got) != "keep" {
		t.Errorf("an unsynced remove: got %q, want the file back", got)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	syncDir(t, mnt)
	recover(t, f)
	absent(t, p)
}

func TestRename(t *testing.T) {
	f, mnt := Mount(t)
	final := filepath.Join(mnt, "final")
	write(t, final, []byte("old"), true)
	syncDir(t, mnt)

	// Write a temporary file, sync it, rename it over the old one: without
	// a directory sync the cut brings back the old name and content.
	tmp := filepath.Join(mnt, ".tmp")
	write(t, tmp, []byte("new"), true)
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	if got := read(t, final); string(got) != "new" {
		t.Fatalf("before the cut: got %q", got)
	}
	recover(t, f)
	if got := read(t, final); string(got) != "old" {
		t.Errorf("a rename without a directory sync: got %q, want the old file", got)
	}
	absent(t, tmp)

	// With it, the new content is durable under the new name.
	write(t, tmp, []byte("new"), true)
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	syncDir(t, mnt)
	recover(t, f)
	if got := read(t, final); string(got) != "new" {
		t.Errorf("a synced rename: got %q, want the new file", got)
	}
	absent(t, tmp)

	// A synced rename of a file whose content was not synced: the name
	// is durable, the content is what was synced (nothing).
	write(t, tmp, []byte("unsynced"), false)
	if err := os.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	syncDir(t, mnt)
	recover(t, f)
	if got := read(t, final); len(got) != 0 {
		t.Errorf("a synced rename of an unsynced file: got %q, want it empty", got)
	}
}

func TestLink(t *testing.T) {
	f, mnt := Mount(t)
	a, b := filepath.Join(mnt, "a"), filepath.Join(mnt, "b")
	write(t, a, []byte("x"), true)
	if err := os.Link(a, b); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	syncDir(t, mnt)
	recover(t, f)
	if got := read(t, b); string(got) != "x" {
		t.Errorf("a linked file: got %q", got)
	}
	absent(t, a)
}

func TestIgnoreSync(t *testing.T) {
	f, mnt := Mount(t)
	if err := f.IgnoreSync("*.log"); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(mnt, "a.log"), []byte("x"), true)
	write(t, filepath.Join(mnt, "a.db"), []byte("y"), true)
	syncDir(t, mnt)
	recover(t, f)
	if got := read(t, filepath.Join(mnt, "a.log")); len(got) != 0 {
		t.Errorf("an ignored fsync made %q durable", got)
	}
	if got := read(t, filepath.Join(mnt, "a.db")); string(got) != "y" {
		t.Errorf("a file the pattern does not match: got %q", got)
	}
	if s := f.Stats(); s.IgnoredSyncs != 1 || s.Syncs != 1 {
		t.Errorf("stats %+v: want 1 ignored sync and 1 real one", s)
	}

	// A directory: its entries stay as they were.
	if err := f.IgnoreSync("d"); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(mnt, "d")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	syncDir(t, mnt)
	write(t, filepath.Join(d, "x"), []byte("x"), true)
	syncDir(t, d)
	recover(t, f)
	absent(t, filepath.Join(d, "x"))
	if _, err := os.Stat(d); err != nil {
		t.Errorf("the directory itself (its parent synced): %v", err)
	}
}

// TestCutIsAnInstant: after Cut, an open file neither reads nor writes,
// and nothing written through it lands.
func TestCutIsAnInstant(t *testing.T) {
	f, mnt := Mount(t)
	p := filepath.Join(mnt, "a")
	write(t, p, []byte("before"), true)
	syncDir(t, mnt)
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Cut()
	if _, err := fh.WriteAt([]byte("after!"), 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("a write after the cut: %v, want EIO", err)
	}
	if err := fh.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("an fsync after the cut: %v, want EIO", err)
	}
	fh.Close()
	recover(t, f)
	if got := read(t, p); string(got) != "before" {
		t.Errorf("after the cut: got %q", got)
	}
}

// TestMmapSeesDurableState: a mapping made after the recovery reads the
// durable content, not pages the kernel cached before the cut. The
// mappings are read by a child process: a page fault on a FUSE file served
// by the faulting process itself can deadlock the Go runtime (a thread
// stuck in a fault cannot stop for the garbage collector, and the server
// goroutines that would answer it cannot run until it does).
func TestMmapSeesDurableState(t *testing.T) {
	f, mnt := Mount(t)
	p := filepath.Join(mnt, "db")
	page := bytes.Repeat([]byte{'d'}, 8192)
	write(t, p, page, true)
	syncDir(t, mnt)
	fh, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteAt(bytes.Repeat([]byte{'u'}, 4096), 4096); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if got := mmapRead(t, p); !bytes.Equal(got[:4096], page[:4096]) || got[4096] != 'u' {
		t.Fatalf("before the cut a mapping does not see the write")
	}
	recover(t, f)
	if got := mmapRead(t, p); !bytes.Equal(got, page) {
		t.Errorf("a mapping after the cut sees the unsynced write")
	}
}

// mmapRead returns the bytes of file p as a read-only shared mapping
// shows them, in a child process (this test binary, as mmapHelper).
func mmapRead(t *testing.T, p string) []byte {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMmapHelper$")
	cmd.Env = append(os.Environ(), "LAZYFS_MMAP_HELPER="+p)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mmap helper: %v\n%s", err, out)
	}
	_, h, ok := bytes.Cut(out, []byte("MMAP:"))
	if !ok {
		t.Fatalf("mmap helper printed no bytes:\n%s", out)
	}
	h, _, _ = bytes.Cut(h, []byte("\n"))
	b, err := hex.DecodeString(string(h))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMmapHelper is mmapRead's child; it does nothing in a normal run.
func TestMmapHelper(t *testing.T) {
	p := os.Getenv("LAZYFS_MMAP_HELPER")
	if p == "" {
		t.Skip("the child process of mmapRead")
	}
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(fh.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	fmt.Printf("MMAP:%x\n", m)
}

func TestReaddir(t *testing.T) {
	f, mnt := Mount(t)
	for _, n := range []string{"b", "a", "c"} {
		write(t, filepath.Join(mnt, n), nil, false)
	}
	syncDir(t, mnt)
	write(t, filepath.Join(mnt, "d"), nil, false)
	recover(t, f)
	ents, err := os.ReadDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Errorf("entries after the cut: %q", names)
	}
}

func TestAppend(t *testing.T) {
	f, mnt := Mount(t)
	p := filepath.Join(mnt, "log")
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	syncDir(t, mnt)
	for _, s := range []string{"one\n", "two\n"} {
		if _, err := fh.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := fh.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString("three\n"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); string(got) != "one\ntwo\nthree\n" {
		t.Fatalf("appends read back as %q", got)
	}
	fh.Close()
	recover(t, f)
	if got := read(t, p); string(got) != "one\ntwo\n" {
		t.Errorf("after the cut: %q, want the synced appends", got)
	}
}
