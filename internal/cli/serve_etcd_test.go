package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/etcdtest"
	"github.com/ron-kms/ron-kms/internal/logtest"
	"github.com/ron-kms/ron-kms/internal/server"
)

// etcdState is everything in an etcd cluster: its revision and every key
// with its value and mod revision. Two equal states mean nothing was
// written anywhere in the cluster in between.
type etcdState struct {
	rev  int64
	kvs  string
	keys int
}

// etcdClient is a client of cl for a test to look behind the store, and
// a context to use it under; both end with the test.
func etcdClient(t *testing.T, cl *etcdtest.Cluster) (*clientv3.Client, context.Context) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: cl.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return cli, ctx
}

func readEtcd(t *testing.T, cl *etcdtest.Cluster) etcdState {
	t.Helper()
	cli, ctx := etcdClient(t, cl)
	resp, err := cli.Get(ctx, "\x00", clientv3.WithFromKey())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, kv := range resp.Kvs {
		fmt.Fprintf(&b, "%q@%d=%x\n", kv.Key, kv.ModRevision, sha256.Sum256(kv.Value))
	}
	return etcdState{rev: resp.Header.Revision, kvs: b.String(), keys: len(resp.Kvs)}
}

func putEtcd(t *testing.T, cl *etcdtest.Cluster, key, val string) {
	t.Helper()
	cli, ctx := etcdClient(t, cl)
	if _, err := cli.Put(ctx, key, val); err != nil {
		t.Fatal(err)
	}
}

// dirState describes a directory tree (names, modes, sizes, contents);
// "absent" when it does not exist.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		return "absent"
	}
	var b strings.Builder
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v %d %s", path, fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func writeKEKFile(t *testing.T, dir, name string) string {
	t.Helper()
	kek := make([]byte, 32)
	rand.Read(kek)
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(hex.EncodeToString(kek)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// runServe runs `ron-kms serve args...` in this process until it returns
// (a refusal), and returns its exit code, stdout and stderr.
func runServe(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := Main(ctx, append([]string{"serve"}, args...), &stdout, &stderr)
	if ctx.Err() != nil {
		t.Fatalf("serve %v did not return: it was expected to refuse to start", args)
	}
	return code, stdout.String(), stderr.String()
}

// startServe runs a serve that is expected to start, until the test ends.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr logtest.Buffer
	go func() {
		done <- Main(ctx, append([]string{"serve", "--listen", addr}, args...), &bytes.Buffer{}, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited with %d:\n%s", code, stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return "http://" + addr
			}
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("serve exited with %d at start:\n%s", code, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %v\n%s", err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeEtcdRefusals: a node that must not join refuses to start with
// one line on standard error that names the fix and a non-zero exit, and
// writes nothing: neither in etcd (the whole cluster's revision and keys
// are unchanged) nor in the data directory (which is not even created, or
// left exactly as it was). The cases: another key-encryption key than the
// deployment's, an unreachable etcd, a prefix holding another
// application's keys, a prefix that holds a deployment further down, and
// a prefix inside a deployment.
func TestServeEtcdRefusals(t *testing.T) {
	t.Setenv("GOMAXPROCS", "2") // serve leaves the runtime as it is
	t.Setenv("GOGC", "100")
	cl := etcdtest.New(t, 1)
	eps := strings.Join(cl.Endpoints(), ",")
	dir := t.TempDir()
	kek := writeKEKFile(t, dir, "kek")
	otherKEK := writeKEKFile(t, dir, "other-kek")

	// The deployment, started by its first node, then stopped.
	node0 := filepath.Join(dir, "node0")
	t.Run("first node", func(t *testing.T) {
		startServe(t, "--store", "etcd", "--etcd-endpoints", eps, "--etcd-prefix", "team/prod/",
			"--kek-file", kek, "--data-dir", node0)
	})
	if _, err := os.Stat(filepath.Join(node0, server.NodeIDFile)); err != nil {
		t.Fatalf("the first node wrote no node id: %v", err)
	}
	// Another application's keys elsewhere in the cluster.
	putEtcd(t, cl, "billing/config", "{}")

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadEndpoint := "http://" + closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name     string
		args     []string
		dataDir  string // default: a new path
		want     []string
		bounded  bool
		setupEnv map[string]string
	}{
		{name: "wrong KEK", args: []string{"--etcd-prefix", "team/prod/", "--kek-file", otherKEK},
			want: []string{"wrong key-encryption key", "team/prod/", "--kek-file"}},
		{name: "wrong KEK on a node that ran before", args: []string{"--etcd-prefix", "team/prod/", "--kek-file", otherKEK},
			dataDir: node0, want: []string{"wrong key-encryption key", "--kek-file"}},
		{name: "passphrase for a KEK-file deployment", args: []string{"--etcd-prefix", "team/prod/", "--kek-passphrase-env", "TEST_PASS"},
			setupEnv: map[string]string{"TEST_PASS": "correct horse"}, want: []string{"from a KEK file", "--kek-file"}},
		{name: "unreachable etcd", args: []string{"--etcd-prefix", "team/prod/", "--kek-file", kek, "--etcd-endpoints", deadEndpoint},
			want: []string{"does not answer", deadEndpoint, "--etcd-endpoints"}, bounded: true},
		{name: "another application's prefix", args: []string{"--etcd-prefix", "billing/", "--kek-file", kek},
			want: []string{"billing/", "no ron-kms deployment marker", "--etcd-prefix"}},
		{name: "parent of a deployment", args: []string{"--etcd-prefix", "team/", "--kek-file", kek},
			want: []string{"another ron-kms deployment, at team/prod/", "--etcd-prefix team/prod/"}},
		{name: "inside a deployment", args: []string{"--etcd-prefix", "team/prod/staging/", "--kek-file", kek},
			want: []string{"inside the ron-kms deployment at team/prod/", "--etcd-prefix team/prod/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.setupEnv {
				t.Setenv(k, v)
			}
			dataDir := tc.dataDir
			if dataDir == "" {
				dataDir = filepath.Join(t.TempDir(), "data")
			}
			args := append([]string{"--store", "etcd", "--etcd-endpoints", eps, "--data-dir", dataDir, "--listen", "127.0.0.1:0"}, tc.args...)
			beforeEtcd, beforeDir := readEtcd(t, cl), dirState(t, dataDir)
			t0 := time.Now()
			code, stdout, stderr := runServe(t, args...)
			took := time.Since(t0)
			t.Logf("refused in %v: %s", took.Round(time.Millisecond), strings.TrimSpace(stderr))
			if code == 0 {
				t.Fatalf("exit code 0")
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") || !strings.HasPrefix(stderr, "ron-kms: ") {
				t.Errorf("stderr is not one line: %q", stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not say %q: %s", w, stderr)
				}
			}
			if after := readEtcd(t, cl); after != beforeEtcd {
				t.Errorf("etcd changed: revision %d -> %d, keys %d -> %d", beforeEtcd.rev, after.rev, beforeEtcd.keys, after.keys)
			}
			if after := dirState(t, dataDir); after != beforeDir {
				t.Errorf("the data directory changed:\nbefore:\n%s\nafter:\n%s", beforeDir, after)
			}
			// The issue asks for a bound of a few seconds, not a hang; 5 s
			// of tries plus one request timeout, with a wide margin.
			if tc.bounded && took > 15*time.Second {
				t.Errorf("an unreachable etcd took %v to be refused", took)
			}
		})
	}

	// With the right key the node that ran before starts again.
	t.Run("right KEK", func(t *testing.T) {
		startServe(t, "--store", "etcd", "--etcd-endpoints", eps, "--etcd-prefix", "team/prod/",
			"--kek-file", kek, "--data-dir", node0)
	})
}

// TestAuditVerifyNodes: `audit verify --data-dir A --data-dir B` checks both
// nodes' logs in one call and names each node; it fails if one log is
// broken, still reporting the other as intact.
func TestAuditVerifyNodes(t *testing.T) {
	t.Setenv("GOMAXPROCS", "2")
	t.Setenv("GOGC", "100")
	cl := etcdtest.New(t, 1)
	eps := strings.Join(cl.Endpoints(), ",")
	dir := t.TempDir()
	kek := writeKEKFile(t, dir, "kek")
	dirA, dirB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	t.Run("two nodes", func(t *testing.T) {
		urlA := startServe(t, "--store", "etcd", "--etcd-endpoints", eps, "--kek-file", kek, "--data-dir", dirA, "--node-id", "node-a")
		urlB := startServe(t, "--store", "etcd", "--etcd-endpoints", eps, "--kek-file", kek, "--data-dir", dirB, "--node-id", "node-b")
		tok, err := os.ReadFile(filepath.Join(dirA, server.AdminTokenFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{urlA, urlB} {
			c, err := client.New(u, strings.TrimSpace(string(tok)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateKey(context.Background(), api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519"}); err != nil {
				t.Fatal(err)
			}
		}
	})
	verify := func() (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), []string{"audit", "verify", "--data-dir", dirA, "--data-dir", dirB}, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	code, stdout, stderr := verify()
	t.Logf("stdout:\n%s", stdout)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, w := range []string{dirA + ": audit log intact: ", ", node node-a\n", dirB + ": audit log intact: ", ", node node-b\n", "all 2 audit logs intact\n"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("stdout does not say %q", w)
		}
	}

	logB := filepath.Join(dirB, "audit", "audit-000001.log")
	data, err := os.ReadFile(logB)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logB, bytes.Replace(data, []byte(`"result":"ok"`), []byte(`"result":"no"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = verify()
	if code != 1 || !strings.Contains(stdout, dirA+": audit log intact") || strings.Contains(stdout, dirB+": audit log intact") ||
		!strings.Contains(stderr, dirB+": audit log BROKEN: audit-000001.log line ") || !strings.Contains(stderr, "1 of 2 audit logs intact") {
		t.Fatalf("with B's log broken: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
