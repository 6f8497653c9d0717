package httpapi

import (
	"net/http"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/metrics"
)

// sign: POST /v1/kms/sign.
func (s *Server) sign(c *call) error {
	var req api.SignRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	item, alg, err := prepareSign(c.grant, &req, &c.fact)
	if err != nil {
		return err
	}
	s.stage(c, metrics.StageDecode)
	start := time.Now()
	res, err := s.ks.Sign(c.r.Context(), item.Ref, item.Message, item.Opts)
	s.stage(c, metrics.StageSign)
	if err != nil {
		return err
	}
	c.fact.kid = res.KID
	s.done("sign", alg, start)
	c.respond(http.StatusOK, signResponse(res))
	return nil
}

// prepareSign turns a sign request into a keystore item, checking the
// caller's capability before anything else is done with the key. It fills
// f with the key and the hash of the signing input as they become known.
func prepareSign(g *captoken.Grant, req *api.SignRequest, f *auditFact) (keystore.SignItem, string, error) {
	ref, err := api.ParseKeyRef(req.KID)
	if err != nil {
		return keystore.SignItem{}, "", err
	}
	f.setKey(ref.KeyName, req.KID)
	if err := authorizeKey(g, captoken.ScopeSign, ref.KeyName); err != nil {
		return keystore.SignItem{}, "", err
	}
	msg, err := signingInput(req.PayloadB3, req.MessageB64, req.MessageGiven())
	if err != nil {
		return keystore.SignItem{}, "", err
	}
	f.setInput(msg)
	sctx, err := signingContext(req.ContextB64)
	if err != nil {
		return keystore.SignItem{}, "", err
	}
	if err := keystore.CheckOpID(req.OpID); err != nil {
		return keystore.SignItem{}, "", err
	}
	item := keystore.SignItem{
		Ref:     keystore.Ref{Name: ref.KeyName.String(), Version: ref.Version},
		Message: msg,
		Opts:    keystore.Options{Context: sctx},
	}
	return item, ref.Alg, nil
}

// signingInput decodes exactly one of payload_b3 (a 32-byte BLAKE3 digest,
// signed as those bytes) and message_b64 (a raw message of at most 64 KiB,
// possibly empty: messageGiven says whether it was given).
func signingInput(payloadB3, messageB64 string, messageGiven bool) ([]byte, error) {
	switch {
	case payloadB3 != "" && messageGiven:
		return nil, errorf(api.CodeBadRequest, "give exactly one of payload_b3 and message_b64, not both")
	case payloadB3 != "":
		return api.DecodePayloadB3(payloadB3)
	case messageGiven:
		if len(messageB64) > (api.MaxMessage+2)/3*4 {
			return nil, errorf(api.CodeBadRequest, "message_b64 is longer than %d bytes; sign a payload_b3 digest instead", api.MaxMessage)
		}
		msg, err := api.DecodeB64("message_b64", messageB64)
		if err == nil && len(msg) > api.MaxMessage {
			// The length check above lets through up to two bytes more.
			return nil, errorf(api.CodeBadRequest, "message_b64 is longer than %d bytes; sign a payload_b3 digest instead", api.MaxMessage)
		}
		return msg, err
	}
	return nil, errorf(api.CodeBadRequest, "give exactly one of payload_b3 and message_b64")
}

// signingContext decodes the optional context_b64 (at most 255 bytes).
func signingContext(contextB64 string) ([]byte, error) {
	if contextB64 == "" {
		return nil, nil
	}
	b, err := api.DecodeB64("context_b64", contextB64)
	if err != nil {
		return nil, err
	}
	if len(b) > api.MaxContext {
		return nil, errorf(api.CodeBadRequest, "context_b64 is longer than %d bytes", api.MaxContext)
	}
	return b, nil
}

func signResponse(res keystore.Signature) api.SignResponse {
	out := api.SignResponse{KID: res.KID, Sigs: make([]api.Signature, len(res.Parts))}
	for i, p := range res.Parts {
		out.Sigs[i] = api.Signature{Alg: p.Alg, SignatureB64: api.EncodeB64(p.Sig)}
	}
	return out
}

// signBatch: POST /v1/kms/sign/batch. Every item runs; a bad item gets an
// error in its slot and never fails its neighbours.
func (s *Server) signBatch(c *call) error {
	var req api.SignBatchRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	if err := checkBatchSize(len(req.Items)); err != nil {
		return err
	}
	resp := api.SignBatchResponse{Results: make([]api.SignBatchResult, len(req.Items))}
	items := make([]keystore.SignItem, 0, len(req.Items))
	slots := make([]int, 0, len(req.Items))
	algs := make([]string, 0, len(req.Items))
	facts := make([]auditFact, len(req.Items))
	for i := range req.Items {
		item, alg, err := prepareSign(c.grant, &req.Items[i], &facts[i])
		if err != nil {
			resp.Results[i].Error = itemError(err)
			facts[i].itemOutcome(err, "")
			continue
		}
		items = append(items, item)
		slots = append(slots, i)
		algs = append(algs, alg)
	}
	s.stage(c, metrics.StageDecode)
	start := time.Now()
	results := s.ks.SignBatch(c.r.Context(), items)
	s.stage(c, metrics.StageSign)
	var ok tally
	for j, res := range results {
		slot := &resp.Results[slots[j]]
		facts[slots[j]].itemOutcome(res.Err, "")
		if res.Err != nil {
			s.fail("sign_batch", res.Err)
			slot.Error = itemError(res.Err)
			continue
		}
		r := signResponse(res.Signature)
		slot.KID, slot.Sigs = r.KID, r.Sigs
		facts[slots[j]].kid = r.KID
		ok.add(algs[j])
	}
	s.countOps("sign_batch", &ok)
	s.metrics.Latency.WithLabelValues("sign_batch", "batch").Observe(time.Since(start).Seconds())
	c.items = facts
	c.respond(http.StatusOK, resp)
	return nil
}

func checkBatchSize(n int) error {
	if n == 0 {
		return errorf(api.CodeBadRequest, "items is empty")
	}
	if n > api.MaxBatch {
		return errorf(api.CodeTooLarge, "a batch takes at most %d items, got %d", api.MaxBatch, n)
	}
	return nil
}

// done records one successful operation and its latency.
func (s *Server) done(op, alg string, start time.Time) {
	s.metrics.Ops.WithLabelValues(op, alg).Inc()
	s.metrics.Latency.WithLabelValues(op, alg).Observe(time.Since(start).Seconds())
}

// tally counts a batch's operations by algorithm, so that the batch costs
// one counter update per algorithm rather than one per item.
type tally struct {
	algs []string
	n    []int
}

func (t *tally) add(alg string) {
	for i, a := range t.algs {
		if a == alg {
			t.n[i]++
			return
		}
	}
	t.algs = append(t.algs, alg)
	t.n = append(t.n, 1)
}

// countOps adds t to kms_ops_total for op.
func (s *Server) countOps(op string, t *tally) {
	for i, alg := range t.algs {
		s.metrics.Ops.WithLabelValues(op, alg).Add(float64(t.n[i]))
	}
}

// fail records a failed operation by its contract code.
func (s *Server) fail(op string, err error) {
	code, _ := errorOf(err)
	s.metrics.Failures.WithLabelValues(op, string(code)).Inc()
}
