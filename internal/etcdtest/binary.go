// Package etcdtest runs real etcd clusters on loopback for ron-kms's tests
// and scripts: one to five members, each a separate etcd process that a test
// may kill (SIGKILL), stop and restart.
//
// The etcd server is built from its Go module (tools/etcd) at the version of
// the etcd client in go.mod, once per machine, and cached; no binary is
// downloaded. Building it cold takes a few minutes; later runs find it in the
// cache at once.
package etcdtest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// ClientModule is the etcd client module whose version the server must have.
const ClientModule = "go.etcd.io/etcd/client/v3"

// serverPackage is the etcd server's main package.
const serverPackage = "go.etcd.io/etcd/server/v3"

// BinaryEnv names a variable that may point at an etcd server binary to use
// instead of building one (it must still be of the client's version).
const BinaryEnv = "RON_KMS_ETCD_BIN"

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the path of an etcd server binary at the client's version:
// $RON_KMS_ETCD_BIN if set, else one built from tools/etcd into the user
// cache directory (ron-kms/etcd-<version>/etcd), building it on first use.
// Concurrent callers, in this process or others, build it once: a file lock
// serialises the builds and the binary is renamed into place when complete.
// repoRoot is the ron-kms module's root (see RepoRoot).
func Binary(repoRoot string) (string, error) {
	buildOnce.Do(func() { buildPath, buildErr = binary(repoRoot) })
	return buildPath, buildErr
}

func binary(repoRoot string) (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		return p, nil
	}
	version, err := ModuleVersion(filepath.Join(repoRoot, "go.mod"), ClientModule)
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("etcdtest: no cache directory for the etcd build: %w", err)
	}
	dir := filepath.Join(cache, "ron-kms", "etcd-"+version)
	bin := filepath.Join(dir, "etcd")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("etcdtest: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "build.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("etcdtest: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("etcdtest: locking the etcd build: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another process built it while we waited
	}
	toolDir := filepath.Join(repoRoot, "tools", "etcd")
	pinned, err := ModuleVersion(filepath.Join(toolDir, "go.mod"), serverPackage)
	if err != nil {
		return "", err
	}
	if pinned != version {
		return "", fmt.Errorf("etcdtest: tools/etcd pins etcd server %s but go.mod has client %s; run: cd tools/etcd && go get %s@%s && go mod tidy",
			pinned, version, serverPackage, version)
	}
	tmp := bin + ".tmp"
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp, serverPackage)
	cmd.Dir = toolDir
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=auto", "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("etcdtest: building etcd %s from tools/etcd: %v\n%s", version, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("etcdtest: %w", err)
	}
	return bin, nil
}

// ModuleVersion returns the version of module mod required by the go.mod
// file at path.
func ModuleVersion(path, mod string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("etcdtest: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == mod {
			return fields[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("etcdtest: %s: %w", path, err)
	}
	return "", fmt.Errorf("etcdtest: %s does not require %s", path, mod)
}

// RepoRoot finds the root of the ron-kms module from the working directory
// upwards: the directory whose go.mod declares github.com/ron-kms/ron-kms.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/ron-kms/ron-kms\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("etcdtest: not inside the ron-kms module")
		}
		dir = parent
	}
}
