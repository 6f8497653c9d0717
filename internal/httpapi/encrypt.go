package httpapi

import (
	"net/http"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
)

// encrypt: POST /v1/kms/encrypt (aes-256-gcm keys).
func (s *Server) encrypt(c *call) error {
	var req api.EncryptRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	ref, err := api.ParseKeyRef(req.KID)
	if err != nil {
		return err
	}
	c.fact.setKey(ref.KeyName, req.KID)
	if err := authorizeKey(c.grant, captoken.ScopeEncrypt, ref.KeyName); err != nil {
		return err
	}
	if len(req.PlaintextB64) > (api.MaxPlaintext+2)/3*4 {
		return errorf(api.CodeBadRequest, "plaintext_b64 is longer than %d bytes; encrypt a data key instead (wrap)", api.MaxPlaintext)
	}
	pt, err := api.DecodeB64("plaintext_b64", req.PlaintextB64)
	if err != nil {
		return err
	}
	if len(pt) > api.MaxPlaintext {
		return errorf(api.CodeBadRequest, "plaintext_b64 is longer than %d bytes", api.MaxPlaintext)
	}
	aad, err := decodeAAD(req.AADB64)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := s.ks.Encrypt(c.r.Context(), keystore.Ref{Name: ref.KeyName.String(), Version: ref.Version}, pt, aad)
	if err != nil {
		return err
	}
	s.done("encrypt", ref.Alg, start)
	// The record hashes the ciphertext, never the plaintext (SPEC §9): an
	// unkeyed hash of a short plaintext gives it away to a brute force. A
	// failed encrypt has no ciphertext, so its record has no input_b3.
	c.fact.kid = res.KID
	c.fact.setInput(res.Ciphertext)
	c.respond(http.StatusOK, api.EncryptResponse{KID: res.KID, CiphertextB64: api.EncodeB64(res.Ciphertext)})
	return nil
}

// decrypt: POST /v1/kms/decrypt. The ciphertext names its key version; the
// capability is checked against it before decryption.
func (s *Server) decrypt(c *call) error {
	var req api.DecryptRequest
	if err := decode(c.r, &req, false); err != nil {
		return err
	}
	ct, aad, err := s.sealedInput(c, "ciphertext_b64", req.CiphertextB64, req.AADB64, captoken.ScopeDecrypt, s.ks.CiphertextKey)
	if err != nil {
		return err
	}
	start := time.Now()
	res, err := s.ks.Decrypt(c.r.Context(), ct, aad)
	if err != nil {
		return err
	}
	defer clear(res.Plaintext)
	s.done("decrypt", "aes-256-gcm", start)
	c.fact.kid = res.KID
	c.respond(http.StatusOK, api.DecryptResponse{KID: res.KID, PlaintextB64: api.EncodeB64(res.Plaintext)})
	return nil
}
