package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ron-kms/ron-kms/api"
)

// Automatic batching: concurrent Sign (or Verify) calls of one Client share
// batch requests. There is no timer. A call that finds fewer than the
// limit of requests in flight goes at once, alone, as the plain route: a
// lone caller pays nothing. Otherwise it queues, and whenever a request
// ends, the queue goes out as the next request (a batch, or the plain
// route for one item). The queue is only ever non-empty while every slot
// is taken, so nothing waits for a slot that is free.

// Bounds of one batch request. The server caps a body at 1 MiB by default
// and counts its JSON elements (api.MaxBodyElements); a batch stays well
// inside both, and an item too big to share a body goes alone.
const (
	maxBatchBytes = 512 << 10
	maxItemBytes  = 96 << 10
	// maxBatchCost bounds the commas of a batch body, a bound of its JSON
	// elements, to half of what the server takes.
	maxBatchCost = api.MaxBodyElements / 2
	maxItemCost  = maxBatchCost / 16
)

// batchKind is what differs between sign and verify.
type batchKind[Req, Res any] struct {
	path string
	one  func(c *Client, ctx context.Context, req Req) (*Res, error)
	// answers decodes the batch answer to reqs into one answer per item,
	// requestID naming the batch request.
	answers func(body []byte, reqs []Req, requestID string) ([]answer[Res], error)
}

// answer is the outcome of one item: a result, an error, or again: ask the
// plain route, the batch answer not being the one it would give.
type answer[Res any] struct {
	res   *Res
	err   error
	again bool
}

// batcher coalesces the calls of one kind of one Client. Safe for
// concurrent use.
type batcher[Req, Res any] struct {
	c    *Client
	kind batchKind[Req, Res]
	max  int // requests in flight at once

	mu       sync.Mutex
	queue    []*pending[Req, Res]
	inflight int
}

func newBatcher[Req, Res any](c *Client, max int, kind batchKind[Req, Res]) *batcher[Req, Res] {
	return &batcher[Req, Res]{c: c, kind: kind, max: max}
}

// pending is one queued call.
type pending[Req, Res any] struct {
	ctx  context.Context
	req  Req
	enc  []byte // req as JSON
	cost int
	done chan answer[Res] // buffered: the sender never blocks
	// sent is the flight that carries the item; nil while it is queued.
	// Guarded by batcher.mu.
	sent *flight
}

// flight is one request sent for queued callers. Its context ends once
// every caller has given up waiting.
type flight struct {
	left   atomic.Int32
	cancel context.CancelFunc
}

func (f *flight) leave() {
	if f.left.Add(-1) == 0 {
		f.cancel()
	}
}

// call is Sign or Verify with batching.
func (b *batcher[Req, Res]) call(ctx context.Context, req Req) (*Res, error) {
	if b.acquire() {
		defer b.release()
		return b.kind.one(b.c, ctx, req)
	}
	// Encoded only to queue: a lone call is encoded once, by the plain
	// route.
	enc, err := json.Marshal(req)
	cost := bytes.Count(enc, []byte(",")) + 2
	if err != nil || len(enc) > maxItemBytes || cost > maxItemCost {
		return b.kind.one(b.c, ctx, req)
	}
	b.mu.Lock()
	if b.inflight < b.max {
		// A slot came free meanwhile (so the queue is empty).
		b.inflight++
		b.mu.Unlock()
		defer b.release()
		return b.kind.one(b.c, ctx, req)
	}
	p := &pending[Req, Res]{ctx: ctx, req: req, enc: enc, cost: cost, done: make(chan answer[Res], 1)}
	b.queue = append(b.queue, p)
	b.mu.Unlock()
	select {
	case a := <-p.done:
		return a.res, a.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	f := p.sent
	if f == nil {
		for i, q := range b.queue {
			if q == p {
				b.queue = append(b.queue[:i], b.queue[i+1:]...)
				break
			}
		}
	}
	b.mu.Unlock()
	if f != nil {
		select {
		case a := <-p.done:
			// Answered meanwhile: the answer stands.
			return a.res, a.err
		default:
		}
		f.leave()
	}
	return new(Res), ctx.Err()
}

// acquire takes a free request slot, if any.
func (b *batcher[Req, Res]) acquire() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inflight < b.max {
		b.inflight++
		return true
	}
	return false
}

// release ends a request: the queue, if any, goes out as the next one in
// the same slot.
func (b *batcher[Req, Res]) release() {
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.inflight--
		b.mu.Unlock()
		return
	}
	items, f, ctx := b.take()
	b.mu.Unlock()
	go b.send(ctx, f, items)
}

// take removes the next batch from the queue (at least one item) and marks
// it sent. b.mu is held.
func (b *batcher[Req, Res]) take() ([]*pending[Req, Res], *flight, context.Context) {
	n, size, cost := 0, 0, 0
	for n < len(b.queue) && n < api.MaxBatch {
		p := b.queue[n]
		if n > 0 && (size+len(p.enc)+1 > maxBatchBytes || cost+p.cost > maxBatchCost) {
			break
		}
		size, cost = size+len(p.enc)+1, cost+p.cost
		n++
	}
	items := make([]*pending[Req, Res], n)
	copy(items, b.queue)
	b.queue = append(b.queue[:0], b.queue[n:]...)
	ctx, f := flightContext(items)
	for _, p := range items {
		p.sent = f
	}
	return items, f, ctx
}

// flightContext is the context of a request for items: not any caller's,
// since one caller giving up must not cancel the others', but ending when
// all have given up, and at the latest of their deadlines if all have one.
// A lone item keeps its caller's values.
func flightContext[Req, Res any](items []*pending[Req, Res]) (context.Context, *flight) {
	parent := context.Background()
	if len(items) == 1 {
		parent = context.WithoutCancel(items[0].ctx)
	}
	var last time.Time
	for _, p := range items {
		d, ok := p.ctx.Deadline()
		if !ok {
			last = time.Time{}
			break
		}
		if d.After(last) {
			last = d
		}
	}
	var ctx context.Context
	f := &flight{}
	if last.IsZero() {
		ctx, f.cancel = context.WithCancel(parent)
	} else {
		ctx, f.cancel = context.WithDeadline(parent, last)
	}
	f.left.Store(int32(len(items)))
	return ctx, f
}

// send makes the request of a flight and answers its callers.
func (b *batcher[Req, Res]) send(ctx context.Context, f *flight, items []*pending[Req, Res]) {
	defer func() {
		// The callers just answered often call again at once: let them
		// run and queue before the slot is given up, so that the next
		// batch carries them rather than the first of them going alone
		// and the rest queueing behind it. A yield, not a wait: with
		// nothing else to run it returns at once.
		runtime.Gosched()
		b.release()
	}()
	defer f.cancel()
	if len(items) == 1 {
		res, err := b.kind.one(b.c, ctx, items[0].req)
		items[0].done <- answer[Res]{res: res, err: err}
		return
	}
	answers, err := b.batch(ctx, items)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) && ce.Body.Code == api.CodeTooLarge {
			// The server takes smaller bodies than this client assumes:
			// each item goes alone, as it would without batching.
			answers = make([]answer[Res], len(items))
			for i := range answers {
				answers[i].again = true
			}
		} else {
			for _, p := range items {
				p.done <- answer[Res]{res: new(Res), err: err}
			}
			return
		}
	}
	var wg sync.WaitGroup
	for i, a := range answers {
		p := items[i]
		if !a.again {
			p.done <- a
			continue
		}
		wg.Go(func() {
			res, err := b.kind.one(b.c, ctx, p.req)
			p.done <- answer[Res]{res: res, err: err}
		})
	}
	wg.Wait()
}

// batch sends items as one batch request.
func (b *batcher[Req, Res]) batch(ctx context.Context, items []*pending[Req, Res]) ([]answer[Res], error) {
	size := len(`{"items":[]}`)
	for _, p := range items {
		size += len(p.enc) + 1
	}
	body := make([]byte, 0, size)
	body = append(body, `{"items":[`...)
	for i, p := range items {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, p.enc...)
	}
	body = append(body, "]}"...)
	var raw json.RawMessage
	id, err := b.c.doBytes(ctx, "POST", b.kind.path, body, &raw)
	if err != nil {
		return nil, err
	}
	reqs := make([]Req, len(items))
	for i, p := range items {
		reqs[i] = p.req
	}
	return b.kind.answers(raw, reqs, id)
}

// itemError is the error a plain request would have answered for a batch
// item that failed with e.
func itemError(e *api.ItemError, requestID string) error {
	return &Error{Status: e.Code.Status(), Body: api.ErrorBody{
		Code: e.Code, Message: e.Message, Retryable: e.Code.Retryable(),
		TS: time.Now().UTC().Format(time.RFC3339), RequestID: requestID,
	}}
}

var errResultCount = errors.New("client: the batch answer does not hold one result per item")

var signKind = batchKind[api.SignRequest, api.SignResponse]{
	path: "/v1/kms/sign/batch",
	one:  (*Client).signOne,
	answers: func(body []byte, reqs []api.SignRequest, id string) ([]answer[api.SignResponse], error) {
		n := len(reqs)
		var out api.SignBatchResponse
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("client: decoding response: %w", err)
		}
		if len(out.Results) != n {
			return nil, errResultCount
		}
		as := make([]answer[api.SignResponse], n)
		for i, r := range out.Results {
			if r.Error != nil {
				as[i] = answer[api.SignResponse]{res: new(api.SignResponse), err: itemError(r.Error, id)}
				continue
			}
			as[i].res = &api.SignResponse{KID: r.KID, Sigs: r.Sigs}
		}
		return as, nil
	},
}

// verifyBatchable reports whether a batch answer determines the whole
// /verify answer to req: one signature, of the algorithm the kid names, so
// that a valid one was checked with exactly that algorithm and no mode was
// satisfied (a composite key's parts are named by their components). A
// kid that does not parse is left to the plain route.
func verifyBatchable(req api.VerifyRequest) bool {
	ref, err := api.ParseKeyRef(req.KID)
	return err == nil && len(req.Sigs) == 1 && req.Sigs[0].Alg == ref.Alg
}

var verifyKind = batchKind[api.VerifyRequest, api.VerifyResponse]{
	path: "/v1/kms/verify/batch",
	one:  (*Client).verifyOne,
	answers: func(body []byte, reqs []api.VerifyRequest, id string) ([]answer[api.VerifyResponse], error) {
		n := len(reqs)
		var out api.VerifyBatchResponse
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, fmt.Errorf("client: decoding response: %w", err)
		}
		if len(out.Results) != n {
			return nil, errResultCount
		}
		as := make([]answer[api.VerifyResponse], n)
		for i, r := range out.Results {
			switch {
			case r.Error != nil:
				as[i] = answer[api.VerifyResponse]{res: new(api.VerifyResponse), err: itemError(r.Error, id)}
			case !r.OK || out.CacheAgeMS != nil:
				// Why it failed (a wrong signature or an unusable
				// version) and the age of each item's cache entry are
				// in a /verify answer only.
				as[i].again = true
			default:
				// What /verify answers for a valid signature of a
				// single-algorithm key.
				as[i].res = &api.VerifyResponse{OK: true, Details: api.VerifyDetails{Checked: []string{reqs[i].Sigs[0].Alg}}}
			}
		}
		return as, nil
	},
}
