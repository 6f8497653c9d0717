package client

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"github.com/ron-kms/ron-kms/api"
)

// Signer is a crypto.Signer whose private key stays in ron-kms. It signs
// with the current version of a key; the public key is that of the version
// current when the Signer was made, so make a new Signer after a rotation.
// Safe for concurrent use; concurrent Sign calls go through Client.Sign and
// so share batch requests unless the Client was made WithoutBatching.
type Signer struct {
	c    *Client
	name string
	alg  string
	pub  crypto.PublicKey
	ctx  context.Context
}

// NewSigner returns a Signer for the key called name. Only ed25519 keys are
// supported as crypto.Signer today (their public key is an ed25519.PublicKey).
// ctx bounds every Sign call made through the Signer.
func NewSigner(ctx context.Context, c *Client, name string) (*Signer, error) {
	k, err := c.GetKey(ctx, name)
	if err != nil {
		return nil, err
	}
	if k.Alg != "ed25519" {
		return nil, fmt.Errorf("client: a crypto.Signer for %s keys is not available", k.Alg)
	}
	v := k.Versions[k.CurrentVersion-1]
	pub, err := api.DecodeB64("public_key_b64", v.PublicKeyB64)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("client: the server returned a malformed public key")
	}
	return &Signer{c: c, name: k.Name, alg: k.Alg, pub: ed25519.PublicKey(pub), ctx: ctx}, nil
}

// Public returns the public key of the version current at NewSigner.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign signs message (pure Ed25519: opts.HashFunc() must be 0, as with
// crypto/ed25519). rand is ignored: the server's key signs.
func (s *Signer) Sign(_ io.Reader, message []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 {
		return nil, errors.New("client: ed25519 keys sign messages, not pre-hashed digests")
	}
	res, err := s.c.Sign(s.ctx, api.SignRequest{KID: s.name}.WithMessage(message))
	if err != nil {
		return nil, err
	}
	if len(res.Sigs) != 1 {
		return nil, errors.New("client: expected one signature")
	}
	return api.DecodeB64("signature_b64", res.Sigs[0].SignatureB64)
}
