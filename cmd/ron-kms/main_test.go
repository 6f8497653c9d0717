package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/ron-kms/ron-kms/internal/cli"
	"github.com/ron-kms/ron-kms/internal/etcdtest"
)

// TestMain lets the scripts run ron-kms as a command.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"ron-kms": func() { os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI transcripts in testdata/script: what a user types
// and sees, against a real server on a loopback port.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			addr := ln.Addr().String()
			ln.Close()
			env.Setenv("LISTEN", addr)
			env.Setenv("RON_KMS_ADDR", "http://"+addr)
			env.Setenv("RON_KMS_DATA_DIR", env.WorkDir+"/data")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waitready": waitReady,
			"jsonget":   jsonGet,
			"replace":   replaceOnce,
			"etcd":      startEtcd,
		},
	})
}

// waitready polls $RON_KMS_ADDR/healthz until the server answers (10 s).
func waitReady(ts *testscript.TestScript, neg bool, args []string) {
	url := ts.Getenv("RON_KMS_ADDR") + "/healthz"
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	ts.Fatalf("server at %s never became healthy", url)
}

// etcd N starts a real etcd cluster of N members on loopback for the rest
// of the script (package etcdtest, built from the module and cached) and
// sets ETCD_URL (etcd://HOST:PORT,...) and ETCD_ENDPOINTS (the members'
// http:// URLs, comma-separated).
func startEtcd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: etcd N")
	}
	n, err := strconv.Atoi(args[0])
	ts.Check(err)
	root, err := etcdtest.RepoRoot()
	ts.Check(err)
	bin, err := etcdtest.Binary(root)
	ts.Check(err)
	dir := ts.MkAbs("etcd-cluster")
	ts.Check(os.MkdirAll(dir, 0o755))
	c, err := etcdtest.Start(etcdtest.Config{Members: n, Dir: dir, Binary: bin})
	ts.Check(err)
	ts.Defer(func() { c.Close() })
	var hosts []string
	for _, e := range c.Endpoints() {
		hosts = append(hosts, strings.TrimPrefix(e, "http://"))
	}
	ts.Setenv("ETCD_URL", "etcd://"+strings.Join(hosts, ","))
	ts.Setenv("ETCD_ENDPOINTS", strings.Join(c.Endpoints(), ","))
}

// replace FILE OLD NEW replaces the first OLD in FILE with NEW, in place
// (keeping the file's mode): how a transcript tampers with a file.
func replaceOnce(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace FILE OLD NEW")
	}
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	if !strings.Contains(string(b), args[1]) {
		ts.Fatalf("replace: %q is not in %s", args[1], args[0])
	}
	ts.Check(os.WriteFile(path, []byte(strings.Replace(string(b), args[1], args[2], 1)), 0o600))
}

// jsonget FILE PATH VAR sets $VAR to the string at the dotted PATH of the
// JSON in FILE, e.g. jsonget stdout key.name NAME.
func jsonGet(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: jsonget FILE PATH VAR")
	}
	v, err := lookupJSON(ts.ReadFile(args[0]), args[1])
	if err != nil {
		ts.Fatalf("jsonget: %v", err)
	}
	ts.Setenv(args[2], v)
}

func lookupJSON(doc, path string) (string, error) {
	var v any
	if err := jsonUnmarshal(doc, &v); err != nil {
		return "", err
	}
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			if _, err := fmt.Sscan(p, &i); err != nil || i < 0 || i >= len(x) {
				return "", fmt.Errorf("bad index %q", p)
			}
			v = x[i]
		default:
			return "", fmt.Errorf("no %q in %T", p, v)
		}
	}
	return fmt.Sprint(v), nil
}
