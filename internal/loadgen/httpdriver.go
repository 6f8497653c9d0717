package loadgen

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// Drivers of a service run: how requests reach the server.
const (
	// DriverLean is the HTTP/1.1 driver of this package: one TCP
	// connection per worker, prebuilt request bytes, a small response
	// parser. Plain http:// addresses only.
	DriverLean = "lean"
	// DriverNetHTTP sends the same request bodies through one shared
	// net/http client, as the client package talks: the driver for
	// https:// addresses.
	DriverNetHTTP = "net/http"
)

// httpConn is the net/http driver of one worker: the plan's shared
// http.Client, and a body buffer of its own.
type httpConn struct {
	hc    *http.Client
	base  string // address, without a trailing "/"
	token string // a secret
	buf   []byte
}

var _ transport = (*httpConn)(nil)

func (h *httpConn) roundTrip(ctx context.Context, req wireRequest) (int, []byte, error) {
	// net/http may still read a request body after Do returns, and a
	// template request lives in the worker's buffer: send a copy.
	body := bytes.Clone(req.msg[req.body:])
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, h.base+req.path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if h.token != "" {
		hr.Header.Set("Authorization", "Bearer "+h.token)
	}
	resp, err := h.hc.Do(hr)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	h.buf, err = readAllInto(h.buf[:0], io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, h.buf, nil
}

func (h *httpConn) close() {}

// readAllInto is io.ReadAll appending to buf.
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
