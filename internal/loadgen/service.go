package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// Target is the server of a service run.
type Target struct {
	// Addr is the server's base address, http://host:port or https://…
	Addr string
	// Token is the bearer token of every request: a secret, kept in the
	// plan's request bytes and never printed.
	Token string
	// HTTPClient prepares the run (creates keys and fixtures) and carries
	// a run with DriverNetHTTP; nil means NewHTTPClient(Concurrency).
	HTTPClient *http.Client
}

// Plan is a prepared service run: keys created (or read), fixtures
// (signatures to verify, envelopes to unwrap) made, requests ready to
// build. A Plan is used by one Run at a time.
type Plan struct {
	cfg    Config
	ops    []*planOp
	keys   int // distinct keys over all operations
	driver string
	hc     *http.Client
	base   string // Addr without a trailing "/"
	dial   string // host:port of the lean driver
	head   wireHead
}

// planOp is one operation of a plan: its keys and fixtures.
type planOp struct {
	opRun
	// kids are the keys the operation spreads over; fixture i belongs to
	// kids[i]. A test may replace one before Run.
	kids []string
	// template: the kids come from a kids file and the body depends on
	// them alone, so requests are filled per request rather than prebuilt.
	template bool
	digest   string            // payload_b3 of sign and verify
	message  []byte            // message_b64 when PayloadBytes > 0
	dataB64  string            // data key or plaintext of wrap and encrypt
	sigs     [][]api.Signature // per key: a signature of the payload
	wrapped  []string          // per key: an envelope of the data
}

// keyRef is the key of one request item: its index in planOp.kids and the
// kid to send (kidSlot when building a template).
type keyRef struct {
	i   int
	kid string
}

// Prepare checks cfg and t, then creates cfg.Keys keys of each algorithm of
// the run through t's server (or groups cfg.KIDs by algorithm) and makes
// the fixtures of the operations that need them. It talks only to t's
// server.
func Prepare(ctx context.Context, t Target, cfg Config) (*Plan, error) {
	cfg, ops, err := cfg.normalize(false, 0)
	if err != nil {
		return nil, err
	}
	p := &Plan{cfg: cfg, hc: t.HTTPClient}
	if err := p.target(t); err != nil {
		return nil, err
	}
	if p.driver == DriverClient {
		if err := checkClientDriver(ops); err != nil {
			return nil, err
		}
	}
	if p.hc == nil {
		p.hc = NewHTTPClient(cfg.Concurrency)
	}
	c, err := client.New(t.Addr, t.Token, p.hc)
	if err != nil {
		return nil, err
	}
	var file map[string][]string
	if len(cfg.KIDs) > 0 {
		if file, err = groupKIDs(cfg.KIDs); err != nil {
			return nil, err
		}
	}
	created := map[string][]string{}
	keysOf := map[string]int{}
	for _, run := range ops {
		o := &planOp{opRun: run}
		a := run.cfg.Alg
		switch {
		case file != nil:
			pool := file[a]
			if len(pool) == 0 {
				return nil, fmt.Errorf("loadgen: %s needs %s keys; the kids file has %s", run.cfg.Op, a, describeKIDs(file))
			}
			o.kids, o.template = pool, run.spec.needs == needNothing
			if !o.template {
				o.kids = sample(pool, cfg.Keys)
			}
		case created[a] != nil:
			o.kids = created[a]
		default:
			for range cfg.Keys {
				k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: cfg.Tenant, Purpose: cfg.Purpose, Alg: a})
				if err != nil {
					return nil, fmt.Errorf("loadgen: creating a %s key: %w", a, err)
				}
				o.kids = append(o.kids, k.KID)
			}
			created[a] = o.kids
		}
		o.keys = len(o.kids)
		keysOf[a] = max(keysOf[a], o.keys)
		if err := o.makeFixtures(ctx, c); err != nil {
			return nil, err
		}
		p.ops = append(p.ops, o)
	}
	for _, n := range keysOf {
		p.keys += n
	}
	if p.driver == DriverLean {
		p.hc.CloseIdleConnections() // the run does not use them
	}
	return p, nil
}

// target checks the address and token and chooses the driver.
func (p *Plan) target(t Target) error {
	u, err := url.Parse(t.Addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("loadgen: %q is not an http(s) address", t.Addr)
	}
	token := strings.TrimSpace(t.Token)
	if strings.ContainsAny(token, "\r\n\x00") {
		return fmt.Errorf("loadgen: the token holds a line break")
	}
	p.base = strings.TrimRight(t.Addr, "/")
	p.head = wireHead{host: u.Host, prefix: strings.TrimRight(u.EscapedPath(), "/"), token: token}
	p.dial = u.Host
	if u.Port() == "" {
		p.dial = net.JoinHostPort(u.Hostname(), "80")
	}
	switch p.driver = p.cfg.Driver; p.driver {
	case "":
		p.driver = DriverLean
		if u.Scheme == "https" {
			p.driver = DriverNetHTTP
		}
	case DriverLean:
		if u.Scheme != "http" {
			return fmt.Errorf("loadgen: the %s driver speaks plain http://, not %s://", DriverLean, u.Scheme)
		}
	case DriverNetHTTP, DriverClient:
	case DriverHTTP2:
		if p.cfg.Conns == 0 {
			p.cfg.Conns = DefaultConns
		}
	default:
		return fmt.Errorf("loadgen: driver %q: want %s, %s, %s or %s", p.driver, DriverLean, DriverNetHTTP, DriverHTTP2, DriverClient)
	}
	if p.cfg.Conns < 0 || (p.cfg.Conns > 0 && p.driver != DriverHTTP2) {
		return fmt.Errorf("loadgen: connections are a setting of the %s driver", DriverHTTP2)
	}
	return nil
}

// makeFixtures draws the operation's payload and makes its per-key
// fixtures through c: one request per key.
func (o *planOp) makeFixtures(ctx context.Context, c *client.Client) error {
	digest := make([]byte, 32)
	rand.Read(digest)
	o.digest = hex.EncodeToString(digest)
	if o.spec.signature && o.cfg.PayloadBytes > 0 {
		o.message = make([]byte, o.cfg.PayloadBytes)
		rand.Read(o.message)
	}
	if !o.spec.signature {
		data := make([]byte, o.cfg.PayloadBytes)
		rand.Read(data)
		o.dataB64 = api.EncodeB64(data)
	}
	switch o.spec.needs {
	case needSigs:
		for _, kid := range o.kids {
			s, err := c.Sign(ctx, o.signRequest(keyRef{kid: kid}))
			if err != nil {
				return fmt.Errorf("loadgen: signing the verify fixture with %s: %w", kid, err)
			}
			o.sigs = append(o.sigs, s.Sigs)
		}
	case needEnvelopes:
		for _, kid := range o.kids {
			w, err := c.Wrap(ctx, o.wrapRequest(keyRef{kid: kid}))
			if err != nil {
				return fmt.Errorf("loadgen: wrapping the unwrap fixture with %s: %w", kid, err)
			}
			o.wrapped = append(o.wrapped, w.WrappedB64)
		}
	}
	return nil
}

// Config returns the plan's configuration with its defaults filled in.
func (p *Plan) Config() Config { return p.cfg }

// Run drives the server for the configured duration from the configured
// number of workers, each with a connection of its own (DriverLean) or
// sharing the plan's http.Client (DriverNetHTTP), and returns what it
// measured. Requests are built before the clock starts. progress may be
// nil. Run stops early when ctx is done.
func (p *Plan) Run(ctx context.Context, progress Progress) Result {
	calls := make([]call, len(p.ops))
	runs := make([]opRun, len(p.ops))
	var kc *client.Client
	if p.driver == DriverClient {
		// The address and token were checked by Prepare.
		kc, _ = client.New(p.base, p.head.token, p.hc)
	}
	for i, o := range p.ops {
		if kc != nil {
			calls[i] = o.clientCall(kc)
		} else {
			calls[i] = p.call(o)
		}
		runs[i] = o.opRun
	}
	tr := func() transport { return newWireConn(p.dial) }
	var h2 []*http.Client
	switch p.driver {
	case DriverNetHTTP:
		tr = func() transport { return &httpConn{hc: p.hc, base: p.base, token: p.head.token} }
	case DriverHTTP2:
		tr, h2 = p.h2Transports()
	case DriverClient:
		tr = nil
	}
	d := drive(ctx, workload(p.cfg, runs, calls, tr), progress)
	if p.driver != DriverLean {
		p.hc.CloseIdleConnections()
	}
	for _, hc := range h2 {
		hc.CloseIdleConnections()
	}
	return p.cfg.result("service", p.driver, runs, p.keys, d)
}

// call builds the requests of o and returns the call that sends one.
func (p *Plan) call(o *planOp) call {
	send := func(ctx context.Context, w *worker, req wireRequest) outcome {
		status, body, err := w.tr.roundTrip(ctx, req)
		if err != nil {
			return failed(err)
		}
		return o.spec.judge(status, body)
	}
	slots := o.cfg.Batch
	if o.template {
		refs := make([]keyRef, slots)
		for j := range refs {
			refs[j] = keyRef{kid: kidSlot}
		}
		t := newTemplate(&p.head, o.spec.path, marshal(o.spec.request(o, refs)), slots)
		return func(ctx context.Context, w *worker) outcome {
			w.picks = w.picks[:0]
			for j := range slots {
				w.picks = append(w.picks, w.slot(j, slots, len(o.kids)))
			}
			var req wireRequest
			req, w.buf = t.fill(w.buf, o.kids, w.picks)
			return send(ctx, w, req)
		}
	}
	// Prebuilt: one request per key, or for a batched operation at most
	// maxPrebuilt batches, batch b's item j using key (b·batch + j) mod
	// keys.
	k := len(o.kids)
	n := k
	if o.spec.batched {
		n = min(k, maxPrebuilt)
	}
	reqs := make([]wireRequest, n)
	refs := make([]keyRef, slots)
	for b := range reqs {
		for j := range refs {
			i := (b*slots + j) % k
			refs[j] = keyRef{i: i, kid: o.kids[i]}
		}
		reqs[b] = p.head.request(o.spec.path, marshal(o.spec.request(o, refs)))
	}
	return func(ctx context.Context, w *worker) outcome {
		return send(ctx, w, reqs[w.index(len(reqs))])
	}
}

// maxPrebuilt bounds the batches built ahead of a run.
const maxPrebuilt = 64

// marshal encodes a request DTO; the DTOs of this package always encode.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("loadgen: encoding a request: " + err.Error())
	}
	return b
}

// Request bodies, item by item.

func (o *planOp) signRequest(k keyRef) api.SignRequest {
	r := api.SignRequest{KID: k.kid}
	if o.message != nil {
		return r.WithMessage(o.message)
	}
	r.PayloadB3 = o.digest
	return r
}

func (o *planOp) verifyRequest(k keyRef) api.VerifyRequest {
	r := api.VerifyRequest{KID: k.kid, Sigs: o.sigs[k.i]}
	if o.message != nil {
		return r.WithMessage(o.message)
	}
	r.PayloadB3 = o.digest
	return r
}

func (o *planOp) wrapRequest(k keyRef) api.WrapRequest {
	return api.WrapRequest{KID: k.kid, PlaintextKeyB64: o.dataB64}
}

func (o *planOp) unwrapRequest(k keyRef) api.UnwrapRequest {
	return api.UnwrapRequest{WrappedB64: o.wrapped[k.i]}
}

func (o *planOp) encryptRequest(k keyRef) api.EncryptRequest {
	return api.EncryptRequest{KID: k.kid, PlaintextB64: o.dataB64}
}

// one makes a single-item request of an item builder.
func one[T any](item func(*planOp, keyRef) T) func(*planOp, []keyRef) any {
	return func(o *planOp, ks []keyRef) any { return item(o, ks[0]) }
}

func items[T any](o *planOp, ks []keyRef, item func(*planOp, keyRef) T) []T {
	out := make([]T, len(ks))
	for j, k := range ks {
		out[j] = item(o, k)
	}
	return out
}

func signBatch(o *planOp, ks []keyRef) any {
	return api.SignBatchRequest{Items: items(o, ks, (*planOp).signRequest)}
}

func verifyBatch(o *planOp, ks []keyRef) any {
	return api.VerifyBatchRequest{Items: items(o, ks, (*planOp).verifyRequest)}
}

// Judging answers. A 2xx answer is a success, as the client package has
// it; any other is counted by the code of its error envelope.

// judgeOne counts a single-item answer without decoding it.
func judgeOne(status int, body []byte) outcome {
	if status/100 != 2 {
		return errorOutcome(status, body)
	}
	return outcome{ok: true, items: 1}
}

// okTrue is how a verify answer that verified says so (the server encodes
// compactly; no other member can hold these bytes unescaped). An answer
// without them is decoded.
var okTrue = []byte(`"ok":true`)

func judgeVerify(status int, body []byte) outcome {
	if status/100 != 2 {
		return errorOutcome(status, body)
	}
	if bytes.Contains(body, okTrue) {
		return outcome{ok: true, items: 1}
	}
	var r api.VerifyResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return failed(err)
	}
	if !r.OK {
		return outcome{ok: true, codes: []string{codeVerifyFailed}}
	}
	return outcome{ok: true, items: 1}
}

func judgeSignBatch(status int, body []byte) outcome {
	if status/100 != 2 {
		return errorOutcome(status, body)
	}
	var r api.SignBatchResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return failed(err)
	}
	o := outcome{ok: true}
	for _, res := range r.Results {
		if res.Error != nil {
			o.codes = append(o.codes, string(res.Error.Code))
		} else {
			o.items++
		}
	}
	return o
}

func judgeVerifyBatch(status int, body []byte) outcome {
	if status/100 != 2 {
		return errorOutcome(status, body)
	}
	var r api.VerifyBatchResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return failed(err)
	}
	o := outcome{ok: true}
	for _, res := range r.Results {
		switch {
		case res.Error != nil:
			o.codes = append(o.codes, string(res.Error.Code))
		case !res.OK:
			o.codes = append(o.codes, codeVerifyFailed)
		default:
			o.items++
		}
	}
	return o
}

// errorOutcome counts a non-2xx answer by its envelope's code, or as
// Internal when it has none, as the client package does.
func errorOutcome(status int, body []byte) outcome {
	var e api.Error
	if json.Unmarshal(body, &e) != nil || e.Err.Code == "" {
		return outcome{codes: []string{string(api.CodeInternal)}}
	}
	return outcome{codes: []string{string(e.Err.Code)}}
}
