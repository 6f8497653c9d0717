package httpapi

import (
	"net/http"
	"strconv"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
)

// attestKey: GET /v1/kms/keys/{key}/attestation[?version=N]. The statement
// names the current version unless version is given.
func (s *Server) attestKey(c *call) error {
	n, err := keyName(c.r)
	if err != nil {
		return err
	}
	if err := authorizeKey(c.grant, captoken.ScopeRead, n); err != nil {
		return err
	}
	ref := keystore.Ref{Name: n.String()}
	q := c.r.URL.Query()
	for name, vals := range q {
		if name != "version" || len(vals) != 1 {
			return errorf(api.CodeBadRequest, "the only query parameter is version, once; got %q", truncate(name))
		}
	}
	if v := q.Get("version"); q.Has("version") {
		ref.Version, err = queryVersion(v)
		if err != nil {
			return err
		}
	}
	att, err := s.ks.Attest(c.r.Context(), ref, s.opts.Build.Version)
	if err != nil {
		return err
	}
	s.metrics.Ops.WithLabelValues("attest", n.Alg).Inc()
	c.respond(http.StatusOK, api.AttestationResponse{
		StatementB64: api.EncodeB64(att.Statement),
		SignatureB64: api.EncodeB64(att.Signature),
		Alg:          api.AttestationAlg,
	})
	return nil
}

// queryVersion reads a version number as kids write it: decimal, no sign,
// no leading zero, 1 to 2^32-1.
func queryVersion(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 || s[0] == '0' || s[0] == '+' {
		return 0, errorf(api.CodeBadRequest, "version must be a decimal number from 1, without leading zeros")
	}
	return uint32(n), nil
}

// auditKey: GET /v1/kms/audit/key. The server's own public keys: any token
// with kms:read may fetch them.
func (s *Server) auditKey(c *call) error {
	if len(c.r.URL.Query()) > 0 {
		return errorf(api.CodeBadRequest, "this route takes no query parameters")
	}
	keys, err := s.ks.ServerKeys(c.r.Context())
	if err != nil {
		return err
	}
	c.respond(http.StatusOK, api.AuditKeyResponse{
		AuditPublicKeyB64:       api.EncodeB64(keys.Audit),
		AttestationPublicKeyB64: api.EncodeB64(keys.Attestation),
	})
	return nil
}
