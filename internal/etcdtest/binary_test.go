package etcdtest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinary builds (or finds) the etcd server and checks that it is the
// client's version, as the HA tests assume. CI runs it first, alongside
// the fuzz runs, so that the one cold build overlaps other work.
func TestBinary(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := Binary(root)
	if err != nil {
		t.Fatal(err)
	}
	want, err := ModuleVersion(filepath.Join(root, "go.mod"), ClientModule)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", bin, err, out)
	}
	if !strings.Contains(string(out), "etcd Version: "+strings.TrimPrefix(want, "v")) {
		t.Fatalf("%s is not etcd %s:\n%s", bin, want, out)
	}
}
