package server

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// TestImportAttestRestart: through the Go client against a real server,
// a key imported with client.SealImport signs the RFC 8032 TEST 2
// signature (a one-byte message); its attestation names the build version
// and verifies offline; the server's keys and the imported key survive a
// restart unchanged.
func TestImportAttestRestart(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)

	seed, _ := hex.DecodeString("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
	wantSig := "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
	wk, err := c.ImportWrappingKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := client.SealImport(wk, seed)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.ImportKey(ctx, api.ImportKeyRequest{Tenant: "acme", Purpose: "rfc", Alg: "ed25519", WrappedPrivateB64: wrapped})
	if err != nil {
		t.Fatal(err)
	}
	ak, err := c.AuditKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	att, err := c.Attestation(ctx, res.Key.Name, 0)
	if err != nil {
		t.Fatal(err)
	}
	attKey, _ := api.DecodeB64("k", ak.AttestationPublicKeyB64)
	st, err := client.VerifyAttestation(att, attKey)
	if err != nil {
		t.Fatal(err)
	}
	if st.Server != buildInfo(cfg.Store).Version || st.Server == "" || st.KID != res.KID || st.Origin != "imported" || st.Backend != "software" {
		t.Errorf("statement %+v", st)
	}

	r.shutdown(t)
	r = start(t, cfg)
	c = adminClient(t, r, cfg.DataDir)
	ak2, err := c.AuditKey(ctx)
	if err != nil || *ak2 != *ak {
		t.Fatalf("server keys after restart: %+v, %v; before %+v", ak2, err, ak)
	}
	wk2, err := c.ImportWrappingKey(ctx)
	if err != nil || *wk2 != *wk {
		t.Fatalf("import wrapping key changed across a restart (%v)", err)
	}
	s, err := c.Sign(ctx, api.SignRequest{KID: res.Key.Name}.WithMessage([]byte{0x72}))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := api.DecodeB64("s", s.Sigs[0].SignatureB64)
	if hex.EncodeToString(got) != wantSig {
		t.Errorf("signature %x, want RFC 8032 TEST 2", got)
	}
	pub, _ := api.DecodeB64("p", res.Key.Versions[0].PublicKeyB64)
	// The empty message signs too (RFC 8032 TEST 1 signs one).
	s, err = c.Sign(ctx, api.SignRequest{KID: res.Key.Name}.WithMessage(nil))
	if err != nil {
		t.Fatal(err)
	}
	got, _ = api.DecodeB64("s", s.Sigs[0].SignatureB64)
	if !ed25519.Verify(pub, nil, got) {
		t.Error("signature over the empty message does not verify")
	}
}
