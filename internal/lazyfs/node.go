package lazyfs

import (
	"context"
	"slices"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is the FUSE side of an inode in one mount generation. Every
// operation takes the FS lock and fails with EIO once the generation is
// over (a Cut): the cut is one instant for every file.
type node struct {
	fs.Inode
	fsys *FS
	ino  *inode
	gen  uint64
}

var (
	_ fs.NodeLookuper   = (*node)(nil)
	_ fs.NodeGetattrer  = (*node)(nil)
	_ fs.NodeSetattrer  = (*node)(nil)
	_ fs.NodeOpener     = (*node)(nil)
	_ fs.NodeCreater    = (*node)(nil)
	_ fs.NodeReader     = (*node)(nil)
	_ fs.NodeWriter     = (*node)(nil)
	_ fs.NodeFsyncer    = (*node)(nil)
	_ fs.NodeFlusher    = (*node)(nil)
	_ fs.NodeAllocater  = (*node)(nil)
	_ fs.NodeMkdirer    = (*node)(nil)
	_ fs.NodeUnlinker   = (*node)(nil)
	_ fs.NodeRmdirer    = (*node)(nil)
	_ fs.NodeRenamer    = (*node)(nil)
	_ fs.NodeLinker     = (*node)(nil)
	_ fs.NodeReaddirer  = (*node)(nil)
	_ fs.NodeStatfser   = (*node)(nil)
	_ fs.NodeOpendirer  = (*node)(nil)
	_ fs.NodeReleaser   = (*node)(nil)
	_ fs.NodeGetxattrer = (*node)(nil)
)

// lock takes the FS lock and reports whether this node's generation is
// still current; when it is not, the caller answers EIO. The lock is held
// either way.
func (n *node) lock() bool {
	n.fsys.mu.Lock()
	return n.gen == n.fsys.gen
}

func (n *node) unlock() { n.fsys.mu.Unlock() }

func (n *node) fill(in *inode, out *fuse.Attr) {
	out.Ino = in.id
	out.Mode = in.mode
	out.Nlink = uint32(max(in.nlink, 1))
	if in.isDir() {
		out.Size = 4096
	} else {
		out.Size = uint64(in.data.size)
	}
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = pageSize
	out.SetTimes(&in.mtime, &in.mtime, &in.mtime)
	out.Owner = fuse.Owner{Uid: uint32(syscall.Geteuid()), Gid: uint32(syscall.Getegid())}
}

// child returns the FUSE inode of c, a child of n, and fills out.
func (n *node) child(ctx context.Context, c *inode, out *fuse.EntryOut) *fs.Inode {
	n.fill(c, &out.Attr)
	return n.NewInode(ctx, &node{fsys: n.fsys, ino: c, gen: n.gen},
		fs.StableAttr{Mode: c.mode & syscall.S_IFMT, Ino: c.id})
}

func (n *node) touch(in *inode) { in.mtime = time.Now() }

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	defer n.unlock()
	if !n.lock() {
		return nil, syscall.EIO
	}
	c := n.ino.live[name]
	if c == nil {
		return nil, syscall.ENOENT
	}
	return n.child(ctx, c, out), 0
}

func (n *node) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	defer n.unlock()
	if !n.lock() {
		return syscall.EIO
	}
	n.fill(n.ino, &out.Attr)
	return 0
}

func (n *node) Setattr(ctx context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	defer n.unlock()
	if !n.lock() {
		return syscall.EIO
	}
	if sz, ok := in.GetSize(); ok {
		if n.ino.data == nil {
			return syscall.EISDIR
		}
		n.ino.data.truncate(int64(sz))
		n.touch(n.ino)
	}
	if m, ok := in.GetMode(); ok {
		n.ino.mode = n.ino.mode&syscall.S_IFMT | m&0o7777
	}
	if t, ok := in.GetMTime(); ok {
		n.ino.mtime = t
	}
	n.fill(n.ino, &out.Attr)
	return 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	defer n.unlock()
	if !n.lock() {
		return nil, 0, syscall.EIO
	}
	if flags&syscall.O_TRUNC != 0 && n.ino.data != nil {
		n.ino.data.truncate(0)
		n.touch(n.ino)
	}
	return nil, 0, 0
}

func (n *node) Opendir(ctx context.Context) syscall.Errno {
	defer n.unlock()
	if !n.lock() {
		return syscall.EIO
	}
	return 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	defer n.unlock()
	if !n.lock() {
		return nil, nil, 0, syscall.EIO
	}
	if c := n.ino.live[name]; c != nil {
		if flags&syscall.O_EXCL != 0 {
			return nil, nil, 0, syscall.EEXIST
		}
		if c.isDir() {
			return nil, nil, 0, syscall.EISDIR
		}
		if flags&syscall.O_TRUNC != 0 {
			c.data.truncate(0)
		}
		return n.child(ctx, c, out), nil, 0, 0
	}
	c, err := n.fsys.newInode(syscall.S_IFREG | mode&0o7777)
	if err != nil {
		return nil, nil, 0, fs.ToErrno(err)
	}
	n.ino.live[name] = c
	c.nlink = 1
	n.touch(n.ino)
	return n.child(ctx, c, out), nil, 0, 0
}

func (n *node) Read(ctx context.Context, _ fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	defer n.unlock()
	if !n.lock() {
		return nil, syscall.EIO
	}
	if n.ino.data == nil {
		return nil, syscall.EISDIR
	}
	k, err := n.ino.data.readAt(dest, off)
	if err != nil {
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:k]), 0
}

func (n *node) Write(ctx context.Context, _ fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	defer n.unlock()
	if !n.lock() {
		return 0, syscall.EIO
	}
	if n.ino.data == nil {
		return 0, syscall.EISDIR
	}
	if err := n.ino.data.writeAt(data, off); err != nil {
		return 0, syscall.EIO
	}
	n.touch(n.ino)
	return uint32(len(data)), 0
}

// Fsync serves fsync and fdatasync of files (both make data and size
// durable) and fsync of directories (its entries become durable).
func (n *node) Fsync(ctx context.Context, _ fs.FileHandle, flags uint32) syscall.Errno {
	defer n.unlock()
	if !n.lock() {
		return syscall.EIO
	}
	if len(n.fsys.ignore) > 0 && n.fsys.ignored(n.Path(nil)) {
		n.fsys.stats.IgnoredSyncs++
		return 0
	}
	if n.ino.isDir() {
		n.ino.durable = clone(n.ino.live)
		n.fsys.stats.DirSyncs++
		return 0
	}
	if err := n.ino.data.sync(); err != nil {
		return syscall.EIO
	}
	n.fsys.stats.Syncs++
	return 0
}

func (n *node) Flush(ctx context.Context, _ fs.FileHandle) syscall.Errno {
	defer n.unlock()
	if !n.lock() {
		return syscall.EIO
	}
	return 0
}

func (n *node) Release(ctx context.Context, _ fs.FileHandle) syscall.Errno { return 0 }

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENODATA
}

// Allocate serves fallocate: mode 0 extends the file (with zeros) to
// off+size when it is shorter, FALLOC_FL_KEEP_SIZE changes nothing the
// model can see; other modes are not supported.
func (n *node) Allocate(ctx context.Context, _ fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	defer n.unlock()
	if !n.lock() {
		return syscall.EIO
	}
	if n.ino.data == nil {
		return syscall.EISDIR
	}
	const keepSize = 0x01 // FALLOC_FL_KEEP_SIZE
	switch mode {
	case 0:
		if end := int64(off + size); end > n.ino.data.size {
			n.ino.data.truncate(end)
			n.touch(n.ino)
		}
	case keepSize:
	default:
		return syscall.EOPNOTSUPP
	}
	return 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	defer n.unlock()
	if !n.lock() {
		return nil, syscall.EIO
	}
	if n.ino.live[name] != nil {
		return nil, syscall.EEXIST
	}
	c, err := n.fsys.newInode(syscall.S_IFDIR | mode&0o7777)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	n.ino.live[name] = c
	c.nlink = 1
	n.touch(n.ino)
	return n.child(ctx, c, out), 0
}

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	defer n.unlock()
	if !n.lock() {
		return syscall.EIO
	}
	c := n.ino.live[name]
	switch {
	case c == nil:
		return syscall.ENOENT
	case c.isDir():
		return syscall.EISDIR
	}
	delete(n.ino.live, name)
	c.nlink--
	n.touch(n.ino)
	return 0
}

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	defer n.unlock()
	if !n.lock() {
		return syscall.EIO
	}
	c := n.ino.live[name]
	switch {
	case c == nil:
		return syscall.ENOENT
	case !c.isDir():
		return syscall.ENOTDIR
	case len(c.live) > 0:
		return syscall.ENOTEMPTY
	}
	delete(n.ino.live, name)
	c.nlink--
	n.touch(n.ino)
	return 0
}

// Rename moves a live name; flags may be RENAME_NOREPLACE. Each
// directory's side of it is durable once that directory is fsynced.
func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	defer n.unlock()
	if !n.lock() {
		return syscall.EIO
	}
	const noReplace = 0x1 // RENAME_NOREPLACE
	if flags&^noReplace != 0 {
		return syscall.EINVAL
	}
	np, ok := newParent.(*node)
	if !ok || np.gen != n.gen || !np.ino.isDir() {
		return syscall.EXDEV
	}
	c := n.ino.live[name]
	if c == nil {
		return syscall.ENOENT
	}
	if old := np.ino.live[newName]; old != nil {
		if old == c {
			return 0
		}
		switch {
		case flags&noReplace != 0:
			return syscall.EEXIST
		case old.isDir() && !c.isDir():
			return syscall.EISDIR
		case !old.isDir() && c.isDir():
			return syscall.ENOTDIR
		case old.isDir() && len(old.live) > 0:
			return syscall.ENOTEMPTY
		}
		old.nlink--
	}
	if c.isDir() && n.fsys.isAncestor(c, np.ino) {
		return syscall.EINVAL
	}
	delete(n.ino.live, name)
	np.ino.live[newName] = c
	n.touch(n.ino)
	n.touch(np.ino)
	return 0
}

// isAncestor reports whether d is dir or holds it (live).
func (f *FS) isAncestor(d, dir *inode) bool {
	if d == dir {
		return true
	}
	for _, c := range d.live {
		if c.isDir() && f.isAncestor(c, dir) {
			return true
		}
	}
	return false
}

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	defer n.unlock()
	if !n.lock() {
		return nil, syscall.EIO
	}
	t, ok := target.(*node)
	if !ok || t.gen != n.gen {
		return nil, syscall.EXDEV
	}
	if t.ino.isDir() {
		return nil, syscall.EPERM
	}
	if n.ino.live[name] != nil {
		return nil, syscall.EEXIST
	}
	n.ino.live[name] = t.ino
	t.ino.nlink++
	n.touch(n.ino)
	return n.child(ctx, t.ino, out), 0
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	defer n.unlock()
	if !n.lock() {
		return nil, syscall.EIO
	}
	names := make([]string, 0, len(n.ino.live))
	for name := range n.ino.live {
		names = append(names, name)
	}
	slices.Sort(names)
	ents := make([]fuse.DirEntry, 0, len(names))
	for _, name := range names {
		c := n.ino.live[name]
		ents = append(ents, fuse.DirEntry{Name: name, Mode: c.mode, Ino: c.id})
	}
	return fs.NewListDirStream(ents), 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	defer n.unlock()
	if !n.lock() {
		return syscall.EIO
	}
	const blocks = 1 << 24 // 64 GiB of 4 KiB blocks: room is not modelled
	out.Blocks, out.Bfree, out.Bavail = blocks, blocks, blocks
	out.Files, out.Ffree = 1<<20, 1<<20
	out.Bsize, out.Frsize, out.NameLen = pageSize, pageSize, 255
	return 0
}
