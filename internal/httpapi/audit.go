package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/zeebo/blake3"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/audit"
	"github.com/ron-kms/ron-kms/internal/metrics"
)

// Auditor receives the audit records of the API (SPEC §9). *audit.Log
// implements it. AppendAll returns once every record is durable, or an
// error: then the operation is answered 503 StoreUnavailable, never with its
// success response. It must be safe for concurrent use.
type Auditor interface {
	AppendAll(ctx context.Context, rs []audit.Record) error
}

// auditFact is what an operation's record says about it besides op, actor
// and request id. result and code are set only for batch items; a single
// operation's outcome comes from its handler's error.
type auditFact struct {
	tenant, kid, alg string
	input            [audit.HashSize]byte // BLAKE3-256 of the operation's input, when hasInput
	hasInput         bool
	result, code     string
	detail           string // audit.Record.Detail: context, never a secret
}

// setKey names the key an operation works on; kid may carry a version.
func (f *auditFact) setKey(n api.KeyName, kid string) {
	f.tenant, f.kid, f.alg = n.Tenant, kid, n.Alg
}

// setInput records the BLAKE3-256 of in, never in itself.
func (f *auditFact) setInput(in []byte) {
	f.input, f.hasInput = blake3.Sum256(in), true
}

// inputB3 is the record's input_b3: a slice of f, or nil when f has none.
func (f *auditFact) inputB3() []byte {
	if !f.hasInput {
		return nil
	}
	return f.input[:]
}

// Results the API writes besides audit.ResultOK/Denied/Error.
const resultInvalid = "invalid" // verify answered ok:false

// respond buffers the success response: handle sends it only once the
// operation's audit records are durable.
func (c *call) respond(status int, v any) {
	c.status, c.resp = status, v
}

// auditNow appends the operation's record (result ok) at once, for a route
// that streams its response (backup): it must be called before the first
// byte. handle then appends nothing more.
func (s *Server) auditNow(c *call) error {
	c.audited = true
	return s.appendRecords(c, nil)
}

// appendRecords appends c's record for the outcome err: one record, with
// the items of a batch that ran (batchRecord). Any failure is a 503 StoreUnavailable. The
// denial of a request without a valid token (c.grant nil) may instead be
// counted in memory, and then nothing is written now (denials.go).
func (s *Server) appendRecords(c *call, err error) error {
	if s.opts.Audit == nil {
		return nil
	}
	base := audit.Record{Op: c.op, RequestID: requestID(c.r.Context())}
	if c.grant != nil {
		base.Actor = c.grant.ID()
	}
	var rs []audit.Record
	if err == nil && c.items != nil {
		rs = []audit.Record{batchRecord(base, c.items)}
	} else {
		f := c.fact
		f.result, f.code = outcome(err, f.result)
		rs = []audit.Record{factRecord(base, &f)}
		if c.grant == nil && err != nil && s.denials.collapse(requestSource(c.r), &rs[0]) {
			// A denial without a valid token, counted: written with the
			// others of its source when the window ends (denials.go).
			return nil
		}
	}
	if aerr := s.opts.Audit.AppendAll(c.r.Context(), rs); aerr != nil {
		s.metrics.Failures.WithLabelValues(c.op, string(api.CodeStoreUnavailable)).Inc()
		return errorf(api.CodeStoreUnavailable, "the audit record could not be written, so the operation is not answered: %v", aerr)
	}
	return nil
}

func factRecord(base audit.Record, f *auditFact) audit.Record {
	r := base
	r.Tenant, r.Kid, r.Alg, r.InputB3 = f.tenant, f.kid, f.alg, f.inputB3()
	r.Result, r.Code, r.Detail = f.result, f.code, f.detail
	if r.Result == "" {
		r.Result = audit.ResultOK
	}
	return r
}

// batchRecord is the one record of a batch request that ran (SPEC §9, see
// internal/audit's package documentation): every item in request order,
// with its kid, input hash, result and code; count is the number of items;
// the result is ok only if every item is ok, partial otherwise; tenant and
// alg are the items' when they all share one. Its items point into facts,
// which must not change until the record is written.
func batchRecord(base audit.Record, facts []auditFact) audit.Record {
	r := base
	r.Result = audit.ResultOK
	r.Count = uint64(len(facts))
	r.Items = make([]audit.Item, len(facts))
	for i := range facts {
		f := &facts[i]
		res := f.result
		if res == "" {
			res = audit.ResultOK
		}
		r.Items[i] = audit.Item{Kid: f.kid, InputB3: f.inputB3(), Result: res, Code: f.code}
		if res != audit.ResultOK {
			r.Result = audit.ResultPartial
		}
		if i == 0 {
			r.Tenant, r.Alg = f.tenant, f.alg
			continue
		}
		if f.tenant != r.Tenant {
			r.Tenant = ""
		}
		if f.alg != r.Alg {
			r.Alg = ""
		}
	}
	return r
}

// outcome is the result and code of an operation that ended with err (nil:
// success, with result ok unless the handler said otherwise).
func outcome(err error, result string) (string, string) {
	if err == nil {
		if result == "" {
			result = audit.ResultOK
		}
		return result, ""
	}
	code, _ := errorOf(err)
	if code == api.CodeUnauthenticated || code == api.CodeNoCapability {
		return audit.ResultDenied, string(code)
	}
	return audit.ResultError, string(code)
}

// itemOutcome sets a batch item's result and code from its error.
func (f *auditFact) itemOutcome(err error, result string) {
	f.result, f.code = outcome(err, result)
}

// finish ends an API call: it appends the audit record(s), then sends the
// buffered response, or the error envelope. A record that cannot be written
// turns any answer into 503 StoreUnavailable (SPEC §9: nothing is dropped).
func (s *Server) finish(c *call, err error) {
	if !c.audited {
		s.restartStage(c)
		if aerr := s.appendRecords(c, err); aerr != nil {
			err = aerr
		}
		s.stage(c, metrics.StageAudit)
	}
	switch {
	case err != nil:
		s.writeError(c.w, c.r, err)
	case c.resp != nil:
		writeJSON(c.w, c.status, c.resp)
		s.stage(c, metrics.StageWrite)
	case !c.audited:
		// A handler that neither answered nor streamed: a bug.
		s.writeError(c.w, c.r, errors.New("httpapi: handler wrote no response"))
	}
}

// refusedOnRollback lists the operations a server refuses while its store
// is rolled back (Options.RefuseWrites): everything that writes the store
// (encrypt reserves counts) or uses a private key whose state (disabled,
// destroyed, rotated away) the old store may have forgotten. Reads, verify,
// token minting and backup still work; revoking a token is a write, refused.
var refusedOnRollback = map[string]bool{
	"create": true, "import": true, "rotate": true, "configure": true,
	"disable": true, "enable": true, "destroy": true, "cancel_destroy": true,
	"sign": true, "sign_batch": true, "wrap": true, "unwrap": true,
	"encrypt": true, "decrypt": true, "token_revoke": true,
}

// pathKeyFact names the key of a /keys/{key}/... route before the handler
// runs, so that a request refused early is recorded with its key.
func pathKeyFact(r *http.Request, f *auditFact) {
	if r.PathValue("uuid") == "" {
		return
	}
	if n, err := keyName(r); err == nil {
		f.setKey(n, n.String())
	}
}
