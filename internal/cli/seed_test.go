package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/server"
)

// seedServer is a real server on a loopback listener, with its admin token.
type seedServer struct {
	url, tokenFile string
	c              *client.Client
}

func startSeedServer(t *testing.T) *seedServer {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen = "127.0.0.1:0"
	srv, err := server.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		srv.Close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	s := &seedServer{url: "http://" + ln.Addr().String(), tokenFile: filepath.Join(cfg.DataDir, server.AdminTokenFile)}
	tok, err := os.ReadFile(s.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if s.c, err = client.New(s.url, string(tok), nil); err != nil {
		t.Fatal(err)
	}
	return s
}

// seed runs ron-kms keys seed against s with args and returns its exit
// code, standard output and standard error.
func (s *seedServer) seed(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"--addr", s.url, "--token-file", s.tokenFile, "keys", "seed"}, args...)
	code := Main(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// names lists the names of every key of tenant through the API.
func (s *seedServer) names(t *testing.T, tenant string) []string {
	t.Helper()
	var names []string
	o := client.ListOptions{Tenant: tenant, Limit: 1000}
	for {
		page, err := s.c.ListKeys(t.Context(), o)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			names = append(names, k.Name)
		}
		if page.NextPageToken == "" {
			return names
		}
		o.PageToken = page.NextPageToken
	}
}

// readKids reads a --kids-out file: one kid of version 1 per line, under
// tenant/purpose/ed25519/. It returns the key names, sorted.
func readKids(t *testing.T, path, tenant, purpose string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s does not end with a newline", path)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if line == "" {
			continue
		}
		kid, err := api.ParseKID(line)
		if err != nil {
			t.Fatalf("%s: line %q: %v", path, line, err)
		}
		name, v, _ := strings.Cut(line, "#")
		if v != "v1" || !strings.HasPrefix(name, tenant+"/"+purpose+"/ed25519/") || kid.String() != line {
			t.Fatalf("%s: line %q is not a version-1 kid under %s/%s/ed25519/", path, line, tenant, purpose)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestSeed seeds 50 keys through a real listener: the kids file names them
// all, once each, and listing the tenant finds exactly them.
func TestSeed(t *testing.T) {
	s := startSeedServer(t)
	kids := filepath.Join(t.TempDir(), "kids.txt")
	code, out, errOut := s.seed(t, "--count", "50", "--tenant", "seedt", "--purpose", "load",
		"--concurrency", "8", "--kids-out", kids, "--run-id", "t1")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errOut)
	}
	for _, want := range []string{"seeded 50 ed25519 keys as seedt/load in ", " keys/s (concurrency 8, 0 backpressure retries)", "run id: t1\n", "kids: in " + kids + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout %q does not contain %q", out, want)
		}
	}
	if want := "seeding 50 ed25519 keys as seedt/load with run id t1\n"; errOut != want {
		t.Errorf("stderr = %q, want %q", errOut, want)
	}
	names := readKids(t, kids, "seedt", "load")
	if len(names) != 50 || len(slices.Compact(slices.Clone(names))) != 50 {
		t.Fatalf("kids file has %d lines, %d distinct; want 50", len(names), len(slices.Compact(slices.Clone(names))))
	}
	if listed := sorted(s.names(t, "seedt")); !slices.Equal(listed, names) {
		t.Fatalf("the server lists %d keys, not the %d of the kids file", len(listed), len(names))
	}
}

// TestSeedResume interrupts nothing but does what an interrupted run leaves
// behind: a run that made the first keys only. Running again with the same
// run id makes the rest and no duplicate, and lists every kid; a third run
// makes nothing.
func TestSeedResume(t *testing.T) {
	s := startSeedServer(t)
	dir := t.TempDir()
	first, second, third := filepath.Join(dir, "1.txt"), filepath.Join(dir, "2.txt"), filepath.Join(dir, "3.txt")
	args := []string{"--tenant", "resume", "--concurrency", "4", "--run-id", "r-1"}
	if code, _, errOut := s.seed(t, append(args, "--count", "20", "--kids-out", first)...); code != 0 {
		t.Fatalf("first run: exit %d: %s", code, errOut)
	}
	if code, _, errOut := s.seed(t, append(args, "--count", "50", "--kids-out", second)...); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, errOut)
	}
	before, after := readKids(t, first, "resume", "load"), readKids(t, second, "resume", "load")
	if len(before) != 20 || len(after) != 50 {
		t.Fatalf("kids files have %d and %d lines, want 20 and 50", len(before), len(after))
	}
	for _, n := range before {
		if _, found := slices.BinarySearch(after, n); !found {
			t.Fatalf("key %s of the first run is not among the kids of the resumed run", n)
		}
	}
	if listed := sorted(s.names(t, "resume")); !slices.Equal(listed, after) {
		t.Fatalf("the server lists %d keys after resuming, want the 50 of the kids file", len(listed))
	}

	if code, _, errOut := s.seed(t, append(args, "--count", "50", "--kids-out", third)...); code != 0 {
		t.Fatalf("third run: exit %d: %s", code, errOut)
	}
	if again := readKids(t, third, "resume", "load"); !slices.Equal(again, after) {
		t.Fatal("a third run with the same run id answered other kids")
	}
	if n := len(s.names(t, "resume")); n != 50 {
		t.Fatalf("the server lists %d keys after a third run, want 50", n)
	}
}

// TestSeedStopsAtError makes key number 10 of a run fail (its op_id was
// used for another request): seed stops, says how many keys it made and
// where their kids are, and the kids file holds them.
func TestSeedStopsAtError(t *testing.T) {
	s := startSeedServer(t)
	_, err := s.c.CreateKey(t.Context(), api.CreateKeyRequest{Tenant: "stop", Purpose: "other", Alg: "ed25519", OpID: seedOpID("clash", 10)})
	if err != nil {
		t.Fatal(err)
	}
	kids := filepath.Join(t.TempDir(), "kids.txt")
	code, out, errOut := s.seed(t, "--count", "20", "--tenant", "stop", "--concurrency", "1", "--run-id", "clash", "--kids-out", kids)
	if code != 1 || out != "" {
		t.Fatalf("exit %d, stdout %q; want 1 and nothing", code, out)
	}
	want := "ron-kms: keys seed: stopped after 10 of 20 keys (their kids are in " + kids +
		"; to resume, run again with --run-id clash): key 10: ron-kms: Conflict (HTTP 409): "
	if !strings.Contains(errOut, want) {
		t.Errorf("stderr %q does not contain %q", errOut, want)
	}
	if n := len(readKids(t, kids, "stop", "load")); n != 10 {
		t.Errorf("kids file has %d lines, want 10", n)
	}
}

// TestSeedRetriesBackpressure answers every other create with 429 and
// Retry-After: 0: seed retries each and makes every key.
func TestSeedRetriesBackpressure(t *testing.T) {
	var calls atomic.Int64
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/kms/keys" {
			http.NotFound(w, r)
			return
		}
		var req api.CreateKeyRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1)%2 == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			json.NewEncoder(w).Encode(api.Error{Err: api.ErrorBody{Code: api.CodeBackpressure, Message: "busy", Retryable: true}})
			return
		}
		// The kid's uuid is the op_id's counter, so that keys differ.
		var n int
		fmt.Sscanf(req.OpID[strings.LastIndexByte(req.OpID, '-')+1:], "%d", &n)
		kid := fmt.Sprintf("%s/%s/%s/00000000-0000-7000-8000-%012d#v1", req.Tenant, req.Purpose, req.Alg, n)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(api.CreateKeyResponse{KID: kid})
	}))
	defer fake.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("not-checked"), 0o600); err != nil {
		t.Fatal(err)
	}
	kids := filepath.Join(t.TempDir(), "kids.txt")
	var out, errb bytes.Buffer
	code := Main(t.Context(), []string{"--addr", fake.URL, "--token-file", tokenFile, "keys", "seed",
		"--count", "3", "--concurrency", "1", "--kids-out", kids}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "3 backpressure retries") {
		t.Errorf("stdout %q does not report 3 retries", out.String())
	}
	if n := len(readKids(t, kids, "seed", "load")); n != 3 {
		t.Errorf("kids file has %d lines, want 3", n)
	}
}

func TestSeedFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--count", "0"}, "--count must be 1 to"},
		{[]string{"--count", "1", "--concurrency", "0"}, "--concurrency must be positive"},
		{[]string{"--count", "1", "--tenant", "Bad"}, "--tenant"},
		{[]string{"--count", "1", "--alg", "rsa"}, `--alg "rsa" is not an algorithm`},
		{[]string{"--count", "1", "--run-id", "a b"}, `--run-id "a b": only letters`},
		{[]string{"--count", "1", "--run-id", strings.Repeat("x", 65)}, "--run-id is longer than 64"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"--addr", "http://127.0.0.1:1", "keys", "seed"}, tt.args...)
		if code := Main(t.Context(), args, &out, &errb); code != 1 || !strings.Contains(errb.String(), tt.want) {
			t.Errorf("seed %v: exit %d, stderr %q; want 1 and %q", tt.args, code, errb.String(), tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tt := range []struct {
		h    string
		want time.Duration
	}{
		{"0", 0},
		{"1", time.Second},
		{"30", 30 * time.Second},
		{"3600", maxRetryAfter},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"", time.Second},
		{"-1", time.Second},
		{"soon", time.Second},
	} {
		if got := parseRetryAfter(tt.h, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.h, got, tt.want)
		}
	}
}
