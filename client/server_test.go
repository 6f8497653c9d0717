package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ron-kms/ron-kms/internal/server"
)

// testServer is a ron-kms server on a real loopback listener, with the
// admin token of its data directory.
type testServer struct {
	url, token string
}

func startServer(t *testing.T) testServer {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen = "127.0.0.1:0"
	srv, err := server.Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	tok, err := os.ReadFile(filepath.Join(cfg.DataDir, server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return testServer{url: "http://" + ln.Addr().String(), token: strings.TrimSpace(string(tok))}
}

// requestsServed sums the server's http_requests_total for the routes
// given, from /metrics.
func requestsServed(t *testing.T, s testServer, routes ...string) int {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n := 0
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "http_requests_total{") {
			continue
		}
		for _, r := range routes {
			if strings.Contains(line, `route="`+r+`"`) || strings.Contains(line, `route="POST `+r+`"`) {
				f := strings.Fields(line)
				v, err := strconv.ParseFloat(f[len(f)-1], 64)
				if err != nil {
					t.Fatalf("metrics line %q", line)
				}
				n += int(v)
			}
		}
	}
	return n
}

// gate is a RoundTripper that records every request and holds each one
// until the test lets it go (when held is true).
type gate struct {
	next http.RoundTripper
	held bool

	mu      sync.Mutex
	bodies  []string // path and body of each request, in the order sent
	arrived chan string
	release chan struct{}
}

func newGate(held bool) *gate {
	return &gate{next: http.DefaultTransport.(*http.Transport).Clone(), held: held,
		arrived: make(chan string, 1000), release: make(chan struct{})}
}

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	g.mu.Lock()
	g.bodies = append(g.bodies, r.URL.Path+" "+string(body))
	g.mu.Unlock()
	if g.held {
		g.arrived <- r.URL.Path
		select {
		case <-g.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return g.next.RoundTrip(r)
}

func (g *gate) sent() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.bodies...)
}

// count is how many of the requests sent so far start with prefix
// (route and a space).
func (g *gate) count(prefix string) int {
	n := 0
	for _, s := range g.sent() {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

// queued is how many calls wait in b's queue.
func queued[Req, Res any](b *batcher[Req, Res]) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}
