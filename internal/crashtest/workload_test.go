package crashtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"time"

	"lukechampine.com/blake3"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// Algorithms the workload uses: one signature key kind, one wrap key kind.
const (
	signAlg = "ed25519"
	wrapAlg = "mlkem768-x25519"
	tenant  = "crash"
)

// The acknowledged results. An operation is acknowledged when the client
// received a 2xx answer and decoded it; only those are promised durable
// (SPEC §6, §9), so only those are checked.

type createAck struct {
	name, kid, alg, purpose, opID string
	reqID                         string
}

type rotateAck struct {
	name, kid, previous, opID string
	version                   uint32
	reqID                     string
}

type signAck struct {
	kid    string // with the version that signed
	digest []byte // the 32 bytes signed (payload_b3)
	sigs   []api.Signature
	reqID  string
}

type wrapAck struct {
	kid       string
	envelope  string // wrapped_b64
	plaintext string // plaintext_key_b64
	reqID     string
}

// batch is what one server run acknowledged.
type batch struct {
	creates []createAck
	rotates []rotateAck
	signs   []signAck
	wraps   []wrapAck
}

func (b *batch) add(o *batch) {
	b.creates = append(b.creates, o.creates...)
	b.rotates = append(b.rotates, o.rotates...)
	b.signs = append(b.signs, o.signs...)
	b.wraps = append(b.wraps, o.wraps...)
}

// auditWant is an acknowledged operation whose audit record must be in the
// log: ops lists the record's acceptable op names; for a sign, kid and
// inputB3 must match as well.
type auditWant struct {
	reqID   string
	ops     []string
	kid     string // "" when not checked
	inputB3 string // hex; "" when not checked
}

// ledger is shared by the workers of one run and by the checks. Safe for
// concurrent use.
type ledger struct {
	mu         sync.Mutex
	cur        batch       // acknowledged during the current run
	all        batch       // acknowledged in every finished run
	signKeys   []string    // key names of acknowledged signature keys
	wrapKeys   []string    // key names of acknowledged wrap keys
	audits     []auditWant // acknowledged since the last audit scan
	allAudits  []auditWant
	unacked    int            // requests without a 2xx answer (transport errors: the kill)
	refused    map[string]int // contract errors the workload tolerates, by code
	unexpected []string       // contract errors that should not happen
}

func newLedger() *ledger { return &ledger{refused: map[string]int{}} }

func (l *ledger) expectAudit(w auditWant) {
	l.mu.Lock()
	l.audits = append(l.audits, w)
	l.mu.Unlock()
}

// finishRun moves the current run's acknowledgements into all and returns
// them.
func (l *ledger) finishRun() batch {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.cur
	l.all.add(&b)
	l.cur = batch{}
	return b
}

// takeAudits returns the audit expectations gathered since the last call.
func (l *ledger) takeAudits() []auditWant {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.audits
	l.allAudits = append(l.allAudits, a...)
	l.audits = nil
	return a
}

// failed records a request that got no 2xx answer. A contract error (the
// server answered) is only acceptable for a lost rotate race or
// backpressure; anything else — NotFound for an acknowledged key,
// StoreUnavailable, Internal — is a bug and is reported. A transport error
// is the kill (or the cancellation that follows it) and is just counted.
func (l *ledger) failed(what string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ce *client.Error
	switch {
	case errors.Is(err, errBadAnswer):
		if len(l.unexpected) < 20 {
			l.unexpected = append(l.unexpected, fmt.Sprintf("%s: %v", what, err))
		}
	case !errors.As(err, &ce):
		l.unacked++
	case errors.Is(err, client.ErrBackpressure),
		what == "rotate" && errors.Is(err, client.ErrConflict):
		l.refused[string(ce.Body.Code)]++
	default:
		if len(l.unexpected) < 20 {
			l.unexpected = append(l.unexpected, fmt.Sprintf("%s: %v", what, err))
		}
	}
}

// errBadAnswer marks a 2xx answer that does not fit the contract.
var errBadAnswer = errors.New("crashtest: malformed answer")

// reqIDKey is the context key under which a request's *string receives the
// X-Request-Id of its answer.
type reqIDKey struct{}

// idTransport copies each answer's X-Request-Id to the *string in the
// request's context, so the audit record can be found by it.
type idTransport struct{ base http.RoundTripper }

func (t idTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil {
		if p, ok := r.Context().Value(reqIDKey{}).(*string); ok {
			*p = resp.Header.Get("X-Request-Id")
		}
	}
	return resp, err
}

// withReqID returns a context that captures the answer's request id in *id.
func withReqID(ctx context.Context, id *string) context.Context {
	return context.WithValue(ctx, reqIDKey{}, id)
}

// newClient returns a client of the server at addr, with its own
// connections (so none outlives the server) and a request-id capturing
// transport. Without batching: the checks pair each call with the one
// request, and so the one audit record, it made.
func newClient(addr, token string) (*client.Client, *http.Transport, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	c, err := client.New(addr, token, &http.Client{Transport: idTransport{tr}, Timeout: 30 * time.Second}, client.WithoutBatching())
	return c, tr, err
}

// b3hex is the hex BLAKE3-256 of b: what the audit log calls input_b3.
func b3hex(b []byte) string {
	h := blake3.Sum256(b)
	return hex.EncodeToString(h[:])
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// worker runs a random mix of create, rotate, sign and wrap until ctx ends.
func (l *ledger) worker(ctx context.Context, c *client.Client, id int) {
	purpose := fmt.Sprintf("w%d", id)
	for n := 0; ctx.Err() == nil; n++ {
		var err error
		var what string
		switch r := mrand.IntN(100); {
		case r < 5:
			what, err = "create", l.create(ctx, c, purpose, signAlg)
		case r < 10:
			what, err = "create", l.create(ctx, c, purpose, wrapAlg)
		case r < 20:
			what, err = "rotate", l.rotate(ctx, c, purpose)
		case r < 70:
			what, err = "sign", l.sign(ctx, c, purpose)
		default:
			what, err = "wrap", l.wrap(ctx, c, purpose)
		}
		if err != nil {
			l.failed(what, err)
		}
	}
}

// pick returns a random acknowledged key name of the list, or "".
func (l *ledger) pick(list *[]string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(*list) == 0 {
		return ""
	}
	return (*list)[mrand.IntN(len(*list))]
}

func (l *ledger) create(ctx context.Context, c *client.Client, purpose, alg string) error {
	var id string
	opID := "create-" + randomHex(12)
	res, err := c.CreateKey(withReqID(ctx, &id), api.CreateKeyRequest{Tenant: tenant, Purpose: purpose, Alg: alg, OpID: opID})
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur.creates = append(l.cur.creates, createAck{name: res.Key.Name, kid: res.KID, alg: alg, purpose: purpose, opID: opID, reqID: id})
	if alg == signAlg {
		l.signKeys = append(l.signKeys, res.Key.Name)
	} else {
		l.wrapKeys = append(l.wrapKeys, res.Key.Name)
	}
	l.audits = append(l.audits, auditWant{reqID: id, ops: []string{"create"}, kid: res.KID})
	return nil
}

func (l *ledger) rotate(ctx context.Context, c *client.Client, purpose string) error {
	list := &l.signKeys
	if mrand.IntN(2) == 0 {
		list = &l.wrapKeys
	}
	name := l.pick(list)
	if name == "" {
		return l.create(ctx, c, purpose, signAlg)
	}
	var id string
	opID := "rotate-" + randomHex(12)
	res, err := c.RotateKey(withReqID(ctx, &id), name, opID)
	if err != nil {
		return err
	}
	k, err := api.ParseKID(res.KID)
	if err != nil {
		return fmt.Errorf("%w: rotate answered kid %q: %v", errBadAnswer, res.KID, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur.rotates = append(l.cur.rotates, rotateAck{name: name, kid: res.KID, previous: res.Previous, opID: opID, version: k.Version, reqID: id})
	l.audits = append(l.audits, auditWant{reqID: id, ops: []string{"rotate"}, kid: res.KID})
	return nil
}

func (l *ledger) sign(ctx context.Context, c *client.Client, purpose string) error {
	name := l.pick(&l.signKeys)
	if name == "" {
		return l.create(ctx, c, purpose, signAlg)
	}
	// payload_b3 is the BLAKE3 digest of the caller's payload; the bytes
	// signed are the digest's 32 bytes.
	payload := make([]byte, 64)
	rand.Read(payload)
	digest := blake3.Sum256(payload)
	var id string
	res, err := c.Sign(withReqID(ctx, &id), api.SignRequest{KID: name, PayloadB3: hex.EncodeToString(digest[:])})
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur.signs = append(l.cur.signs, signAck{kid: res.KID, digest: digest[:], sigs: res.Sigs, reqID: id})
	l.audits = append(l.audits, auditWant{reqID: id, ops: []string{"sign"}, kid: res.KID, inputB3: b3hex(digest[:])})
	return nil
}

func (l *ledger) wrap(ctx context.Context, c *client.Client, purpose string) error {
	name := l.pick(&l.wrapKeys)
	if name == "" {
		return l.create(ctx, c, purpose, wrapAlg)
	}
	var id string
	res, err := c.Wrap(withReqID(ctx, &id), api.WrapRequest{KID: name, Size: 32})
	if err != nil {
		return err
	}
	dk, err := api.DecodeB64("plaintext_key_b64", res.PlaintextKeyB64)
	if err != nil || len(dk) != 32 {
		return fmt.Errorf("%w: wrap with size 32 answered no 32-byte plaintext_key_b64", errBadAnswer)
	}
	env, err := api.DecodeB64("wrapped_b64", res.WrappedB64)
	if err != nil {
		return fmt.Errorf("%w: wrap answered a wrapped_b64 that is not base64", errBadAnswer)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cur.wraps = append(l.cur.wraps, wrapAck{kid: res.KID, envelope: res.WrappedB64, plaintext: res.PlaintextKeyB64, reqID: id})
	// The record hashes the envelope, never the data key (SPEC §9).
	l.audits = append(l.audits, auditWant{reqID: id, ops: []string{"wrap", "datakey"}, kid: res.KID, inputB3: b3hex(env)})
	return nil
}
