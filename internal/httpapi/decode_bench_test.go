package httpapi

import (
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// The bodies of the hottest routes, as the client package sends them.
var (
	benchSignBody   = []byte(`{"kid":"acme/invoices/ed25519/0192f5c4-7d1e-7a3b-9c2d-4e5f60718293","payload_b3":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"}`)
	benchVerifyBody = []byte(`{"kid":"acme/invoices/ed25519/0192f5c4-7d1e-7a3b-9c2d-4e5f60718293#v1","payload_b3":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","sigs":[{"alg":"ed25519","signature_b64":"sbnYwrA6Xn2BRiE4OQPa2GlEfC1oZ0jmG8B3NtB5bJaGvq2zPzHJmkbc3R6VYuOLSBm1v3klbTAhlm9NdOoQBw"}]}`)
)

func BenchmarkDecodeSign(b *testing.B) {
	for b.Loop() {
		var req api.SignRequest
		if err := decodeBytes(benchSignBody, &req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeVerify(b *testing.B) {
	for b.Loop() {
		var req api.VerifyRequest
		if err := decodeBytes(benchVerifyBody, &req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeVerifyBatch64 decodes a 64-item verify batch; ns/item is
// what each item's decoding costs.
func BenchmarkDecodeVerifyBatch64(b *testing.B) {
	body := append([]byte(`{"items":[`), benchVerifyBody...)
	for range 63 {
		body = append(append(body, ','), benchVerifyBody...)
	}
	body = append(body, "]}"...)
	for b.Loop() {
		var req api.VerifyBatchRequest
		if err := decodeBytes(body, &req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/item")
}
