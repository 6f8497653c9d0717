package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// protoClient is an http.Client speaking only HTTP/1.1, or only HTTP/2 (h2
// over TLS, h2c in the clear), trusting roots for TLS.
func protoClient(h2 bool, roots *x509.CertPool) *http.Client {
	var p http.Protocols
	if h2 {
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	return &http.Client{Transport: &http.Transport{Protocols: &p, TLSClientConfig: &tls.Config{RootCAs: roots}}}
}

// TestHTTP2: the server answers HTTP/2 (h2c on a plain listener, h2 by
// ALPN over TLS) and HTTP/1.1 on the same listener, and the client
// package signs over either.
func TestHTTP2(t *testing.T) {
	for _, useTLS := range []bool{false, true} {
		name := "h2c"
		if useTLS {
			name = "h2"
		}
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			var roots *x509.CertPool
			if useTLS {
				cfg.TLSCert, cfg.TLSKey = writeSelfSigned(t)
				roots = x509.NewCertPool()
				pem, _ := os.ReadFile(cfg.TLSCert)
				roots.AppendCertsFromPEM(pem)
			}
			r := start(t, cfg)
			for _, h2 := range []bool{true, false} {
				resp, err := protoClient(h2, roots).Get(r.url + "/healthz")
				if err != nil {
					t.Fatalf("h2=%v: %v", h2, err)
				}
				resp.Body.Close()
				want := 1
				if h2 {
					want = 2
				}
				if resp.StatusCode != 200 || resp.ProtoMajor != want {
					t.Fatalf("h2=%v: %d over %s", h2, resp.StatusCode, resp.Proto)
				}
			}
			// A TLS client that offers both protocols gets h2.
			if useTLS {
				hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}}
				resp, err := hc.Get(r.url + "/healthz")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.ProtoMajor != 2 || resp.TLS == nil || resp.TLS.NegotiatedProtocol != "h2" {
					t.Fatalf("ALPN chose %s", resp.Proto)
				}
			}
			tok, err := os.ReadFile(cfg.DataDir + "/" + AdminTokenFile)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for _, h2 := range []bool{true, false} {
				var opts []client.Option
				if h2 {
					opts = append(opts, client.WithHTTP2())
				}
				hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
				c, err := client.New(r.url, string(tok), hc, opts...)
				if err != nil {
					t.Fatal(err)
				}
				k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "h2", Alg: "ed25519"})
				if err != nil {
					t.Fatalf("h2=%v: %v", h2, err)
				}
				s, err := c.Sign(ctx, api.SignRequest{KID: k.KID, PayloadB3: strings.Repeat("aa", 32)})
				if err != nil {
					t.Fatalf("h2=%v: %v", h2, err)
				}
				v, err := c.Verify(ctx, api.VerifyRequest{KID: s.KID, PayloadB3: strings.Repeat("aa", 32), Sigs: s.Sigs})
				if err != nil || !v.OK {
					t.Fatalf("h2=%v: %+v %v", h2, v, err)
				}
			}
		})
	}
}
