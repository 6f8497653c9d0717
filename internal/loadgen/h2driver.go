package loadgen

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// More drivers of a service run.
const (
	// DriverHTTP2 sends the request bodies of DriverNetHTTP over HTTP/2
	// (h2c for http://, h2 by ALPN for https://), the workers' requests
	// multiplexed as streams over Config.Conns connections: worker i uses
	// connection i mod Conns.
	DriverHTTP2 = "http2"
	// DriverClient calls client.Sign and client.Verify of one client
	// package Client with its automatic batching, from every worker: what
	// a Go program with that many goroutines calling the client gets. The
	// Client coalesces the workers' calls; Requests and Items count calls,
	// not the HTTP requests the Client made. Ops sign and verify only.
	DriverClient = "client"
)

// DefaultConns is Config.Conns when it is zero.
const DefaultConns = 1

// h2Transport returns http.Clients, one connection each, speaking only
// HTTP/2, as copies of base (its TLS settings, its timeout).
func h2Clients(base *http.Client, conns int) []*http.Client {
	var bt *http.Transport
	if t, ok := base.Transport.(*http.Transport); ok {
		bt = t
	} else {
		bt = http.DefaultTransport.(*http.Transport)
	}
	var p http.Protocols
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	out := make([]*http.Client, conns)
	for i := range out {
		t := bt.Clone()
		t.Protocols = &p
		// One connection per transport: Go's HTTP/2 transport opens
		// another only past the server's stream limit, which is above
		// any sensible concurrency per connection; say so strictly.
		t.MaxConnsPerHost = 1
		t.HTTP2 = &http.HTTP2Config{StrictMaxConcurrentRequests: true}
		out[i] = &http.Client{Transport: t, Timeout: base.Timeout}
	}
	return out
}

// h2Transports is the transport factory of a DriverHTTP2 run and the
// clients to close afterwards.
func (p *Plan) h2Transports() (func() transport, []*http.Client) {
	clients := h2Clients(p.hc, p.cfg.Conns)
	var next atomic.Int64
	return func() transport {
		hc := clients[int(next.Add(1)-1)%len(clients)]
		return &httpConn{hc: hc, base: p.base, token: p.head.token}
	}, clients
}

// checkClientDriver reports whether every operation of the run can go
// through the client package.
func checkClientDriver(ops []opRun) error {
	for _, o := range ops {
		if o.cfg.Op != "sign" && o.cfg.Op != "verify" {
			return fmt.Errorf("loadgen: the %s driver runs sign and verify, not %s", DriverClient, o.cfg.Op)
		}
	}
	return nil
}

// clientCall is the call of o through c: one Sign or Verify per request,
// the keys taken as the other drivers take them.
func (o *planOp) clientCall(c *client.Client) call {
	if o.cfg.Op == "sign" {
		reqs := make([]api.SignRequest, len(o.kids))
		for i, kid := range o.kids {
			reqs[i] = o.signRequest(keyRef{i: i, kid: kid})
		}
		return func(ctx context.Context, w *worker) outcome {
			if _, err := c.Sign(ctx, reqs[w.index(len(reqs))]); err != nil {
				return failed(err)
			}
			return outcome{ok: true, items: 1}
		}
	}
	reqs := make([]api.VerifyRequest, len(o.kids))
	for i, kid := range o.kids {
		reqs[i] = o.verifyRequest(keyRef{i: i, kid: kid})
	}
	return func(ctx context.Context, w *worker) outcome {
		r, err := c.Verify(ctx, reqs[w.index(len(reqs))])
		switch {
		case err != nil:
			return failed(err)
		case !r.OK:
			return outcome{ok: true, codes: []string{codeVerifyFailed}}
		}
		return outcome{ok: true, items: 1}
	}
}
