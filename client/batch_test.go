package client

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
)

// fixture is a server with keys of several kinds and states.
type fixture struct {
	s    testServer
	off  *Client // batching off
	ed   string  // ed25519 key, rotated: v1 disabled, v2 current
	edV1 string  // the kid of its disabled version
	ml   string  // ml-dsa-65
	comp string  // mldsa65-ed25519
	kem  string  // mlkem768-x25519: not a signing key
	gone string  // a well-formed kid of no key
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := startServer(t)
	off, err := New(s.url, s.token, nil, WithoutBatching())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f := &fixture{s: s, off: off}
	create := func(purpose, alg string) *api.CreateKeyResponse {
		k, err := off.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: purpose, Alg: alg})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ed := create("pay", "ed25519")
	if _, err := off.RotateKey(ctx, ed.Key.Name, ""); err != nil {
		t.Fatal(err)
	}
	f.ed, f.edV1 = ed.Key.Name, ed.KID
	f.ml = create("pay", "ml-dsa-65").KID
	f.comp = create("pay", "mldsa65-ed25519").KID
	f.kem = create("wrap", "mlkem768-x25519").KID
	// Another uuid, one hex digit changed.
	last := f.ml[len(f.ml)-4]
	swap := byte('0')
	if last == '0' {
		swap = '1'
	}
	f.gone = f.ml[:len(f.ml)-4] + string(swap) + f.ml[len(f.ml)-3:]
	return f
}

// disableV1 disables the first version of the ed25519 key (after the
// fixtures that need it signed have been made).
func (f *fixture) disableV1(t *testing.T) {
	if _, err := f.off.DisableVersion(context.Background(), f.ed, 1); err != nil {
		t.Fatal(err)
	}
}

// sameError reports how two errors of the same call differ, "" if they do
// not for a caller: same contract code, status, message and retryability,
// or the same text for an error that is not a contract one.
func sameError(a, b error) string {
	if a == nil || b == nil {
		if a != b {
			return fmt.Sprintf("error %v, want %v", a, b)
		}
		return ""
	}
	var ea, eb *Error
	if errors.As(a, &ea) != errors.As(b, &eb) {
		return fmt.Sprintf("error %v, want %v", a, b)
	}
	if ea == nil {
		if a.Error() != b.Error() {
			return fmt.Sprintf("error %v, want %v", a, b)
		}
		return ""
	}
	if ea.Status != eb.Status || ea.Body.Code != eb.Body.Code || ea.Body.Message != eb.Body.Message ||
		ea.Body.Retryable != eb.Body.Retryable || !errors.Is(a, errors.Unwrap(eb)) {
		return fmt.Sprintf("error %d %+v, want %d %+v", ea.Status, ea.Body, eb.Status, eb.Body)
	}
	return ""
}

// signCases are sign requests of every outcome; disableV1 must have run.
func (f *fixture) signCases() []api.SignRequest {
	digest := strings.Repeat("ab", 32)
	return []api.SignRequest{
		{KID: f.ed, PayloadB3: digest},
		api.SignRequest{KID: f.ed}.WithMessage([]byte("a message")),
		api.SignRequest{KID: f.ed}.WithMessage(nil),
		{KID: f.ml, PayloadB3: digest},
		{KID: f.comp, PayloadB3: digest, ContextB64: api.EncodeB64([]byte("ctx"))},
		{KID: f.edV1, PayloadB3: digest},                           // not current
		{KID: f.gone, PayloadB3: digest},                           // no such key
		{KID: f.kem, PayloadB3: digest},                            // not a signing key
		{KID: "not a kid", PayloadB3: digest},                      // bad kid
		{KID: f.ed, PayloadB3: "abc"},                              // bad digest
		{KID: f.ed, PayloadB3: digest, MessageB64: "bWVzc2FnZQ=="}, // both inputs
		{KID: f.ed}, // neither
		api.SignRequest{KID: f.ed}.WithMessage(make([]byte, api.MaxMessage+1)), // oversize
		{KID: f.ed, PayloadB3: digest, ContextB64: api.EncodeB64(make([]byte, 300))},
		{KID: f.ed, PayloadB3: digest, OpID: "has a space"},
		{KID: f.ml, PayloadB3: digest},
	}
}

// verifyCases are verify requests of every outcome, with signatures made
// through c.
func (f *fixture) verifyCases(t *testing.T) []api.VerifyRequest {
	ctx := context.Background()
	digest := strings.Repeat("cd", 32)
	sign := func(kid string) []api.Signature {
		r, err := f.off.Sign(ctx, api.SignRequest{KID: kid, PayloadB3: digest})
		if err != nil {
			t.Fatal(err)
		}
		return r.Sigs
	}
	edSigs := sign(f.ed)
	v1Sigs := sign(f.edV1[:strings.IndexByte(f.edV1, '#')]) // the current version then
	mlSigs := sign(f.ml)
	compSigs := sign(f.comp)
	bad := func(sigs []api.Signature) []api.Signature {
		out := make([]api.Signature, len(sigs))
		for i, s := range sigs {
			b, _ := api.DecodeB64("", s.SignatureB64)
			b[0] ^= 1
			out[i] = api.Signature{Alg: s.Alg, SignatureB64: api.EncodeB64(b)}
		}
		return out
	}
	v := func(kid string, sigs []api.Signature) api.VerifyRequest {
		return api.VerifyRequest{KID: kid, PayloadB3: digest, Sigs: sigs}
	}
	_ = v1Sigs
	return []api.VerifyRequest{
		v(f.ed, edSigs),
		v(f.ed, bad(edSigs)),
		v(f.ml, mlSigs),
		v(f.ml, bad(mlSigs)),
		v(f.comp, compSigs),      // composite: goes alone
		v(f.comp, bad(compSigs)), // composite: goes alone
		v(f.edV1, v1Sigs),        // disabled version: ok false, reason
		v(f.gone, edSigs),        // no such key
		v(f.kem, []api.Signature{{Alg: "mlkem768-x25519", SignatureB64: edSigs[0].SignatureB64}}),
		v(f.comp, []api.Signature{{Alg: "mldsa65-ed25519", SignatureB64: edSigs[0].SignatureB64}}),
		v(f.ed, mlSigs), // another algorithm's signature: alone
		v(f.ed, []api.Signature{{Alg: "ed25519", SignatureB64: "AAAA"}}), // short
		v(f.ed, []api.Signature{{Alg: "ed25519", SignatureB64: "not base64"}}),
		{KID: f.ed, PayloadB3: "xyz", Sigs: edSigs},
		api.VerifyRequest{KID: f.ed, Sigs: edSigs}.WithMessage(make([]byte, api.MaxMessage+1)),
		{KID: f.ed, PayloadB3: digest, Sigs: edSigs, Policy: &api.VerifyPolicy{Mode: "or"}},
		{KID: f.ed, PayloadB3: digest, Sigs: edSigs, Policy: &api.VerifyPolicy{Mode: "pq_only"}},
		{KID: f.ed, PayloadB3: digest, Sigs: edSigs, Policy: &api.VerifyPolicy{Mode: "bogus"}},
		v(f.ed, edSigs),
	}
}

// heldClient is a batching client whose requests wait at a gate, with one
// request slot, so that calls made while the first waits all queue.
func heldClient(t *testing.T, s testServer) (*Client, *gate) {
	g := newGate(true)
	c, err := New(s.url, s.token, &http.Client{Transport: g}, WithBatchRequests(1))
	if err != nil {
		t.Fatal(err)
	}
	return c, g
}

// inOneBatch runs calls 1..n-1 of call while call 0 holds the only request
// slot, so that they all queue, then lets every request go. want is how
// many of them queue (the others go alone).
func inOneBatch[Req, Res any](t *testing.T, g *gate, b *batcher[Req, Res], want int, n int, call func(i int)) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() { call(0) })
	<-g.arrived // call 0 holds the slot
	for i := 1; i < n; i++ {
		wg.Go(func() { call(i) })
	}
	for queued(b) < want {
		time.Sleep(time.Millisecond)
	}
	close(g.release)
	wg.Wait()
}

// TestBatchingIsInvisible: the same sign and verify calls, good and bad,
// answer the same with batching on (every batchable call in one batch)
// and off, item by item.
func TestBatchingIsInvisible(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	verifies := f.verifyCases(t)
	f.disableV1(t)
	signs := f.signCases()

	t.Run("sign", func(t *testing.T) {
		on, g := heldClient(t, f.s)
		got := make([]*api.SignResponse, len(signs))
		gotErr := make([]error, len(signs))
		// Call 0 is an extra sign that holds the slot.
		inOneBatch(t, g, on.sign, len(signs), len(signs)+1, func(i int) {
			if i == 0 {
				on.Sign(ctx, signs[0])
				return
			}
			got[i-1], gotErr[i-1] = on.Sign(ctx, signs[i-1])
		})
		if batches := g.count("/v1/kms/sign/batch "); batches != 1 {
			t.Fatalf("%d batch requests, want 1: %q", batches, g.sent())
		}
		for i, req := range signs {
			want, wantErr := f.off.Sign(ctx, req)
			if d := sameError(gotErr[i], wantErr); d != "" {
				t.Errorf("sign %d (%s): %s", i, req.KID, d)
				continue
			}
			if wantErr != nil {
				continue
			}
			if got[i].KID != want.KID || len(got[i].Sigs) != len(want.Sigs) {
				t.Errorf("sign %d: %+v, want %+v", i, got[i], want)
				continue
			}
			for j := range want.Sigs {
				if got[i].Sigs[j].Alg != want.Sigs[j].Alg {
					t.Errorf("sign %d: %+v, want %+v", i, got[i], want)
				}
			}
			// Ed25519 is deterministic; ML-DSA is hedged, so check that
			// the signature verifies instead.
			if !reflect.DeepEqual(got[i], want) {
				v := api.VerifyRequest{KID: got[i].KID, PayloadB3: req.PayloadB3, MessageB64: req.MessageB64,
					ContextB64: req.ContextB64, Sigs: got[i].Sigs}
				if req.MessageGiven() {
					v = v.WithMessage(mustB64(t, req.MessageB64))
				}
				if strings.Contains(req.KID, "ed25519") && !strings.Contains(req.KID, "mldsa") {
					t.Errorf("sign %d: ed25519 signature %+v, want %+v", i, got[i], want)
				} else if r, err := f.off.Verify(ctx, v); err != nil || !r.OK {
					t.Errorf("sign %d: batch signature does not verify: %v %v", i, r, err)
				}
			}
		}
	})

	t.Run("verify", func(t *testing.T) {
		on, g := heldClient(t, f.s)
		want := 0
		for _, v := range verifies {
			if verifyBatchable(v) {
				want++
			}
		}
		got := make([]*api.VerifyResponse, len(verifies))
		gotErr := make([]error, len(verifies))
		inOneBatch(t, g, on.verify, want, len(verifies)+1, func(i int) {
			if i == 0 {
				on.Verify(ctx, verifies[0])
				return
			}
			got[i-1], gotErr[i-1] = on.Verify(ctx, verifies[i-1])
		})
		if batches := g.count("/v1/kms/verify/batch "); batches != 1 {
			t.Fatalf("%d batch requests, want 1", batches)
		}
		for i, req := range verifies {
			w, wantErr := f.off.Verify(ctx, req)
			if d := sameError(gotErr[i], wantErr); d != "" {
				t.Errorf("verify %d (%s): %s", i, req.KID, d)
				continue
			}
			if wantErr == nil && !reflect.DeepEqual(got[i], w) {
				t.Errorf("verify %d (%s): %+v, want %+v", i, req.KID, got[i], w)
			}
		}
	})
}

func mustB64(t *testing.T, s string) []byte {
	b, err := api.DecodeB64("message_b64", s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBatchingCoalesces: 64 goroutines signing and verifying at once make
// fewer requests than calls, and every call gets its own right answer.
func TestBatchingCoalesces(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	on, err := New(f.s.url, f.s.token, nil)
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 64, 8
	before := requestsServed(t, f.s, "/v1/kms/sign", "/v1/kms/sign/batch", "/v1/kms/verify", "/v1/kms/verify/batch")
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				// Each call signs its own message, so a mixed-up answer
				// would not verify.
				msg := []byte(fmt.Sprintf("goroutine %d call %d", g, i))
				s, err := on.Sign(ctx, api.SignRequest{KID: f.ed}.WithMessage(msg))
				if err != nil {
					errs <- err
					return
				}
				v, err := on.Verify(ctx, api.VerifyRequest{KID: s.KID, Sigs: s.Sigs}.WithMessage(msg))
				if err != nil || !v.OK {
					errs <- fmt.Errorf("own signature: %+v %v", v, err)
					return
				}
				other := []byte("another message")
				v, err = on.Verify(ctx, api.VerifyRequest{KID: s.KID, Sigs: s.Sigs}.WithMessage(other))
				if err != nil || v.OK {
					errs <- fmt.Errorf("signature on another message: %+v %v", v, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	calls := goroutines * each * 3
	served := requestsServed(t, f.s, "/v1/kms/sign", "/v1/kms/sign/batch", "/v1/kms/verify", "/v1/kms/verify/batch") - before
	t.Logf("%d calls, %d requests", calls, served)
	if served <= 0 || served >= calls {
		t.Fatalf("the server saw %d requests for %d calls", served, calls)
	}
}

// TestBatchingCancel: a call whose context ends while queued is withdrawn
// (never sent); one that ends after its batch went returns at once, and
// the batch still answers the others.
func TestBatchingCancel(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	digest := strings.Repeat("ef", 32)
	sign := func(c *Client, ctx context.Context, msg string) (*api.SignResponse, error) {
		return c.Sign(ctx, api.SignRequest{KID: f.ed}.WithMessage([]byte(msg)))
	}

	t.Run("queued", func(t *testing.T) {
		on, g := heldClient(t, f.s)
		var wg sync.WaitGroup
		wg.Go(func() { on.Sign(ctx, api.SignRequest{KID: f.ed, PayloadB3: digest}) })
		<-g.arrived
		cctx, cancel := context.WithCancel(ctx)
		withdrawn := make(chan error, 1)
		go func() {
			_, err := sign(on, cctx, "withdrawn")
			withdrawn <- err
		}()
		var kept error
		wg.Go(func() { _, kept = sign(on, ctx, "kept") })
		for queued(on.sign) < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-withdrawn; !errors.Is(err, context.Canceled) {
			t.Fatalf("withdrawn call: %v", err)
		}
		if n := queued(on.sign); n != 1 {
			t.Fatalf("%d calls queued after the withdrawal, want 1", n)
		}
		close(g.release)
		wg.Wait()
		if kept != nil {
			t.Fatal(kept)
		}
		for _, s := range g.sent() {
			if strings.Contains(s, api.EncodeB64([]byte("withdrawn"))) {
				t.Fatalf("the withdrawn item was sent: %s", s)
			}
		}
		if s := g.sent(); len(s) != 2 || !strings.HasPrefix(s[1], "/v1/kms/sign {") {
			t.Fatalf("requests %q, want two plain signs", s)
		}
	})

	t.Run("sent", func(t *testing.T) {
		on, g := heldClient(t, f.s)
		var wg sync.WaitGroup
		wg.Go(func() { on.Sign(ctx, api.SignRequest{KID: f.ed, PayloadB3: digest}) })
		<-g.arrived
		cctx, cancel := context.WithCancel(ctx)
		gaveUp := make(chan error, 1)
		go func() {
			_, err := sign(on, cctx, "gives up")
			gaveUp <- err
		}()
		var kept *api.SignResponse
		var keptErr error
		wg.Go(func() { kept, keptErr = sign(on, ctx, "kept") })
		for queued(on.sign) < 2 {
			time.Sleep(time.Millisecond)
		}
		g.release <- struct{}{} // the first request goes; the batch of two follows
		if p := <-g.arrived; p != "/v1/kms/sign/batch" {
			t.Fatalf("next request %s, want the batch", p)
		}
		cancel() // the batch waits at the gate
		if err := <-gaveUp; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled call: %v", err)
		}
		close(g.release)
		wg.Wait()
		if keptErr != nil {
			t.Fatal(keptErr)
		}
		v, err := f.off.Verify(ctx, api.VerifyRequest{KID: kept.KID, Sigs: kept.Sigs}.WithMessage([]byte("kept")))
		if err != nil || !v.OK {
			t.Fatalf("the kept call's signature: %+v %v", v, err)
		}
	})
}

// TestLoneCallIsPlain: a call alone goes at once as the plain route.
func TestLoneCallIsPlain(t *testing.T) {
	f := newFixture(t)
	g := newGate(false)
	on, err := New(f.s.url, f.s.token, &http.Client{Transport: g})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := on.Sign(context.Background(), api.SignRequest{KID: f.ed, PayloadB3: strings.Repeat("01", 32)}); err != nil {
		t.Fatal(err)
	}
	if s := g.sent(); len(s) != 1 || !strings.HasPrefix(s[0], "/v1/kms/sign {") {
		t.Fatalf("requests %q, want one plain sign", s)
	}
}

// TestWithHTTP2: WithHTTP2 speaks h2c to a plain server, with or without
// an http.Client of the caller's; without it the client speaks HTTP/1.1.
func TestWithHTTP2(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		hc   *http.Client
		opts []Option
		want int
	}{
		{nil, nil, 1},
		{nil, []Option{WithHTTP2()}, 2},
		{&http.Client{}, []Option{WithHTTP2()}, 2},
		{&http.Client{Transport: &http.Transport{}}, []Option{WithHTTP2()}, 2},
	} {
		c, err := New(s.url, s.token, tc.hc, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.hc.Get(s.url + "/version")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != tc.want {
			t.Errorf("%d options: %s, want HTTP/%d", len(tc.opts), resp.Proto, tc.want)
		}
		if _, err := c.Version(context.Background()); err != nil {
			t.Error(err)
		}
	}
	if _, err := New(s.url, s.token, &http.Client{Transport: newGate(false)}, WithHTTP2()); err == nil {
		t.Error("WithHTTP2 took a RoundTripper it cannot configure")
	}
}

// TestSignerBatched: a crypto.Signer used from many goroutines at once
// gives each its own signature, valid under the key's public key.
func TestSignerBatched(t *testing.T) {
	f := newFixture(t)
	on, g := heldClient(t, f.s)
	s, err := NewSigner(context.Background(), f.off, f.ed)
	if err != nil {
		t.Fatal(err)
	}
	s.c = on // made through a client whose requests are not held
	const n = 16
	sigs := make([][]byte, n)
	errs := make([]error, n)
	inOneBatch(t, g, on.sign, n-1, n, func(i int) {
		sigs[i], errs[i] = s.Sign(nil, fmt.Appendf(nil, "message %d", i), crypto.Hash(0))
	})
	for i := range n {
		if errs[i] != nil || !ed25519.Verify(s.Public().(ed25519.PublicKey), fmt.Appendf(nil, "message %d", i), sigs[i]) {
			t.Fatalf("signature %d: %v", i, errs[i])
		}
	}
}
