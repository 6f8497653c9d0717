package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/metrics"
)

// verify: POST /v1/kms/verify. A wrong signature is 200 {ok:false}.
func (s *Server) verify(c *call) error {
	var req api.VerifyRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	item, alg, err := s.prepareVerify(c.grant, &req, &c.fact)
	if err != nil {
		return err
	}
	s.stage(c, metrics.StageDecode)
	start := time.Now()
	res, err := s.ks.Verify(c.r.Context(), item.Ref, item.Message, item.Parts, item.Opts)
	s.stage(c, metrics.StageVerify)
	ok := err == nil
	// details.checked is a JSON array on every answer, [] when no component
	// was checked (pq_only with only a classical part), never null.
	checked := res.Checked
	if checked == nil {
		checked = []string{}
	}
	details := api.VerifyDetails{Checked: checked, SatisfiedMode: res.SatisfiedMode}
	// A version that is disabled, destroyed or below min_verify_version
	// verifies nothing: ok false, with the reason, not an error.
	var unusable *keystore.VersionUnusableError
	switch {
	case errors.As(err, &unusable):
		details = api.VerifyDetails{Checked: []string{}, Reason: unusable.Reason()}
	case err != nil && !errors.Is(err, keystore.ErrInvalidSignature):
		return err
	}
	s.done("verify", alg, start)
	if !ok {
		c.fact.result = resultInvalid
	}
	c.respond(http.StatusOK, api.VerifyResponse{OK: ok, Details: details, CacheAgeMS: cacheAge(c, res.Staleness)})
	return nil
}

// prepareVerify turns a verify request into a keystore item after the
// capability check, filling f as prepareSign does.
func (s *Server) prepareVerify(g *captoken.Grant, req *api.VerifyRequest, f *auditFact) (keystore.VerifyItem, string, error) {
	ref, err := api.ParseKeyRef(req.KID)
	if err != nil {
		return keystore.VerifyItem{}, "", err
	}
	f.setKey(ref.KeyName, req.KID)
	if err := authorizeKey(g, captoken.ScopeVerify, ref.KeyName); err != nil {
		return keystore.VerifyItem{}, "", err
	}
	msg, err := signingInput(req.PayloadB3, req.MessageB64, req.MessageGiven())
	if err != nil {
		return keystore.VerifyItem{}, "", err
	}
	f.setInput(msg)
	sctx, err := signingContext(req.ContextB64)
	if err != nil {
		return keystore.VerifyItem{}, "", err
	}
	if len(req.Sigs) == 0 || len(req.Sigs) > 4 {
		return keystore.VerifyItem{}, "", errorf(api.CodeBadRequest, "sigs must hold 1 to 4 signatures")
	}
	parts := make([]keystore.Part, len(req.Sigs))
	for i, sg := range req.Sigs {
		if !api.KnownAlg(sg.Alg) {
			return keystore.VerifyItem{}, "", errorf(api.CodeBadRequest, "sigs[%d]: unknown algorithm %q", i, truncate(sg.Alg))
		}
		b, err := api.DecodeB64("signature_b64", sg.SignatureB64)
		if err != nil {
			return keystore.VerifyItem{}, "", err
		}
		parts[i] = keystore.Part{Alg: sg.Alg, Sig: b}
	}
	mode, err := s.verifyMode(req.Policy)
	if err != nil {
		return keystore.VerifyItem{}, "", err
	}
	item := keystore.VerifyItem{
		Ref:     keystore.Ref{Name: ref.KeyName.String(), Version: ref.Version},
		Message: msg, Parts: parts, Opts: keystore.Options{Context: sctx, Mode: mode},
	}
	return item, ref.Alg, nil
}

// verifyBatch: POST /v1/kms/verify/batch. Ed25519 items are checked with one
// batch equation; items that cannot be checked get an error in their slot.
func (s *Server) verifyBatch(c *call) error {
	var req api.VerifyBatchRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	if err := checkBatchSize(len(req.Items)); err != nil {
		return err
	}
	resp := api.VerifyBatchResponse{AllOK: true, Results: make([]api.VerifyBatchResult, len(req.Items))}
	items := make([]keystore.VerifyItem, 0, len(req.Items))
	slots := make([]int, 0, len(req.Items))
	algs := make([]string, 0, len(req.Items))
	facts := make([]auditFact, len(req.Items))
	for i := range req.Items {
		item, alg, err := s.prepareVerify(c.grant, &req.Items[i], &facts[i])
		if err != nil {
			resp.Results[i].Error = itemError(err)
			facts[i].itemOutcome(err, "")
			resp.AllOK = false
			continue
		}
		items = append(items, item)
		slots = append(slots, i)
		algs = append(algs, alg)
	}
	s.stage(c, metrics.StageDecode)
	start := time.Now()
	errs, stale := s.ks.VerifyBatch(c.r.Context(), items)
	s.stage(c, metrics.StageVerify)
	resp.CacheAgeMS = cacheAge(c, stale)
	var counted tally
	for j, err := range errs {
		slot := &resp.Results[slots[j]]
		f := &facts[slots[j]]
		switch {
		case err == nil:
			slot.OK = true
			f.itemOutcome(nil, "")
			counted.add(algs[j])
		case errors.Is(err, keystore.ErrInvalidSignature), errors.Is(err, keystore.ErrVersionUnusable):
			resp.AllOK = false
			f.itemOutcome(nil, resultInvalid)
			counted.add(algs[j])
		default:
			resp.AllOK = false
			f.itemOutcome(err, "")
			s.fail("verify_batch", err)
			slot.Error = itemError(err)
		}
	}
	s.countOps("verify_batch", &counted)
	s.metrics.Latency.WithLabelValues("verify_batch", "batch").Observe(time.Since(start).Seconds())
	c.items = facts
	c.respond(http.StatusOK, resp)
	return nil
}

// cacheAge marks an answer served from the cache while the store was
// unavailable (SPEC §10): it sets the X-KMS-Cache-Age header and returns the
// body's cache_age_ms, both in milliseconds; for a current answer it does
// nothing and returns nil.
func cacheAge(c *call, st keystore.Staleness) *int64 {
	if !st.Stale {
		return nil
	}
	ms := st.Age.Milliseconds()
	c.w.Header().Set(api.CacheAgeHeader, strconv.FormatInt(ms, 10))
	return &ms
}

// verifyMode applies the server's floor (SPEC §3.1): a request may ask for a
// mode at least as strict (pq_only > and > or), never a looser one; without a
// policy the mode is the default, and, or the floor where that is stricter.
func (s *Server) verifyMode(p *api.VerifyPolicy) (keystore.Mode, error) {
	if p == nil {
		return max(keystore.ModeAnd, s.floor), nil
	}
	m, err := keystore.ParseMode(p.Mode)
	if err != nil {
		return 0, errorf(api.CodeBadRequest, "policy.mode must be and, or or pq_only")
	}
	if m < s.floor {
		return 0, errorf(api.CodeUnsupported, "policy.mode %s is looser than this server's floor %s", m, s.floor)
	}
	return m, nil
}
