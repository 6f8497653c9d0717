package httpapi

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/ron-kms/ron-kms/internal/audit"
	"time"
)

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(s int)           { w.status = s }

// servePOST serves one POST of body to u through h's handler, in process,
// and fails b unless it is answered 200.
func servePOST(b *testing.B, h *harness, u *url.URL, hdr http.Header, body []byte) {
	r := &http.Request{Method: "POST", URL: u, Header: hdr.Clone(), Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Host: u.Host, RequestURI: u.Path, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	w := &discardWriter{h: http.Header{}}
	h.API.ServeHTTP(w, r)
	if w.status != http.StatusOK {
		b.Fatalf("status %d", w.status)
	}
}

// BenchmarkHandlerSign runs POST /v1/kms/sign through the API handler
// without a network (no audit log), alternating with a raw ed25519.Sign in
// the same loop, and reports the handler's throughput as a fraction of the
// raw one (sign-ratio): what the handler itself costs on top of signing.
func BenchmarkHandlerSign(b *testing.B) {
	h := newHarness(b)
	kid := h.createKey(b, "bench", "load", "ed25519")
	body := []byte(`{"kid":"` + kid + `","payload_b3":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"}`)
	u, _ := url.Parse("http://ron-kms/v1/kms/sign")
	hdr := http.Header{"Authorization": {"Bearer " + h.Admin}, "Content-Type": {"application/json"}}
	handler, raw := pairedSign(b, 1, func() { servePOST(b, h, u, hdr, body) })
	b.ReportMetric(float64(raw)/float64(handler), "sign-ratio")
	b.ReportMetric(float64(handler-raw)/float64(b.N), "overhead-ns/op")
}

func nanotime() int64 { return time.Now().UnixNano() }

// BenchmarkHandlerSignBatch64 runs 64-item POST /v1/kms/sign/batch requests
// through the API handler without a network but with a real audit log
// (a file, fsynced per request), alternating with 64 raw ed25519.Sign calls
// in the same loop; sign-ratio is raw time ÷ handler time.
func BenchmarkHandlerSignBatch64(b *testing.B) {
	l, err := audit.Open(b.TempDir(), audit.Options{AuditKeySeed: make([]byte, ed25519.SeedSize)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	h := newHarnessAudited(b, nil, l)
	body := []byte(`{"items":[`)
	for i := range 64 {
		if i > 0 {
			body = append(body, ',')
		}
		kid := h.createKey(b, "bench", "load", "ed25519")
		body = append(body, `{"kid":"`+kid+`","payload_b3":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"}`...)
	}
	body = append(body, "]}"...)
	u, _ := url.Parse("http://ron-kms/v1/kms/sign/batch")
	hdr := http.Header{"Authorization": {"Bearer " + h.Admin}, "Content-Type": {"application/json"}}
	handler, raw := pairedSign(b, 64, func() { servePOST(b, h, u, hdr, body) })
	b.ReportMetric(float64(raw)/float64(handler), "sign-ratio")
}

// pairedSign runs serve and n raw ed25519.Sign calls in alternate halves of
// each iteration of b's loop and returns the nanoseconds spent in each.
func pairedSign(b *testing.B, n int, serve func()) (handler, raw int64) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	msg := make([]byte, 32)
	for b.Loop() {
		t0 := nanotime()
		serve()
		t1 := nanotime()
		for range n {
			ed25519.Sign(priv, msg)
		}
		t2 := nanotime()
		handler += t1 - t0
		raw += t2 - t1
	}
	return handler, raw
}
