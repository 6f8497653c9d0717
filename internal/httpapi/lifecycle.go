package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
)

// configureKey: POST /v1/kms/keys/{key}/config.
func (s *Server) configureKey(c *call) error {
	n, err := keyName(c.r)
	if err != nil {
		return err
	}
	if err := authorizeKey(c.grant, captoken.ScopeAdmin, n); err != nil {
		return err
	}
	var req api.ConfigureKeyRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	k, err := s.ks.Configure(c.r.Context(), n.String(), keystore.KeyConfig{
		MinVerifyVersion:   req.MinVerifyVersion,
		AutoRotateDays:     req.AutoRotateDays,
		DestroyWaitingDays: req.DestroyWaitingDays,
	})
	if err != nil {
		return err
	}
	s.metrics.Ops.WithLabelValues("configure", k.Alg).Inc()
	c.respond(http.StatusOK, keyInfo(k))
	return nil
}

// versionAction returns the handler of POST
// /v1/kms/keys/{key}/versions/{n}/<action>: one edge of the version state
// machine (keystore/lifecycle.go).
func (s *Server) versionAction(action keystore.Action) handlerFunc {
	return func(c *call) error {
		n, err := keyName(c.r)
		if err != nil {
			return err
		}
		v, err := versionParam(c.r.PathValue("n"))
		if err != nil {
			return err
		}
		c.fact.kid = n.Version(v).String()
		if err := authorizeKey(c.grant, captoken.ScopeAdmin, n); err != nil {
			return err
		}
		var req api.VersionActionRequest
		if err := decode(c.r, &req, true); err != nil {
			return err
		}
		k, err := s.ks.Transition(c.r.Context(), n.String(), v, action)
		if err != nil {
			return err
		}
		s.metrics.Ops.WithLabelValues(strings.ReplaceAll(string(action), "-", "_"), k.Alg).Inc()
		c.respond(http.StatusOK, keyInfo(k))
		return nil
	}
}

// versionParam parses the {n} path segment: a version number as in a kid,
// decimal without leading zeros, 1 to 2^32-1.
func versionParam(s string) (uint32, error) {
	bad := errorf(api.CodeBadRequest, "version %q in the path must be a decimal number from 1 without leading zeros", truncate(s))
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, bad
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, bad
	}
	return uint32(v), nil
}
