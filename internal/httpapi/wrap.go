package httpapi

import (
	"crypto/rand"
	"net/http"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
)

// wrapKey: POST /v1/kms/wrap. With size instead of plaintext_key_b64 the
// server generates the data key and returns it with its envelope.
func (s *Server) wrapKey(c *call) error {
	var req api.WrapRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	ref, err := api.ParseKeyRef(req.KID)
	if err != nil {
		return err
	}
	c.fact.setKey(ref.KeyName, req.KID)
	if err := authorizeKey(c.grant, captoken.ScopeWrap, ref.KeyName); err != nil {
		return err
	}
	aad, err := decodeAAD(req.AADB64)
	if err != nil {
		return err
	}
	var dataKey []byte
	generated := false
	switch {
	case req.PlaintextKeyB64 != "" && req.Size != 0:
		return errorf(api.CodeBadRequest, "give exactly one of plaintext_key_b64 and size, not both")
	case req.PlaintextKeyB64 != "":
		if dataKey, err = api.DecodeB64("plaintext_key_b64", req.PlaintextKeyB64); err != nil {
			return err
		}
		if len(dataKey) == 0 || len(dataKey) > api.MaxDataKey {
			return errorf(api.CodeBadRequest, "plaintext_key_b64 must decode to 1 to %d bytes", api.MaxDataKey)
		}
	case req.Size != 0:
		if req.Size < 1 || req.Size > api.MaxDataKey {
			return errorf(api.CodeBadRequest, "size must be 1 to %d bytes", api.MaxDataKey)
		}
		dataKey = make([]byte, req.Size)
		rand.Read(dataKey)
		generated = true
	default:
		return errorf(api.CodeBadRequest, "give exactly one of plaintext_key_b64 and size")
	}
	defer clear(dataKey)
	start := time.Now()
	res, err := s.ks.Wrap(c.r.Context(), keystore.Ref{Name: ref.KeyName.String(), Version: ref.Version}, dataKey, aad)
	if err != nil {
		return err
	}
	op := "wrap"
	if generated {
		op = "datakey"
	}
	s.done(op, res.Alg, start)
	// The record hashes the envelope, never the data key (SPEC §9); a
	// failed wrap has no envelope, so its record has no input_b3.
	c.fact.kid, c.fact.alg = res.KID, res.Alg
	c.fact.setInput(res.Envelope)
	resp := api.WrapResponse{KID: res.KID, Alg: res.Alg, WrappedB64: api.EncodeB64(res.Envelope)}
	if generated {
		resp.PlaintextKeyB64 = api.EncodeB64(dataKey)
	}
	c.respond(http.StatusOK, resp)
	return nil
}

// unwrapKey: POST /v1/kms/unwrap. The envelope names its key: the caller's
// capability is checked against that key before anything is opened.
func (s *Server) unwrapKey(c *call) error {
	var req api.UnwrapRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	env, aad, err := s.sealedInput(c, "wrapped_b64", req.WrappedB64, req.AADB64, captoken.ScopeUnwrap, s.ks.EnvelopeKey)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := s.ks.Unwrap(c.r.Context(), env, aad)
	if err != nil {
		return err
	}
	defer clear(res.Plaintext)
	s.done("unwrap", res.Alg, start)
	c.fact.kid, c.fact.alg = res.KID, res.Alg
	c.respond(http.StatusOK, api.UnwrapResponse{KID: res.KID, Alg: res.Alg, PlaintextKeyB64: api.EncodeB64(res.Plaintext)})
	return nil
}

// sealedInput decodes a self-describing blob (an envelope or a ciphertext,
// field names it) and its aad, and checks the caller's capability against
// the key the blob names (keyOf reads it) before anything is opened.
func (s *Server) sealedInput(c *call, field, b64, aadB64 string, scope captoken.Scope, keyOf func([]byte) (string, error)) (blob, aad []byte, err error) {
	if blob, err = api.DecodeB64(field, b64); err != nil {
		return nil, nil, err
	}
	c.fact.setInput(blob)
	if aad, err = decodeAAD(aadB64); err != nil {
		return nil, nil, err
	}
	name, err := keyOf(blob)
	if err != nil {
		return nil, nil, err
	}
	nameFact(&c.fact, name)
	if err := authorizeName(c.grant, scope, name); err != nil {
		return nil, nil, err
	}
	return blob, aad, nil
}

// authorizeName checks the grant for a key named by an envelope or a
// ciphertext.
func authorizeName(g *captoken.Grant, scope captoken.Scope, name string) error {
	n, err := api.ParseKeyName(name)
	if err != nil {
		return errorf(api.CodeBadRequest, "the envelope names an invalid key")
	}
	return authorizeKey(g, scope, n)
}

// nameFact names, in an audit fact, the key an envelope or ciphertext names.
func nameFact(f *auditFact, name string) {
	if n, err := api.ParseKeyName(name); err == nil {
		f.setKey(n, name)
	}
}

// decodeAAD decodes the optional aad_b64.
func decodeAAD(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := api.DecodeB64("aad_b64", s)
	if err != nil {
		return nil, err
	}
	if len(b) > api.MaxAAD {
		return nil, errorf(api.CodeBadRequest, "aad_b64 is longer than %d bytes", api.MaxAAD)
	}
	return b, nil
}
