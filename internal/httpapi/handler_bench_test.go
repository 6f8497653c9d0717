package httpapi

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"net/http"
	"net/url"
	"testing"
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
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	msg := make([]byte, 32)
	var handler, raw int64
	for b.Loop() {
		t0 := nanotime()
		rd := bytes.NewReader(body)
		r := &http.Request{Method: "POST", URL: u, Header: hdr.Clone(), Body: io.NopCloser(rd),
			ContentLength: int64(len(body)), Host: "ron-kms", RequestURI: "/v1/kms/sign", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		w := &discardWriter{h: http.Header{}}
		h.API.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("status %d", w.status)
		}
		t1 := nanotime()
		ed25519.Sign(priv, msg)
		t2 := nanotime()
		handler += t1 - t0
		raw += t2 - t1
	}
	b.ReportMetric(float64(raw)/float64(handler), "sign-ratio")
	b.ReportMetric(float64(handler-raw)/float64(b.N), "overhead-ns/op")
}

func nanotime() int64 { return time.Now().UnixNano() }
