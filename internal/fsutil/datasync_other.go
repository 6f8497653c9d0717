//go:build !linux

package fsutil

import "os"

// Datasync makes the data written to f durable: a full fsync on systems
// without fdatasync(2) (see the Linux version for when it is enough).
func Datasync(f *os.File) error { return f.Sync() }
