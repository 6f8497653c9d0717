package httpapi

import (
	"net/http"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
)

// importWrappingKey: GET /v1/kms/import/wrapping-key. The key is the
// server's, not a tenant's: any token with kms:create may fetch it.
func (s *Server) importWrappingKey(c *call) error {
	if len(c.r.URL.Query()) > 0 {
		return errorf(api.CodeBadRequest, "this route takes no query parameters")
	}
	pub, err := s.ks.ImportWrappingKey(c.r.Context())
	if err != nil {
		return err
	}
	c.respond(http.StatusOK, api.WrappingKeyResponse{Alg: pub.Alg().Name, PublicKeyB64: api.EncodeB64(pub.Bytes())})
	return nil
}

// importKey: POST /v1/kms/keys/import. Answers like create: 201 {kid, key}.
func (s *Server) importKey(c *call) error {
	var req api.ImportKeyRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	if err := api.CheckLabel("tenant", req.Tenant); err != nil {
		return errorf(api.CodeBadRequest, "%v", err)
	}
	if err := api.CheckLabel("purpose", req.Purpose); err != nil {
		return errorf(api.CodeBadRequest, "%v", err)
	}
	if !api.KnownAlg(req.Alg) {
		return errorf(api.CodeBadRequest, "unknown algorithm %q", truncate(req.Alg))
	}
	c.fact.tenant, c.fact.alg = req.Tenant, req.Alg
	if err := keystore.CheckOpID(req.OpID); err != nil {
		return err
	}
	if (req.PublicKeyB64 == "") == (req.WrappedPrivateB64 == "") {
		return errorf(api.CodeBadRequest, "give exactly one of public_key_b64 (a verify-only key) and wrapped_private_b64 (a sealed private key)")
	}
	p := keystore.ImportParams{Tenant: req.Tenant, Purpose: req.Purpose, Alg: req.Alg, OpID: req.OpID}
	var err error
	if req.PublicKeyB64 != "" {
		p.PublicKey, err = api.DecodeB64("public_key_b64", req.PublicKeyB64)
	} else {
		p.Wrapped, err = api.DecodeB64("wrapped_private_b64", req.WrappedPrivateB64)
	}
	if err != nil {
		return err
	}
	// As for create, the uuid is not known yet: a key-prefix caveat must
	// allow the whole tenant/purpose/alg/ prefix.
	err = c.grant.Authorize(captoken.Request{
		Scope: captoken.ScopeCreate, Tenant: req.Tenant, Alg: req.Alg,
		KeyName: req.Tenant + "/" + req.Purpose + "/" + req.Alg + "/",
	})
	if err != nil {
		return err
	}
	k, err := s.ks.Import(c.r.Context(), p)
	if err != nil {
		return err
	}
	s.metrics.Ops.WithLabelValues("import", k.Alg).Inc()
	c.fact.kid = k.KID(1)
	c.respond(http.StatusCreated, api.CreateKeyResponse{KID: k.KID(1), Key: keyInfo(k)})
	return nil
}
