package lazyfs

import (
	"os"
	"testing"
)

// Require lets t go on only where a lazyfs can be mounted (see Available).
// Elsewhere it skips t, saying why, except under
// RON_KMS_REQUIRE_INTEGRATION=1 (which CI sets), where a missing
// prerequisite fails t instead: the suite's rule for integration tests.
func Require(t testing.TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	if os.Getenv("RON_KMS_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("%v (RON_KMS_REQUIRE_INTEGRATION=1 requires it)", err)
	}
	t.Skipf("%v; skipped (RON_KMS_REQUIRE_INTEGRATION=1 makes this a failure)", err)
}

// Mount makes a lazyfs with its backing directory under t.TempDir, mounts
// it on another directory there and returns it with the mount point. The
// file system is unmounted when t ends. It calls Require first.
func Mount(t testing.TB) (*FS, string) {
	t.Helper()
	Require(t)
	tmp := t.TempDir()
	f, err := New(tmp + "/backing")
	if err != nil {
		t.Fatal(err)
	}
	mnt := tmp + "/mnt"
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := f.Mount(mnt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("lazyfs: %v", err)
		}
	})
	return f, mnt
}
