// Package fsutil holds the few file-system operations the service needs to
// be crash-safe and private: atomic creation of small secret files,
// directory fsync, and a data directory only its owner can use.
package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// CreateFileAtomic creates path with mode 0600 and contents data, or fails
// with an error wrapping fs.ErrExist if path already exists. Readers never see
// a partial file. Errors do not contain data.
func CreateFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer func() {
		// After a successful link the temporary name still holds a copy of
		// data; it must go.
		if rmErr := os.Remove(tmpName); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
			err = rmErr
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// A hard link publishes the file atomically without replacing one that
	// appeared in the meantime; rename is the fallback for file systems
	// without links.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		if _, statErr := os.Lstat(path); statErr == nil {
			return fmt.Errorf("%s: %w", path, fs.ErrExist)
		}
		if err := os.Rename(tmpName, path); err != nil {
			return err
		}
	}
	// The temporary name goes before the directory's fsync, so that the one
	// fsync makes both the new name and the removal durable: removed after
	// it, a power cut could bring the copy back.
	if err := os.Remove(tmpName); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making a rename or link in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// mkdirAllDurable creates dir and its missing parents with mode 0700 and
// fsyncs the parent of each directory it created, so that the new
// directories survive a power cut (a directory's entry is durable only once
// its parent is synced).
func mkdirAllDurable(dir string) error {
	var created []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		created = append(created, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, d := range created {
		if err := SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// ErrLooseDirMode reports a directory that group or others can write to.
var ErrLooseDirMode = errors.New("fsutil: directory is writable by group or others")

// PrivateDir makes dir a directory that only its owner can use, for a data
// directory holding keys, tokens and the audit log:
//
//   - missing, it is created (with its parents) with mode 0700;
//   - if group or others can write to it, it is refused with an error
//     wrapping ErrLooseDirMode that names the fix (chmod 700 dir) and is
//     left as it is: someone else could have put, replaced or removed
//     files in it, so it is not for this process to bless it;
//   - if group or others can only read or search it (0755, 0750, ...), its
//     mode is tightened to 0700 and the mode it had is returned in was
//     (0 when nothing changed), for the caller to warn about.
//
// The check follows symbolic links (it is the directory that matters, not
// the link). Mode bits mean nothing on Windows: there the directory is only
// created if missing.
func PrivateDir(dir string) (was fs.FileMode, err error) {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, mkdirAllDurable(dir)
	}
	if err != nil {
		return 0, err
	}
	if !fi.IsDir() {
		return 0, fmt.Errorf("fsutil: %s is not a directory", dir)
	}
	if runtime.GOOS == "windows" {
		return 0, nil
	}
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 {
		return 0, fmt.Errorf("%w: %s has mode %04o; fix it with: chmod 700 %s", ErrLooseDirMode, dir, perm, dir)
	}
	if perm&0o077 == 0 {
		return 0, nil
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return 0, fmt.Errorf("fsutil: tightening %s from mode %04o to 0700: %w", dir, perm, err)
	}
	return perm, nil
}
