package httpapi

import (
	"net/http"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

// maxTokenTTL bounds the lifetime of a minted token.
const maxTokenTTL = 366 * 24 * time.Hour

// mintToken: POST /v1/kms/tokens (kms:admin). Minting needs a token with no
// restriction at all besides expiry, so that minting never widens what the
// caller holds; narrower tokens are made offline with Attenuate.
func (s *Server) mintToken(c *call) error {
	var req api.MintTokenRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	c.fact.tenant = req.Tenant
	if !c.grant.Unrestricted() {
		return errorf(api.CodeNoCapability, "minting needs an unrestricted admin token; attenuate your token instead (ron-kms token attenuate)")
	}
	r := captoken.Restrictions{Tenant: req.Tenant, KeyPrefix: req.KeyPrefix, Algs: req.Algs}
	for _, sc := range req.Scopes {
		r.Scopes = append(r.Scopes, captoken.Scope(sc))
	}
	if req.TTL != "" {
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 || ttl > maxTokenTTL {
			return errorf(api.CodeBadRequest, "ttl must be a positive Go duration up to %s, such as 24h", maxTokenTTL)
		}
		r.Expires = s.opts.Now().Add(ttl).UTC().Truncate(time.Second)
	}
	if _, err := r.Caveats(); err != nil {
		return errorf(api.CodeBadRequest, "%v", err)
	}
	tok, id, err := s.auth.Mint(r)
	if err != nil {
		return err
	}
	s.metrics.Ops.WithLabelValues("token_mint", "").Inc()
	c.respond(http.StatusCreated, api.MintTokenResponse{Token: tok, ID: id})
	return nil
}
