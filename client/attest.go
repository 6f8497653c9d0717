package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"

	"github.com/ron-kms/ron-kms/api"
)

// Attestation returns the server's signed statement about a key version
// (scope kms:read): the current version when version is 0.
func (c *Client) Attestation(ctx context.Context, name string, version uint32) (*api.AttestationResponse, error) {
	p, err := keyPath(name)
	if err != nil {
		return nil, err
	}
	p += "/attestation"
	if version != 0 {
		p += "?version=" + strconv.FormatUint(uint64(version), 10)
	}
	var out api.AttestationResponse
	return &out, c.do(ctx, "GET", p, nil, &out)
}

// AuditKey returns the server's audit and attestation public keys (scope
// kms:read).
func (c *Client) AuditKey(ctx context.Context) (*api.AuditKeyResponse, error) {
	var out api.AuditKeyResponse
	return &out, c.do(ctx, "GET", "/v1/kms/audit/key", nil, &out)
}

// ErrAttestation is returned (wrapped) by VerifyAttestation for an
// attestation that does not verify.
var ErrAttestation = errors.New("ron-kms: attestation does not verify")

// VerifyAttestation checks att offline: the Ed25519 signature by pub (the
// 32-byte attestation public key, obtained and pinned out of band or from
// AuditKey) over exactly the statement bytes, and that those bytes are one
// canonical statement. It returns the statement. Checking that the statement
// names the expected key, version and public key is the caller's part.
func VerifyAttestation(att *api.AttestationResponse, pub []byte) (*api.AttestationStatement, error) {
	if att.Alg != api.AttestationAlg {
		return nil, fmt.Errorf("%w: alg %q, want %s", ErrAttestation, att.Alg, api.AttestationAlg)
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: the attestation key is %d bytes, want %d", ErrAttestation, len(pub), ed25519.PublicKeySize)
	}
	stmt, err := api.DecodeB64("statement_b64", att.StatementB64)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAttestation, err)
	}
	sig, err := api.DecodeB64("signature_b64", att.SignatureB64)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAttestation, err)
	}
	if !ed25519.Verify(ed25519.PublicKey(pub), stmt, sig) {
		return nil, fmt.Errorf("%w: bad signature over the statement", ErrAttestation)
	}
	s, err := api.ParseAttestationStatement(stmt)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAttestation, err)
	}
	return &s, nil
}
