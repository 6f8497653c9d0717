package client

import (
	"errors"
	"net/http"
	"sync"
	"time"
)

// Option configures a Client made by New.
type Option func(*options)

type options struct {
	http2    bool
	batching bool
	// batchRequests is how many requests one coalescing queue (sign,
	// verify) may have in flight at once.
	batchRequests int
}

// DefaultBatchRequests is how many sign requests, and separately how many
// verify requests, a Client with batching keeps in flight at once before
// it starts to coalesce further calls (see Client.Sign).
const DefaultBatchRequests = 2

func defaultOptions() options {
	return options{batching: true, batchRequests: DefaultBatchRequests}
}

// WithHTTP2 makes the client speak HTTP/2: h2 negotiated by ALPN for an
// https:// address, h2c with prior knowledge (RFC 9113 §3.3) for an
// http:// one. A server that does not speak HTTP/2 then fails every
// request; there is no fall back to HTTP/1.1. Many concurrent calls share
// one connection as streams. With an http.Client of the caller's, its
// Transport must be nil or an *http.Transport, which New copies (the
// caller's is left as it is); any other RoundTripper makes New fail.
func WithHTTP2() Option { return func(o *options) { o.http2 = true } }

// WithoutBatching turns off the coalescing of concurrent Sign and Verify
// calls: every call is one request of its own.
func WithoutBatching() Option { return func(o *options) { o.batching = false } }

// WithBatchRequests sets how many sign requests, and separately how many
// verify requests, may be in flight at once before concurrent calls are
// coalesced into batches (default DefaultBatchRequests; values below 1
// mean 1).
func WithBatchRequests(n int) Option {
	return func(o *options) { o.batchRequests = max(n, 1) }
}

// Shared transports of the clients made without an http.Client, one per
// protocol choice, so that such clients share their connections as they
// did when they all used http.DefaultTransport.
var (
	http1Transport = sync.OnceValue(func() *http.Transport { return protocolTransport(nil, false) })
	http2Transport = sync.OnceValue(func() *http.Transport { return protocolTransport(nil, true) })
)

// protocolTransport is a copy of base (http.DefaultTransport when nil)
// speaking HTTP/1.1 only, or HTTP/2 only: h2 over TLS, h2c in the clear.
func protocolTransport(base *http.Transport, h2 bool) *http.Transport {
	if base == nil {
		base = http.DefaultTransport.(*http.Transport)
	}
	t := base.Clone()
	var p http.Protocols
	if h2 {
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	t.Protocols = &p
	return t
}

// httpClient is the http.Client a Client with options o uses, given the
// caller's hc (possibly nil).
func httpClient(hc *http.Client, o options) (*http.Client, error) {
	if hc == nil {
		// HTTP/1.1 unless asked: the same as before the server spoke h2,
		// whatever ALPN would now pick.
		t := http1Transport()
		if o.http2 {
			t = http2Transport()
		}
		return &http.Client{Timeout: 30 * time.Second, Transport: t}, nil
	}
	if !o.http2 {
		return hc, nil
	}
	var base *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
	case *http.Transport:
		base = t
	default:
		return nil, errors.New("client: WithHTTP2 needs an http.Client whose Transport is nil or an *http.Transport")
	}
	c := *hc
	c.Transport = protocolTransport(base, true)
	return &c, nil
}
