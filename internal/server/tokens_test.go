package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

// TestRevocationSurvivesRestart: a revoked token stays revoked after the
// server restarts on the same data directory (the revocation is in the
// store, not only in memory), other tokens keep working, and the revocation
// is audited. Revoking the admin token is allowed; the server then warns at
// start, and removing admin.token gets a new one.
func TestRevocationSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	r := start(t, cfg)
	admin := adminClient(t, r, cfg.DataDir)
	minted, err := admin.MintToken(ctx, api.MintTokenRequest{Scopes: []string{"kms:read"}})
	if err != nil {
		t.Fatal(err)
	}
	other, err := admin.MintToken(ctx, api.MintTokenRequest{Scopes: []string{"kms:read"}})
	if err != nil {
		t.Fatal(err)
	}
	use := func(r *running, tok string) error {
		c, err := client.New(r.url, tok, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.ListKeys(ctx, client.ListOptions{Tenant: "acme"})
		return err
	}
	if err := use(r, minted.Token); err != nil {
		t.Fatal(err)
	}
	res, err := admin.RevokeToken(ctx, minted.ID)
	if err != nil || *res != (api.RevokeTokenResponse{ID: minted.ID, Revoked: true}) {
		t.Fatalf("RevokeToken = %+v, %v", res, err)
	}
	if err := use(r, minted.Token); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("revoked token: %v, want ErrUnauthenticated", err)
	}
	r.shutdown(t)

	r = start(t, cfg)
	if err := use(r, minted.Token); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("revoked token after restart: %v, want ErrUnauthenticated", err)
	}
	if err := use(r, other.Token); err != nil {
		t.Fatalf("another token after restart: %v", err)
	}
	admin = adminClient(t, r, cfg.DataDir)

	// The admin token itself.
	adminID := tokenID(t, readToken(t, cfg.DataDir))
	if _, err := admin.RevokeToken(ctx, adminID); err != nil {
		t.Fatal(err)
	}
	if err := use(r, readToken(t, cfg.DataDir)); !errors.Is(err, client.ErrUnauthenticated) {
		t.Fatalf("revoked admin token: %v", err)
	}
	r.shutdown(t)
	r = start(t, cfg)
	if logs := r.logBuf.String(); !strings.Contains(logs, "the admin token is revoked") || !strings.Contains(logs, adminID) {
		t.Errorf("no warning about the revoked admin token at start:\n%s", logs)
	}
	r.shutdown(t)
	if err := os.Remove(filepath.Join(cfg.DataDir, AdminTokenFile)); err != nil {
		t.Fatal(err)
	}
	r = start(t, cfg)
	fresh := readToken(t, cfg.DataDir)
	if tokenID(t, fresh) == adminID {
		t.Fatal("the new admin token has the revoked id")
	}
	if err := use(r, fresh); err != nil {
		t.Fatalf("new admin token: %v", err)
	}
	if err := use(r, other.Token); err != nil {
		t.Fatalf("a token minted by the revoked admin token: %v", err)
	}
	r.shutdown(t)

	_, recs := auditRecords(t, cfg.DataDir)
	var revokes []string
	for _, rec := range recs {
		if rec.Op == "token_revoke" {
			revokes = append(revokes, rec.Detail)
		}
	}
	if len(revokes) != 2 || revokes[0] != "id="+minted.ID || revokes[1] != "id="+adminID {
		t.Errorf("token_revoke records: %q", revokes)
	}
}

func tokenID(t *testing.T, tok string) string {
	t.Helper()
	info, err := captoken.Inspect(tok)
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}
