package client

import (
	"context"
	"crypto/hpke"
	"errors"
	"fmt"

	"github.com/ron-kms/ron-kms/api"
)

// ImportWrappingKey returns the server's import wrapping key (scope
// kms:create), the mlkem768-x25519 HPKE public key that SealImport seals
// private key seeds to.
func (c *Client) ImportWrappingKey(ctx context.Context) (*api.WrappingKeyResponse, error) {
	var out api.WrappingKeyResponse
	return &out, c.do(ctx, "GET", "/v1/kms/import/wrapping-key", nil, &out)
}

// ImportKey imports a key (scope kms:create): a verify-only key from
// req.PublicKeyB64, or a private key from req.WrappedPrivateB64 (see
// SealImport). The answer is shaped like CreateKey's.
func (c *Client) ImportKey(ctx context.Context, req api.ImportKeyRequest) (*api.CreateKeyResponse, error) {
	var out api.CreateKeyResponse
	return &out, c.do(ctx, "POST", "/v1/kms/keys/import", req, &out)
}

// SealImport seals seed (a 32-byte Ed25519 or ML-DSA seed, a secret) to the
// import wrapping key wk, as SPEC §4 says: crypto/hpke.Seal with KEM
// MLKEM768X25519, KDF HKDF-SHA256, AEAD AES-256-GCM and info
// api.ImportInfo. The result is the WrappedPrivateB64 of an ImportKey
// request, base64-encoded. The seed is not retained; the caller clears it.
func SealImport(wk *api.WrappingKeyResponse, seed []byte) (string, error) {
	if wk.Alg != api.ImportAlg {
		return "", fmt.Errorf("client: the import wrapping key is %q, want %s", wk.Alg, api.ImportAlg)
	}
	raw, err := api.DecodeB64("public_key_b64", wk.PublicKeyB64)
	if err != nil {
		return "", err
	}
	pk, err := hpke.MLKEM768X25519().NewPublicKey(raw)
	if err != nil {
		return "", fmt.Errorf("client: the import wrapping key: %w", err)
	}
	if len(seed) == 0 {
		return "", errors.New("client: empty seed")
	}
	ct, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte(api.ImportInfo), seed)
	if err != nil {
		return "", fmt.Errorf("client: sealing the seed: %w", err)
	}
	return api.EncodeB64(ct), nil
}
