package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

// maxTokenTTL bounds the lifetime of a minted token.
const maxTokenTTL = 366 * 24 * time.Hour

// mintToken: POST /v1/kms/tokens (kms:admin). Minting needs a token with no
// restriction at all besides expiry, so that minting never widens what the
// caller holds; narrower tokens are made offline with Attenuate. For the
// same reason the new token never outlives the caller's: without a ttl it
// inherits the caller's expiry, and a ttl that would end later is 403. The
// audit record's detail names the new token's id and caveats, never the
// token.
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
	now := s.opts.Now()
	limit, bounded := c.grant.Expires()
	switch {
	case req.TTL != "":
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 || ttl > maxTokenTTL {
			return errorf(api.CodeBadRequest, "ttl must be a positive Go duration up to %s, such as 24h", maxTokenTTL)
		}
		r.Expires = now.Add(ttl).UTC().Truncate(time.Second)
		if bounded && r.Expires.After(limit) {
			return errorf(api.CodeNoCapability,
				"a token minted with ttl %s would outlive the calling token, which expires at %s: ask for a ttl of at most %s, or omit ttl to inherit that expiry",
				ttl, limit.UTC().Format(time.RFC3339), limit.Sub(now).Truncate(time.Second))
		}
	case bounded:
		// Written in whole seconds, rounded down: never after limit.
		r.Expires = limit
	}
	cavs, err := r.Caveats()
	if err != nil {
		return errorf(api.CodeBadRequest, "%v", err)
	}
	tok, id, err := s.auth.Mint(r)
	if err != nil {
		return err
	}
	c.fact.detail = mintDetail(id, cavs)
	s.metrics.Ops.WithLabelValues("token_mint", "").Inc()
	c.respond(http.StatusCreated, api.MintTokenResponse{Token: tok, ID: id})
	return nil
}

// mintDetail is the audit detail of a mint: "id=<id> caveats=<c1>; <c2>",
// or "caveats=none". Caveats are not secret; the token is never in it.
func mintDetail(id string, cavs []string) string {
	list := "none"
	if len(cavs) > 0 {
		list = strings.Join(cavs, "; ")
	}
	return "id=" + id + " caveats=" + list
}

// revokeToken: POST /v1/kms/tokens/revoke (kms:admin, unrestricted like
// minting: a revocation reaches tokens of every tenant, the admin token
// included). The token with the given id and every attenuation of it are
// refused from then on, on every node (the keystore stores the revocation
// and follows the store). Tokens are not recorded when minted, so an id
// that names no token is revoked all the same: the answer is 200 either
// way, and revoking twice is 200 too.
func (s *Server) revokeToken(c *call) error {
	var req api.RevokeTokenRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	if !c.grant.Unrestricted() {
		return errorf(api.CodeNoCapability, "revoking a token needs an unrestricted admin token (no caveat but expires): a revocation reaches tokens of every tenant")
	}
	if !captoken.ValidID(req.ID) {
		return errorf(api.CodeBadRequest, "id must be a token id, %d lower-case hex digits as `ron-kms token inspect` shows", 2*captoken.IDSize)
	}
	already, err := s.ks.RevokeToken(c.r.Context(), req.ID)
	if err != nil {
		return err
	}
	c.fact.detail = "id=" + req.ID
	if already {
		c.fact.detail += " (already revoked)"
	}
	s.metrics.Ops.WithLabelValues("token_revoke", "").Inc()
	c.respond(http.StatusOK, api.RevokeTokenResponse{ID: req.ID, Revoked: true})
	return nil
}
