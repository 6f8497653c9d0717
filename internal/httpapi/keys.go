package httpapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
)

// createKey: POST /v1/kms/keys.
func (s *Server) createKey(c *call) error {
	var req api.CreateKeyRequest
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
	// The uuid is not known yet: a key-prefix caveat must allow the whole
	// tenant/purpose/alg/ prefix.
	err := c.grant.Authorize(captoken.Request{
		Scope: captoken.ScopeCreate, Tenant: req.Tenant, Alg: req.Alg,
		KeyName: req.Tenant + "/" + req.Purpose + "/" + req.Alg + "/",
	})
	if err != nil {
		return err
	}
	k, err := s.ks.Create(c.r.Context(), keystore.CreateParams{
		Tenant: req.Tenant, Purpose: req.Purpose, Alg: req.Alg, Labels: req.Labels, OpID: req.OpID,
	})
	if err != nil {
		return err
	}
	s.metrics.Ops.WithLabelValues("create", k.Alg).Inc()
	c.fact.kid = k.KID(1)
	c.respond(http.StatusCreated, api.CreateKeyResponse{KID: k.KID(1), Key: keyInfo(k)})
	return nil
}

// keyName reads the four {key} path segments.
func keyName(r *http.Request) (api.KeyName, error) {
	s := r.PathValue("tenant") + "/" + r.PathValue("purpose") + "/" + r.PathValue("alg") + "/" + r.PathValue("uuid")
	return api.ParseKeyName(s)
}

// authorizeKey checks the grant for an operation on a named key.
func authorizeKey(g *captoken.Grant, scope captoken.Scope, n api.KeyName) error {
	return g.Authorize(captoken.Request{Scope: scope, Tenant: n.Tenant, KeyName: n.String(), Alg: n.Alg})
}

// getKey: GET /v1/kms/keys/{key}.
func (s *Server) getKey(c *call) error {
	n, err := keyName(c.r)
	if err != nil {
		return err
	}
	if err := authorizeKey(c.grant, captoken.ScopeRead, n); err != nil {
		return err
	}
	k, stale, err := s.ks.GetCached(c.r.Context(), n.String())
	if err != nil {
		return err
	}
	info := keyInfo(k)
	info.CacheAgeMS = cacheAge(c, stale)
	c.respond(http.StatusOK, info)
	return nil
}

// rotateKey: POST /v1/kms/keys/{key}/rotate.
func (s *Server) rotateKey(c *call) error {
	n, err := keyName(c.r)
	if err != nil {
		return err
	}
	if err := authorizeKey(c.grant, captoken.ScopeRotate, n); err != nil {
		return err
	}
	var req api.RotateRequest
	if err := decode(c.r, &req, true); err != nil {
		return err
	}
	if err := keystore.CheckOpID(req.OpID); err != nil {
		return err
	}
	res, err := s.ks.Rotate(c.r.Context(), n.String(), req.OpID)
	if err != nil {
		return err
	}
	s.metrics.Ops.WithLabelValues("rotate", n.Alg).Inc()
	c.fact.kid = res.KID
	c.respond(http.StatusOK, api.RotateResponse{KID: res.KID, Previous: res.Previous})
	return nil
}

// listKeys: GET /v1/kms/keys?tenant=&purpose=&limit=&page_token=.
func (s *Server) listKeys(c *call) error {
	q := c.r.URL.Query()
	for name := range q {
		switch name {
		case "tenant", "purpose", "limit", "page_token":
		default:
			return errorf(api.CodeBadRequest, "unknown query parameter %q", truncate(name))
		}
	}
	tenant, purpose := q.Get("tenant"), q.Get("purpose")
	c.fact.tenant = tenant
	if t, limited := c.grant.TenantLimit(); limited {
		if tenant == "" {
			tenant = t
			c.fact.tenant = t
		} else if tenant != t {
			return errorf(api.CodeNoCapability, "this token is limited to tenant %q", t)
		}
	}
	prefix := ""
	if tenant != "" {
		if err := api.CheckLabel("tenant", tenant); err != nil {
			return errorf(api.CodeBadRequest, "%v", err)
		}
		prefix = tenant + "/"
	}
	if purpose != "" {
		if tenant == "" {
			return errorf(api.CodeBadRequest, "purpose needs tenant")
		}
		if err := api.CheckLabel("purpose", purpose); err != nil {
			return errorf(api.CodeBadRequest, "%v", err)
		}
		prefix += purpose + "/"
	}
	limit := api.DefaultListLimit
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > api.MaxListLimit {
			return errorf(api.CodeBadRequest, "limit must be a number from 1 to %d", api.MaxListLimit)
		}
		limit = n
	}
	after := ""
	if tok := q.Get("page_token"); tok != "" {
		b, err := base64.RawURLEncoding.Strict().DecodeString(tok)
		if err != nil {
			return errorf(api.CodeBadRequest, "page_token is not one this server issued")
		}
		n, err := api.ParseKeyName(string(b))
		if err != nil {
			return errorf(api.CodeBadRequest, "page_token is not one this server issued")
		}
		after = n.String()
	}
	keys, next, err := s.ks.List(c.r.Context(), keystore.ListParams{
		Prefix: prefix, After: after, Limit: limit,
		Visible: func(k *keystore.Key) bool { return c.grant.Visible(k.Tenant, k.Name, k.Alg) },
	})
	if err != nil {
		return err
	}
	resp := api.ListKeysResponse{Keys: make([]api.KeyInfo, 0, len(keys))}
	for _, k := range keys {
		resp.Keys = append(resp.Keys, keyInfo(k))
	}
	if next != "" {
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(next))
	}
	c.respond(http.StatusOK, resp)
	return nil
}

// keyInfo is the wire form of a key's metadata.
func keyInfo(k *keystore.Key) api.KeyInfo {
	info := api.KeyInfo{
		Name: k.Name, KID: k.KID(k.Current), Tenant: k.Tenant, Purpose: k.Purpose, Alg: k.Alg,
		CreatedAt: k.CreatedAt.UTC().Format(time.RFC3339), CurrentVersion: k.Current,
		MinVerifyVersion: k.MinVerify, AutoRotateDays: k.AutoRotateDays,
		DestroyWaitingDays: k.DestroyWaiting(), Labels: k.Labels,
		Versions: make([]api.VersionInfo, len(k.Versions)),
	}
	if info.Labels == nil {
		info.Labels = map[string]string{}
	}
	info.VerifyOnly = k.VerifyOnly
	for i, v := range k.Versions {
		info.Versions[i] = api.VersionInfo{
			Version: v.Number, State: string(v.State),
			CreatedAt:    v.CreatedAt.UTC().Format(time.RFC3339),
			PublicKeyB64: api.EncodeB64(v.PublicKey),
			Origin:       string(v.Origin),
		}
		if v.State == keystore.DestroyScheduled {
			info.Versions[i].DestroyAt = v.DestroyAt.UTC().Format(time.RFC3339)
		}
	}
	return info
}

// truncate keeps echoed input short in messages.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
