package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is a small sweep: four ed25519 operations and ML-DSA-65 signing at
// concurrency 1, 8 and 64, each service result followed by its raw one; a
// rate sweep of sign; and two labelled runs for keys.png.
const fixture = "testdata/sweep.jsonl"

var fixtureTargets = []string{"-target", "sign=0.6", "-target", "sign-batch=0.9", "-target", "verify-batch=2"}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	if code := run(args, &stderr); code != 0 {
		t.Fatalf("run %q = %d: %s", args, code, stderr.String())
	}
	return stderr.String()
}

func TestRenderAll(t *testing.T) {
	dir := t.TempDir()
	runOK(t, append(append([]string{"-out", dir}, fixtureTargets...), fixture)...)
	// 10 × 5.5 inches at 96 dots per inch.
	const wantW, wantH = 960, 528
	if pixels(figWidth) != wantW || pixels(figHeight) != wantH {
		t.Fatalf("figure is %d×%d pixels, want %d×%d", pixels(figWidth), pixels(figHeight), wantW, wantH)
	}
	for _, name := range outputFiles {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
			t.Errorf("%s is %d×%d, want %d×%d", name, b.Dx(), b.Dy(), wantW, wantH)
		}
	}
}

func TestRenderDeterministic(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	runOK(t, append(append([]string{"-out", a}, fixtureTargets...), fixture)...)
	runOK(t, append(append([]string{"-out", b}, fixtureTargets...), fixture)...)
	for _, name := range outputFiles {
		x, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs on the same input", name)
		}
	}
}

// TestRenderSkips: a plot with no data is not written and an old file of its
// name is removed.
func TestRenderSkips(t *testing.T) {
	in := filepath.Join(t.TempDir(), "closed.jsonl")
	data := `{"mode":"service","op":"sign","alg":"ed25519","batch":1,"concurrency":1,"ops_per_sec":10,"latency":{"p50_ns":1000000,"p95_ns":2000000,"p99_ns":3000000}}
{"mode":"service","op":"sign","alg":"ed25519","batch":1,"concurrency":4,"ops_per_sec":20,"latency":{"p50_ns":1000000,"p95_ns":2000000,"p99_ns":3000000}}
`
	if err := os.WriteFile(in, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stale := filepath.Join(dir, fileLatencyRate)
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	log := runOK(t, "-out", dir, in)
	for _, name := range []string{fileThroughput, fileLatency} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range []string{fileRatio, fileLatencyRate, fileKeys} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s written with no data for it", name)
		}
		if !strings.Contains(log, name) {
			t.Errorf("stderr does not mention %s: %s", name, log)
		}
	}
}

func TestRunErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"mode":"raw","op":"sign","concurrency":1}`+"\n{oops\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-out", t.TempDir(), bad}, 1, bad + ":2: malformed JSON"},
		{[]string{"-out", t.TempDir(), "no-such-file.jsonl"}, 1, "no-such-file.jsonl"},
		{[]string{fixture}, 2, "need -out"},
		{[]string{"-out", t.TempDir()}, 2, "need -out DIR and at least one FILE"},
		{[]string{"-target", "sign", "-out", t.TempDir(), fixture}, 2, "op=level"},
		{[]string{"-h"}, 0, "latency-rate.png"},
	} {
		var stderr bytes.Buffer
		code := run(tc.args, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("run %q = %d, %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
