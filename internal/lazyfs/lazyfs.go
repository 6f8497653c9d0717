// Package lazyfs is a FUSE file system for tests that loses, on a simulated
// power cut, everything that was not made durable, the way a disk without a
// battery-backed cache may. It follows the model of LazyFS (the file system
// Jepsen and etcd use for the same purpose), with directory entries modelled
// too:
//
//   - a regular file's durable content is what it held at its last fsync or
//     fdatasync (both persist data and size); writes, truncates and
//     fallocate calls since then live in memory, and reads see them;
//   - a name in a directory (created, linked, renamed or removed) is durable
//     only once that directory has been fsynced; until then the directory's
//     durable entries are those it had at its last fsync;
//   - a power cut ([FS.Cut]) throws away everything that is not durable, at
//     one instant: from then on every operation through the old mount fails
//     with EIO, so a process that was writing cannot write after the cut.
//     [FS.Recover] unmounts, which drops the kernel's page cache of the
//     mount, resets the tree to its durable state and mounts it again.
//
// The durable content of each file is kept in a backing file of its own in
// the backing directory (named by inode, not by path); unsynced writes are
// kept in memory in 4 KiB pages. The tree, durable and live, is kept in
// memory: the file system lives as long as the FS value, that is, the test
// that made it. Modes and times are not modelled (a change is at once
// durable); ownership is the mounting user's; permissions are not checked
// (tests run as root); there are no symbolic links, special files or
// extended attributes, and fallocate knows only mode 0 and
// FALLOC_FL_KEEP_SIZE.
//
// Mounting needs root and /dev/fuse; [Available] says whether this machine
// has them. The mount uses /dev/fuse directly (no fusermount). The process
// that serves the mount must not touch a memory mapping of one of its
// files: a thread stuck in such a page fault cannot stop for the garbage
// collector, and the goroutines that would answer the fault cannot run
// until it does. Read and write through system calls, or map in another
// process (the server under test).
//
// A knob removes durability on purpose: [FS.IgnoreSync] makes fsync and
// fdatasync of matching files and directories succeed without persisting
// anything, so a test can show that its checks find the loss an omitted
// fsync causes.
package lazyfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// inode is a file or directory of the model.
type inode struct {
	id    uint64
	mode  uint32 // S_IFREG or S_IFDIR, and permission bits
	mtime time.Time
	nlink int // live names

	data *content // regular files

	live, durable map[string]*inode // directories
}

func (n *inode) isDir() bool { return n.mode&syscall.S_IFMT == syscall.S_IFDIR }

// FS is the file system. Its methods are safe for concurrent use.
type FS struct {
	mu      sync.Mutex
	backing string // directory of the durable file contents
	root    *inode
	inodes  map[uint64]*inode
	nextID  uint64
	gen     uint64 // mount generation: nodes of an older one answer EIO
	ignore  []string
	stats   Stats
	mnt     string
	server  *fuse.Server
	cutDone bool // Cut was called and Recover not yet
}

// Stats counts what the file system did since New.
type Stats struct {
	Syncs        int // fsync and fdatasync calls on files that persisted their content
	IgnoredSyncs int // fsync and fdatasync calls (files and directories) that IgnoreSync made no-ops
	DirSyncs     int // fsync calls on directories
	Cuts         int // power cuts
	Lost         int // files whose unsynced content a cut threw away
	LostNames    int // directory entries a cut restored or removed
}

// New returns a file system, empty but for its root directory, whose
// durable file contents are kept under backing (created if missing; it must
// be empty). Mount it with Mount.
func New(backing string) (*FS, error) {
	if err := os.MkdirAll(backing, 0o700); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(backing)
	if err != nil {
		return nil, err
	}
	if len(ents) > 0 {
		return nil, fmt.Errorf("lazyfs: backing directory %s is not empty", backing)
	}
	root := &inode{id: 1, mode: syscall.S_IFDIR | 0o755, mtime: time.Now(), nlink: 1,
		live: map[string]*inode{}, durable: map[string]*inode{}}
	return &FS{backing: backing, root: root, inodes: map[uint64]*inode{1: root}, nextID: 2, gen: 1}, nil
}

// Available returns nil when this process can mount a lazyfs (it runs as
// root and /dev/fuse can be opened), and otherwise an error saying why not.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("lazyfs: mounting a FUSE file system through /dev/fuse needs root")
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("lazyfs: no usable /dev/fuse: %w", err)
	}
	return f.Close()
}

// IgnoreSync makes fsync and fdatasync of every file or directory whose
// path (relative to the mount, slash-separated) matches one of the
// patterns (path.Match syntax; a pattern without a slash matches the base
// name) succeed without making anything durable: a file's content, or a
// directory's entries. No patterns restores normal syncing.
func (f *FS) IgnoreSync(patterns ...string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("lazyfs: pattern %q: %w", p, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ignore = append([]string(nil), patterns...)
	return nil
}

func (f *FS) ignored(rel string) bool {
	for _, p := range f.ignore {
		name := rel
		if !containsSlash(p) {
			name = path.Base(rel)
		}
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

func containsSlash(s string) bool {
	for i := range len(s) {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

// Stats returns the counters.
func (f *FS) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

// Mount mounts the file system on dir, an existing directory. One mount at a
// time.
func (f *FS) Mount(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.server != nil {
		return errors.New("lazyfs: already mounted")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	f.mnt = abs
	return f.mountLocked()
}

func (f *FS) mountLocked() error {
	attr := time.Second
	neg := time.Duration(0)
	root := &node{fsys: f, ino: f.root, gen: f.gen}
	srv, err := fs.Mount(f.mnt, root, &fs.Options{
		EntryTimeout:    &attr,
		AttrTimeout:     &attr,
		NegativeTimeout: &neg,
		MountOptions: fuse.MountOptions{
			FsName:            "lazyfs",
			Name:              "lazyfs",
			DirectMountStrict: true,
			DisableXAttrs:     true,
			MaxWrite:          1 << 20,
		},
	})
	if err != nil {
		return fmt.Errorf("lazyfs: mounting on %s: %w", f.mnt, err)
	}
	f.server = srv
	return nil
}

// Cut is the power cut: from this instant every operation through the
// mount fails with EIO and changes nothing, and what is not durable is as
// good as gone. The mount stays in place until Recover, so a process using
// it can be killed first. A second Cut before Recover does nothing.
func (f *FS) Cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cutDone {
		return
	}
	f.cutDone = true
	f.gen++
	f.stats.Cuts++
}

// Recover brings the machine back up after a Cut (making one first if
// there was none): it unmounts (every process using the mount must be gone
// by now), resets the tree to its durable state and mounts it again on the
// same directory.
func (f *FS) Recover() error {
	f.Cut()
	if err := f.unmount(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.resetLocked(); err != nil {
		return err
	}
	f.cutDone = false
	return f.mountLocked()
}

// Unmount unmounts the file system (after a Cut, so that nothing still
// using it can change it). The FS can be mounted again with Mount.
func (f *FS) Unmount() error {
	f.Cut()
	if err := f.unmount(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutDone = false
	return nil
}

func (f *FS) unmount() error {
	f.mu.Lock()
	srv := f.server
	f.server = nil
	f.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Unmount(); err != nil {
		// Something still holds the mount (a dying process's files): detach
		// it. Its nodes answer EIO, so whatever still uses it changes
		// nothing.
		if derr := syscall.Unmount(f.mnt, syscall.MNT_DETACH); derr != nil {
			return fmt.Errorf("lazyfs: unmounting %s: %v; detaching: %w", f.mnt, err, derr)
		}
	}
	return nil
}

// resetLocked makes the tree its durable state and frees the inodes that
// are in no durable directory.
func (f *FS) resetLocked() error {
	seen := map[uint64]bool{}
	var walk func(d *inode)
	walk = func(d *inode) {
		if seen[d.id] {
			return
		}
		seen[d.id] = true
		for name, c := range d.live {
			if d.durable[name] != c {
				f.stats.LostNames++
			}
		}
		for name := range d.durable {
			if d.live[name] == nil {
				f.stats.LostNames++
			}
		}
		d.live = clone(d.durable)
		for _, c := range d.durable {
			if c.isDir() {
				walk(c)
			} else {
				seen[c.id] = true
			}
		}
	}
	walk(f.root)
	var errs []error
	for id, n := range f.inodes {
		n.nlink = 0
		if seen[id] {
			if n.data != nil {
				if n.data.dirty() {
					f.stats.Lost++
				}
				n.data.cut()
			}
			continue
		}
		delete(f.inodes, id)
		if n.data != nil {
			errs = append(errs, n.data.back.Close(), os.Remove(n.data.back.Name()))
		}
	}
	f.root.nlink = 1
	for _, n := range f.inodes {
		for _, c := range n.live {
			c.nlink++
		}
	}
	return errors.Join(errs...)
}

func clone(m map[string]*inode) map[string]*inode {
	c := make(map[string]*inode, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// newInode makes a file (its backing file created) or a directory.
func (f *FS) newInode(mode uint32) (*inode, error) {
	n := &inode{id: f.nextID, mode: mode, mtime: time.Now()}
	if n.isDir() {
		n.live, n.durable = map[string]*inode{}, map[string]*inode{}
	} else {
		back, err := os.OpenFile(filepath.Join(f.backing, "ino-"+strconv.FormatUint(n.id, 10)),
			os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		n.data = newContent(back)
	}
	f.nextID++
	f.inodes[n.id] = n
	return n, nil
}

// Close unmounts (if mounted) and closes the backing files. The backing
// directory is left as it is.
func (f *FS) Close() error {
	err := f.Unmount()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.inodes {
		if n.data != nil {
			err = errors.Join(err, n.data.back.Close())
		}
	}
	f.inodes = map[uint64]*inode{}
	return err
}
