// Package client is the typed Go client of the ron-kms HTTP API. Every
// method takes a context first and returns either a result or an error; a
// contract error is an *Error whose Unwrap gives one of the sentinels below,
// so callers can write errors.Is(err, client.ErrNotFound).
//
// A Client is safe for concurrent use. It holds the bearer token, a secret,
// and never prints it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ron-kms/ron-kms/api"
)

// Sentinels, one per contract error code.
var (
	ErrBadRequest       = errors.New("ron-kms: bad request")
	ErrUnsupported      = errors.New("ron-kms: unsupported")
	ErrUnauthenticated  = errors.New("ron-kms: unauthenticated")
	ErrNoCapability     = errors.New("ron-kms: no capability")
	ErrNotFound         = errors.New("ron-kms: not found")
	ErrConflict         = errors.New("ron-kms: conflict")
	ErrTooLarge         = errors.New("ron-kms: too large")
	ErrBackpressure     = errors.New("ron-kms: backpressure")
	ErrInternal         = errors.New("ron-kms: internal error")
	ErrStoreUnavailable = errors.New("ron-kms: store unavailable")
	ErrTimeout          = errors.New("ron-kms: timeout")
)

var sentinels = map[api.Code]error{
	api.CodeBadRequest: ErrBadRequest, api.CodeUnsupported: ErrUnsupported,
	api.CodeUnauthenticated: ErrUnauthenticated, api.CodeNoCapability: ErrNoCapability,
	api.CodeNotFound: ErrNotFound, api.CodeConflict: ErrConflict, api.CodeTooLarge: ErrTooLarge,
	api.CodeBackpressure: ErrBackpressure, api.CodeInternal: ErrInternal,
	api.CodeStoreUnavailable: ErrStoreUnavailable, api.CodeTimeout: ErrTimeout,
}

// Error is a contract error answered by the server.
type Error struct {
	Status int
	Body   api.ErrorBody
}

func (e *Error) Error() string {
	return fmt.Sprintf("ron-kms: %s (HTTP %d): %s", e.Body.Code, e.Status, e.Body.Message)
}

// Unwrap returns the sentinel of the error's code (ErrInternal for an
// unknown code).
func (e *Error) Unwrap() error {
	if s, ok := sentinels[e.Body.Code]; ok {
		return s
	}
	return ErrInternal
}

// DefaultAddr is where the CLI looks for a server when RON_KMS_ADDR is unset.
const DefaultAddr = "http://127.0.0.1:9446"

// Client talks to one ron-kms server.
type Client struct {
	base  string
	token string
	hc    *http.Client
	// sign and verify coalesce concurrent calls (batch.go); nil without
	// batching.
	sign   *batcher[api.SignRequest, api.SignResponse]
	verify *batcher[api.VerifyRequest, api.VerifyResponse]
}

// New returns a client for the server at addr (such as
// "http://127.0.0.1:9446") that authenticates with token. hc may be nil for a
// client with a 30 s timeout speaking HTTP/1.1 (HTTP/2 with WithHTTP2).
// By default concurrent Sign and Verify calls are coalesced into batch
// requests (see Client.Sign); WithoutBatching turns that off.
func New(addr, token string, hc *http.Client, opts ...Option) (*Client, error) {
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: %q is not an http(s) address", addr)
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if hc, err = httpClient(hc, o); err != nil {
		return nil, err
	}
	c := &Client{base: strings.TrimRight(addr, "/"), token: strings.TrimSpace(token), hc: hc}
	if o.batching {
		c.sign = newBatcher(c, o.batchRequests, signKind)
		c.verify = newBatcher(c, o.batchRequests, verifyKind)
	}
	return c, nil
}

// do sends one request and decodes a 2xx answer into out.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encoding request: %w", err)
		}
		body = b
	}
	_, err := c.doBytes(ctx, method, path, body, out)
	return err
}

// doBytes sends one request with body (none when nil) and decodes a 2xx
// answer into out. It returns the answer's X-Request-Id.
func (c *Client) doBytes(ctx context.Context, method, path string, body []byte, out any) (string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return id, fmt.Errorf("client: reading response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return id, responseError(resp.StatusCode, b)
	}
	if out == nil {
		return id, nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return id, fmt.Errorf("client: decoding response: %w", err)
	}
	return id, nil
}

// responseError is the *Error of a non-2xx answer with body b.
func responseError(status int, b []byte) error {
	var e api.Error
	if json.Unmarshal(b, &e) != nil || e.Err.Code == "" {
		return &Error{Status: status, Body: api.ErrorBody{Code: api.CodeInternal,
			Message: fmt.Sprintf("unexpected HTTP %d without an error envelope", status)}}
	}
	return &Error{Status: status, Body: e.Err}
}

// keyPath is the path of a key name: /v1/kms/keys/tenant/purpose/alg/uuid.
func keyPath(name string) (string, error) {
	n, err := api.ParseKeyName(name)
	if err != nil {
		return "", err
	}
	return "/v1/kms/keys/" + n.String(), nil
}
