package server

import (
	"context"
	"crypto/ed25519"
	"crypto/mldsa"
	"errors"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// TestIndependentVerification: signatures from the server verify with the
// standard library, using only the public keys GET /keys/{key} returns.
func TestIndependentVerification(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	msg := []byte("independently checked")
	params := map[string]mldsa.Parameters{"ml-dsa-44": mldsa.MLDSA44(), "ml-dsa-65": mldsa.MLDSA65(), "ml-dsa-87": mldsa.MLDSA87()}
	for _, alg := range []string{"ed25519", "ml-dsa-44", "ml-dsa-65", "ml-dsa-87"} {
		created, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "t", Purpose: "p", Alg: alg})
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.Sign(ctx, api.SignRequest{KID: created.KID, MessageB64: api.EncodeB64(msg)})
		if err != nil {
			t.Fatal(err)
		}
		k, err := c.GetKey(ctx, created.Key.Name)
		if err != nil {
			t.Fatal(err)
		}
		pubBytes, _ := api.DecodeB64("pub", k.Versions[0].PublicKeyB64)
		sig, _ := api.DecodeB64("sig", s.Sigs[0].SignatureB64)
		if alg == "ed25519" {
			if !ed25519.Verify(pubBytes, msg, sig) {
				t.Errorf("%s: crypto/ed25519 rejects the signature", alg)
			}
			continue
		}
		pub, err := mldsa.NewPublicKey(params[alg], pubBytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := mldsa.Verify(pub, msg, sig, nil); err != nil {
			t.Errorf("%s: crypto/mldsa rejects the signature: %v", alg, err)
		}
	}
}

// TestHybridOverHTTP: a composite key signs with both components, its
// public key is ML-DSA-65 ‖ Ed25519, and the verify modes and the server's
// floor behave as SPEC §3.1 says.
func TestHybridOverHTTP(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.VerifyModeFloor = "and"
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	created, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "t", Purpose: "hybrid", Alg: "mldsa65-ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := api.DecodeB64("pub", created.Key.Versions[0].PublicKeyB64)
	if len(pub) != 1952+32 {
		t.Fatalf("composite public key is %d bytes, want 1952+32", len(pub))
	}
	digest := strings.Repeat("c3", 32)
	s, err := c.Sign(ctx, api.SignRequest{KID: created.KID, PayloadB3: digest})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Sigs) != 2 || s.Sigs[0].Alg != "ml-dsa-65" || s.Sigs[1].Alg != "ed25519" {
		t.Fatalf("sigs: %+v", s.Sigs)
	}
	// Neither component is a plain signature over the payload.
	msg, _ := api.DecodePayloadB3(digest)
	edSig, _ := api.DecodeB64("s", s.Sigs[1].SignatureB64)
	if ed25519.Verify(pub[1952:], msg, edSig) {
		t.Fatal("the Ed25519 component verifies as a plain signature")
	}
	mpub, _ := mldsa.NewPublicKey(mldsa.MLDSA65(), pub[:1952])
	mSig, _ := api.DecodeB64("s", s.Sigs[0].SignatureB64)
	if mldsa.Verify(mpub, msg, mSig, nil) == nil {
		t.Fatal("the ML-DSA component verifies as a plain signature")
	}

	verify := func(sigs []api.Signature, mode string) (*api.VerifyResponse, error) {
		req := api.VerifyRequest{KID: s.KID, PayloadB3: digest, Sigs: sigs}
		if mode != "" {
			req.Policy = &api.VerifyPolicy{Mode: mode}
		}
		return c.Verify(ctx, req)
	}
	res, err := verify(s.Sigs, "")
	if err != nil || !res.OK || res.Details.SatisfiedMode != "and" || len(res.Details.Checked) != 2 {
		t.Fatalf("default mode: %+v %v", res, err)
	}
	res, err = verify(s.Sigs[:1], "pq_only")
	if err != nil || !res.OK || res.Details.SatisfiedMode != "pq_only" {
		t.Fatalf("pq_only with the ML-DSA part: %+v %v", res, err)
	}
	res, err = verify(s.Sigs[1:], "")
	if err != nil || res.OK {
		t.Fatalf("and with only the Ed25519 part: %+v %v", res, err)
	}
	// The floor is "and": "or" is looser and refused.
	if _, err := verify(s.Sigs, "or"); !errors.Is(err, client.ErrUnsupported) {
		t.Fatalf("or under an and floor: %v", err)
	}
}

// TestHybridFloorOr: with the floor at "or", a request may ask for "or".
func TestHybridFloorOr(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.VerifyModeFloor = "or"
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	created, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "t", Purpose: "hybrid", Alg: "mldsa65-ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	digest := strings.Repeat("aa", 32)
	s, _ := c.Sign(ctx, api.SignRequest{KID: created.KID, PayloadB3: digest})
	res, err := c.Verify(ctx, api.VerifyRequest{KID: s.KID, PayloadB3: digest, Sigs: s.Sigs[1:], Policy: &api.VerifyPolicy{Mode: "or"}})
	if err != nil || !res.OK || res.Details.SatisfiedMode != "or" {
		t.Fatalf("or with the Ed25519 part: %+v %v", res, err)
	}
	// A lower floor does not lower the default: without a policy, and.
	res, err = c.Verify(ctx, api.VerifyRequest{KID: s.KID, PayloadB3: digest, Sigs: s.Sigs[1:]})
	if err != nil || res.OK {
		t.Fatalf("no policy under an or floor with only the Ed25519 part: %+v %v", res, err)
	}
}

// TestDataProtectionOverHTTP: wrap, datakey, unwrap, encrypt, decrypt
// through the API, across a rotation.
func TestDataProtectionOverHTTP(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	wk, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "t", Purpose: "wrap", Alg: "mlkem768-x25519"})
	if err != nil {
		t.Fatal(err)
	}
	dk, err := c.Wrap(ctx, api.WrapRequest{KID: wk.Key.Name, Size: 32, AADB64: api.EncodeB64([]byte("row 7"))})
	if err != nil {
		t.Fatal(err)
	}
	if dk.PlaintextKeyB64 == "" || dk.KID != wk.KID {
		t.Fatalf("datakey: %+v", dk)
	}
	if _, err := c.RotateKey(ctx, wk.Key.Name, ""); err != nil {
		t.Fatal(err)
	}
	un, err := c.Unwrap(ctx, api.UnwrapRequest{WrappedB64: dk.WrappedB64, AADB64: api.EncodeB64([]byte("row 7"))})
	if err != nil || un.PlaintextKeyB64 != dk.PlaintextKeyB64 || un.KID != wk.KID {
		t.Fatalf("unwrap after rotation: %+v %v", un, err)
	}
	if _, err := c.Unwrap(ctx, api.UnwrapRequest{WrappedB64: dk.WrappedB64}); !errors.Is(err, client.ErrBadRequest) {
		t.Fatalf("unwrap without the aad: %v", err)
	}
	w2, err := c.Wrap(ctx, api.WrapRequest{KID: wk.Key.Name, PlaintextKeyB64: api.EncodeB64([]byte("my data key"))})
	if err != nil || w2.PlaintextKeyB64 != "" || !strings.HasSuffix(w2.KID, "#v2") {
		t.Fatalf("wrap a given key: %+v %v", w2, err)
	}

	ek, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "t", Purpose: "enc", Alg: "aes-256-gcm"})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := c.Encrypt(ctx, api.EncryptRequest{KID: ek.KID, PlaintextB64: api.EncodeB64([]byte("card 4111"))})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := c.Decrypt(ctx, api.DecryptRequest{CiphertextB64: enc.CiphertextB64})
	if err != nil || dec.PlaintextB64 != api.EncodeB64([]byte("card 4111")) {
		t.Fatalf("decrypt: %+v %v", dec, err)
	}
	// A token for another tenant cannot open what this tenant wrapped.
	other, err := c.MintToken(ctx, api.MintTokenRequest{Tenant: "other"})
	if err != nil {
		t.Fatal(err)
	}
	oc, _ := client.New(r.url, other.Token, nil)
	if _, err := oc.Unwrap(ctx, api.UnwrapRequest{WrappedB64: w2.WrappedB64}); !errors.Is(err, client.ErrNoCapability) {
		t.Fatalf("unwrap with another tenant's token: %v", err)
	}
	if _, err := oc.Decrypt(ctx, api.DecryptRequest{CiphertextB64: enc.CiphertextB64}); !errors.Is(err, client.ErrNoCapability) {
		t.Fatalf("decrypt with another tenant's token: %v", err)
	}
}
