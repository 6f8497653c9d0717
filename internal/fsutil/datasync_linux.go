package fsutil

import (
	"os"
	"syscall"
)

// Datasync makes the data written to f durable without its metadata:
// fdatasync(2) on Linux, a full fsync elsewhere. It is enough only when the
// writes did not change f's size or block map (writes into space already
// allocated and synced); otherwise use f.Sync.
func Datasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
