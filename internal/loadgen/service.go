package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// Plan is a prepared service run: keys created, fixtures (signatures to
// verify, envelopes to unwrap) made, requests ready to build. A Plan is used
// by one Run at a time.
type Plan struct {
	cfg  Config
	spec *opSpec
	c    *client.Client
	// KIDs are the keys requests are spread over, round robin; fixture i
	// belongs to KIDs[i]. Prepare fills them in; a caller may replace one
	// (with a key id of the same algorithm) before Run, for instance to
	// provoke NotFound answers.
	KIDs []string
	fx   fixtures
}

// fixtures are the per-key inputs some operations need, made by Prepare.
type fixtures struct {
	digest  string            // payload_b3 of sign and verify
	message []byte            // message_b64 when PayloadBytes > 0
	data    []byte            // data key or plaintext of wrap and encrypt
	sigs    [][]api.Signature // per key: a signature of the payload
	wrapped []string          // per key: an envelope of data
}

// Prepare checks cfg, creates cfg.Keys keys of cfg.Alg through c and makes
// the fixtures of cfg.Op. It talks only to c's server.
func Prepare(ctx context.Context, c *client.Client, cfg Config) (*Plan, error) {
	cfg, spec, err := cfg.normalize(false, 0)
	if err != nil {
		return nil, err
	}
	p := &Plan{cfg: cfg, spec: spec, c: c}
	digest := make([]byte, 32)
	rand.Read(digest)
	p.fx.digest = hex.EncodeToString(digest)
	if spec.signature && cfg.PayloadBytes > 0 {
		p.fx.message = make([]byte, cfg.PayloadBytes)
		rand.Read(p.fx.message)
	}
	if !spec.signature {
		p.fx.data = make([]byte, cfg.PayloadBytes)
		rand.Read(p.fx.data)
	}
	for range cfg.Keys {
		k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: cfg.Tenant, Purpose: cfg.Purpose, Alg: cfg.Alg})
		if err != nil {
			return nil, fmt.Errorf("loadgen: creating a %s key: %w", cfg.Alg, err)
		}
		p.KIDs = append(p.KIDs, k.KID)
	}
	if spec.needs == needSigs {
		for _, kid := range p.KIDs {
			s, err := c.Sign(ctx, p.signRequest(kid))
			if err != nil {
				return nil, fmt.Errorf("loadgen: signing the verify fixture: %w", err)
			}
			p.fx.sigs = append(p.fx.sigs, s.Sigs)
		}
	}
	if spec.needs == needEnvelopes {
		for _, kid := range p.KIDs {
			w, err := c.Wrap(ctx, api.WrapRequest{KID: kid, PlaintextKeyB64: api.EncodeB64(p.fx.data)})
			if err != nil {
				return nil, fmt.Errorf("loadgen: wrapping the unwrap fixture: %w", err)
			}
			p.fx.wrapped = append(p.fx.wrapped, w.WrappedB64)
		}
	}
	return p, nil
}

// Config returns the plan's configuration with its defaults filled in.
func (p *Plan) Config() Config { return p.cfg }

// Run drives the server for the configured duration from the configured
// number of workers sharing the plan's client, and returns what it measured.
// progress may be nil. Run stops early when ctx is done.
func (p *Plan) Run(ctx context.Context, progress Progress) Result {
	r := p.cfg.result("service")
	drive(ctx, p.cfg.Concurrency, p.cfg.Duration, p.spec.service(p), progress, &r)
	return r
}

func (p *Plan) signRequest(kid string) api.SignRequest {
	r := api.SignRequest{KID: kid}
	if p.fx.message != nil {
		return r.WithMessage(p.fx.message)
	}
	r.PayloadB3 = p.fx.digest
	return r
}

func (p *Plan) verifyRequest(i int) api.VerifyRequest {
	r := api.VerifyRequest{KID: p.KIDs[i], Sigs: p.fx.sigs[i]}
	if p.fx.message != nil {
		return r.WithMessage(p.fx.message)
	}
	r.PayloadB3 = p.fx.digest
	return r
}

// maxPrebuilt bounds the batches built ahead of a run; batch b, item j uses
// key (b·batch + j) mod keys.
const maxPrebuilt = 64

// batches builds the request bodies of a batched operation from one item
// per key index.
func batches[T any](p *Plan, item func(i int) T) [][]T {
	k := len(p.KIDs)
	out := make([][]T, min(k, maxPrebuilt))
	for b := range out {
		out[b] = make([]T, p.cfg.Batch)
		for j := range out[b] {
			out[b][j] = item((b*p.cfg.Batch + j) % k)
		}
	}
	return out
}

// perKey builds one request per key index.
func perKey[T any](p *Plan, item func(i int) T) []T {
	out := make([]T, len(p.KIDs))
	for i := range out {
		out[i] = item(i)
	}
	return out
}

func serviceSign(p *Plan) call {
	reqs := perKey(p, func(i int) api.SignRequest { return p.signRequest(p.KIDs[i]) })
	return func(ctx context.Context, w, n int) outcome {
		if _, err := p.c.Sign(ctx, reqs[(w+n)%len(reqs)]); err != nil {
			return failed(err)
		}
		return outcome{ok: true, items: 1}
	}
}

func serviceVerify(p *Plan) call {
	reqs := perKey(p, p.verifyRequest)
	return func(ctx context.Context, w, n int) outcome {
		r, err := p.c.Verify(ctx, reqs[(w+n)%len(reqs)])
		if err != nil {
			return failed(err)
		}
		if !r.OK {
			return outcome{ok: true, codes: []string{codeVerifyFailed}}
		}
		return outcome{ok: true, items: 1}
	}
}

func serviceSignBatch(p *Plan) call {
	bs := batches(p, func(i int) api.SignRequest { return p.signRequest(p.KIDs[i]) })
	return func(ctx context.Context, w, n int) outcome {
		r, err := p.c.SignBatch(ctx, bs[(w+n)%len(bs)])
		if err != nil {
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
}

func serviceVerifyBatch(p *Plan) call {
	bs := batches(p, p.verifyRequest)
	return func(ctx context.Context, w, n int) outcome {
		r, err := p.c.VerifyBatch(ctx, bs[(w+n)%len(bs)])
		if err != nil {
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
}

func serviceWrap(p *Plan) call {
	data := api.EncodeB64(p.fx.data)
	reqs := perKey(p, func(i int) api.WrapRequest { return api.WrapRequest{KID: p.KIDs[i], PlaintextKeyB64: data} })
	return func(ctx context.Context, w, n int) outcome {
		if _, err := p.c.Wrap(ctx, reqs[(w+n)%len(reqs)]); err != nil {
			return failed(err)
		}
		return outcome{ok: true, items: 1}
	}
}

func serviceUnwrap(p *Plan) call {
	reqs := perKey(p, func(i int) api.UnwrapRequest { return api.UnwrapRequest{WrappedB64: p.fx.wrapped[i]} })
	return func(ctx context.Context, w, n int) outcome {
		if _, err := p.c.Unwrap(ctx, reqs[(w+n)%len(reqs)]); err != nil {
			return failed(err)
		}
		return outcome{ok: true, items: 1}
	}
}

func serviceEncrypt(p *Plan) call {
	data := api.EncodeB64(p.fx.data)
	reqs := perKey(p, func(i int) api.EncryptRequest { return api.EncryptRequest{KID: p.KIDs[i], PlaintextB64: data} })
	return func(ctx context.Context, w, n int) outcome {
		if _, err := p.c.Encrypt(ctx, reqs[(w+n)%len(reqs)]); err != nil {
			return failed(err)
		}
		return outcome{ok: true, items: 1}
	}
}
