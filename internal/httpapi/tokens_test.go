package httpapi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/audit"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/metrics"
)

// mintAPI mints a token through POST /v1/kms/tokens with token, wanting 201.
func (h *harness) mintAPI(t *testing.T, token string, req api.MintTokenRequest) api.MintTokenResponse {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/tokens", token, req)
	if r.Status != http.StatusCreated {
		t.Fatalf("mint %+v: %d %s", req, r.Status, r.Raw)
	}
	var out api.MintTokenResponse
	r.decodeInto(t, &out)
	return out
}

// revoke revokes id through POST /v1/kms/tokens/revoke with the admin token.
func (h *harness) revoke(t *testing.T, id string) response {
	t.Helper()
	return h.do(t, "POST", "/v1/kms/tokens/revoke", h.Admin, api.RevokeTokenRequest{ID: id})
}

// peer is another node on h's store: its own keystore (following the store),
// its own Authority under the same root key, its own listener. h.Admin works
// there too.
func (h *harness) peer(t *testing.T) *harness {
	t.Helper()
	ks, err := keystore.Open(context.Background(), keystore.Config{Store: h.Store, Sealer: h.sealer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	auth, err := captoken.NewAuthority(h.root, "ron-kms-test")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(ks, auth, metrics.New(), slog.New(slog.DiscardHandler), Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return &harness{URL: srv.URL, Admin: h.Admin, Auth: auth, Store: h.Store, KS: ks, API: a, client: srv.Client(),
		sealer: h.sealer, root: h.root}
}

// expiresOf returns the earliest expires caveat of tok (unverified).
func expiresOf(t *testing.T, tok string) (time.Time, bool) {
	t.Helper()
	info, err := captoken.Inspect(tok)
	if err != nil {
		t.Fatal(err)
	}
	var exp time.Time
	for _, c := range info.Caveats {
		v, ok := strings.CutPrefix(c, "expires = ")
		if !ok {
			continue
		}
		e, err := time.Parse(time.RFC3339, v)
		if err != nil {
			t.Fatalf("caveat %q: %v", c, err)
		}
		if exp.IsZero() || e.Before(exp) {
			exp = e
		}
	}
	return exp, !exp.IsZero()
}

// TestMintNeverOutlivesMinter: a token that expires in 60 s mints tokens
// that expire no later than it (with no ttl, or a shorter one), and is
// refused a longer ttl; a token without expiry mints what it asks for.
func TestMintNeverOutlivesMinter(t *testing.T) {
	h := newHarness(t)
	short := h.mintAPI(t, h.Admin, api.MintTokenRequest{TTL: "60s"})
	limit, ok := expiresOf(t, short.Token)
	if !ok {
		t.Fatal("a token minted with ttl 60s has no expiry")
	}
	for _, req := range []api.MintTokenRequest{{}, {Scopes: []string{"kms:read"}, Tenant: "acme"}, {TTL: "30s"}} {
		child := h.mintAPI(t, short.Token, req)
		exp, ok := expiresOf(t, child.Token)
		if !ok || exp.After(limit) {
			t.Errorf("%+v minted by a token expiring at %s: expires %s (set: %v)", req, limit, exp, ok)
		}
		if r := h.do(t, "GET", "/v1/kms/keys?tenant=acme", child.Token, nil); r.Status != http.StatusOK {
			t.Errorf("%+v: the minted token does not work: %d %s", req, r.Status, r.Raw)
		}
	}
	// An attenuation with an expiry is bounded the same way.
	att, err := captoken.Attenuate(h.Admin, captoken.Restrictions{Expires: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	attLimit, _ := expiresOf(t, att)
	if exp, ok := expiresOf(t, h.mintAPI(t, att, api.MintTokenRequest{}).Token); !ok || exp.After(attLimit) {
		t.Errorf("minted by an attenuation expiring at %s: expires %s (set: %v)", attLimit, exp, ok)
	}
	for _, ttl := range []string{"2m", "8760h"} {
		r := h.do(t, "POST", "/v1/kms/tokens", short.Token, api.MintTokenRequest{TTL: ttl})
		if r.Status != http.StatusForbidden || errCode(r) != string(api.CodeNoCapability) || !strings.Contains(errMessage(r), "outlive") {
			t.Errorf("ttl %s from a 60 s token: %d %s; want 403 NoCapability saying it would outlive the caller", ttl, r.Status, r.Raw)
		}
	}
	// The admin token has no expiry: no ttl means none, and any ttl up to
	// the maximum is allowed.
	if _, ok := expiresOf(t, h.mintAPI(t, h.Admin, api.MintTokenRequest{}).Token); ok {
		t.Error("a token minted with no ttl by the admin token expires")
	}
	if exp, ok := expiresOf(t, h.mintAPI(t, h.Admin, api.MintTokenRequest{TTL: "8760h"}).Token); !ok || exp.Before(time.Now().Add(8759*time.Hour)) {
		t.Errorf("ttl 8760h from the admin token: expires %s (set: %v)", exp, ok)
	}
}

func errCode(r response) string {
	e, _ := r.JSON["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func errMessage(r response) string {
	e, _ := r.JSON["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// TestRevokeToken: once revoked, a token and every attenuation of it are
// 401, even after they were verified (and cached); other tokens are not
// affected; revoking is idempotent and needs an unrestricted admin token.
func TestRevokeToken(t *testing.T) {
	h := newHarness(t)
	list := func(tok string) response { return h.do(t, "GET", "/v1/kms/keys?tenant=acme", tok, nil) }
	x := h.mintAPI(t, h.Admin, api.MintTokenRequest{Scopes: []string{"kms:read", "kms:admin"}})
	att, err := captoken.Attenuate(x.Token, captoken.Restrictions{Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	y := h.mintAPI(t, h.Admin, api.MintTokenRequest{Scopes: []string{"kms:read"}})
	for _, tok := range []string{x.Token, att, y.Token} {
		if r := list(tok); r.Status != http.StatusOK {
			t.Fatalf("before revocation: %d %s", r.Status, r.Raw)
		}
	}

	for i := range 2 { // revoking again answers the same
		r := h.revoke(t, x.ID)
		if r.Status != http.StatusOK {
			t.Fatalf("revoke, call %d: %d %s", i, r.Status, r.Raw)
		}
		var out api.RevokeTokenResponse
		r.decodeInto(t, &out)
		if out != (api.RevokeTokenResponse{ID: x.ID, Revoked: true}) {
			t.Fatalf("revoke answered %+v", out)
		}
	}
	late, err := captoken.Attenuate(x.Token, captoken.Restrictions{Scopes: []captoken.Scope{captoken.ScopeRead}})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"token": x.Token, "attenuation": att, "later attenuation": late} {
		r := list(tok)
		if r.Status != http.StatusUnauthorized || errCode(r) != string(api.CodeUnauthenticated) || !strings.Contains(errMessage(r), "revoked") {
			t.Errorf("revoked %s: %d %s; want 401 Unauthenticated, revoked", name, r.Status, r.Raw)
		}
		if strings.Contains(string(r.Raw), tok) {
			t.Errorf("revoked %s: the answer holds the token", name)
		}
	}
	for name, tok := range map[string]string{"other token": y.Token, "admin token": h.Admin} {
		if r := list(tok); r.Status != http.StatusOK {
			t.Errorf("%s after another's revocation: %d %s", name, r.Status, r.Raw)
		}
	}

	// An id that names no token is revoked all the same (ids are not
	// recorded at mint time).
	unknown := make([]byte, captoken.IDSize)
	rand.Read(unknown)
	if r := h.revoke(t, hex.EncodeToString(unknown)); r.Status != http.StatusOK {
		t.Errorf("revoke an unknown id: %d %s", r.Status, r.Raw)
	}
	for _, body := range []any{`{}`, `{"id":""}`, `{"id":1}`, api.RevokeTokenRequest{ID: strings.ToUpper(y.ID)},
		api.RevokeTokenRequest{ID: y.ID[:31]}, api.RevokeTokenRequest{ID: y.ID + "00"}, api.RevokeTokenRequest{ID: "../" + y.ID[3:]}} {
		if r := h.do(t, "POST", "/v1/kms/tokens/revoke", h.Admin, body); r.Status != http.StatusBadRequest {
			t.Errorf("revoke %v: %d %s; want 400", body, r.Status, r.Raw)
		}
	}
	// Only an unrestricted admin token revokes: not one limited to a
	// tenant, not one without kms:admin.
	acmeAdmin := h.mint(t, captoken.Restrictions{Tenant: "acme"})
	readOnly := h.mint(t, captoken.Restrictions{Scopes: []captoken.Scope{captoken.ScopeRead}})
	for _, tok := range []string{acmeAdmin, readOnly} {
		r := h.do(t, "POST", "/v1/kms/tokens/revoke", tok, api.RevokeTokenRequest{ID: y.ID})
		if r.Status != http.StatusForbidden {
			t.Errorf("revoke with a restricted token: %d %s; want 403", r.Status, r.Raw)
		}
	}
	if r := list(y.Token); r.Status != http.StatusOK {
		t.Errorf("a refused revocation revoked: %d %s", r.Status, r.Raw)
	}
}

// TestRevocationReachesPeer: two servers on one store (two nodes on one
// etcd). A token revoked through one is refused by the other, which had
// already verified (and cached) it, once its keystore sees the store's
// change: polled with a generous bound.
func TestRevocationReachesPeer(t *testing.T) {
	h := newHarness(t)
	p := h.peer(t)
	x := h.mintAPI(t, h.Admin, api.MintTokenRequest{Scopes: []string{"kms:read"}})
	list := func(n *harness) response { return n.do(t, "GET", "/v1/kms/keys?tenant=acme", x.Token, nil) }
	if r := list(p); r.Status != http.StatusOK {
		t.Fatalf("peer before revocation: %d %s", r.Status, r.Raw)
	}
	if r := h.revoke(t, x.ID); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Raw)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		r := list(p)
		if r.Status == http.StatusUnauthorized {
			break
		}
		if r.Status != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("peer after revocation: %d %s; want 401 in the end", r.Status, r.Raw)
		}
	}
	if r := p.do(t, "GET", "/v1/kms/keys?tenant=acme", h.Admin, nil); r.Status != http.StatusOK {
		t.Errorf("admin token on the peer: %d %s", r.Status, r.Raw)
	}
}

// TestTokenAuditDetail: the mint's audit record names the new token's id and
// caveats, the revocation's names the id; neither holds the token.
func TestTokenAuditDetail(t *testing.T) {
	dir := t.TempDir()
	l, err := audit.Open(dir, audit.Options{AuditKeySeed: make([]byte, ed25519.SeedSize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	h := newHarnessAudited(t, nil, l)
	res := h.mintAPI(t, h.Admin, api.MintTokenRequest{Scopes: []string{"kms:verify", "kms:sign"}, Tenant: "acme", TTL: "1h"})
	open := h.mintAPI(t, h.Admin, api.MintTokenRequest{})
	if r := h.revoke(t, res.ID); r.Status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.Status, r.Raw)
	}
	details := map[string][]string{}
	err = audit.Tail(context.Background(), dir, -1, false, 0, func(e audit.Entry) error {
		if e.Record != nil {
			details[e.Record.Op] = append(details[e.Record.Op], e.Record.Detail)
			for _, tok := range []string{res.Token, open.Token, h.Admin} {
				if strings.Contains(e.Record.Detail, tok) {
					t.Errorf("record %d holds a token", e.Record.Seq)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	exp, _ := expiresOf(t, res.Token)
	want := []string{
		"id=" + res.ID + " caveats=scope = kms:sign,kms:verify; tenant = acme; expires = " + exp.UTC().Format(time.RFC3339),
		"id=" + open.ID + " caveats=none",
	}
	if got := details["token_mint"]; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("token_mint details:\n got  %q\n want %q", got, want)
	}
	if got := details["token_revoke"]; len(got) != 1 || got[0] != "id="+res.ID {
		t.Errorf("token_revoke details: %q", got)
	}
}

// TestBadCaveatMessage: a genuine token with a malformed or unknown caveat
// is 401, and the message names the caveat (never the token) instead of a
// missing scope.
func TestBadCaveatMessage(t *testing.T) {
	h := newHarness(t)
	kid := h.createKey(t, "acme", "docs", "ed25519")
	for cav, want := range map[string]string{
		"scope=kms:sign": `caveat "scope=kms:sign" is malformed`,
		"garbage":        `caveat "garbage" is malformed`,
		"colour = blue":  `caveat "colour = blue" is unknown`,
	} {
		tok := addCaveat(t, h.Admin, cav)
		r := h.do(t, "POST", "/v1/kms/sign", tok, api.SignRequest{KID: kid, PayloadB3: strings.Repeat("ab", 32)})
		msg := errMessage(r)
		if r.Status != http.StatusUnauthorized || errCode(r) != string(api.CodeUnauthenticated) || !strings.Contains(msg, want) {
			t.Errorf("caveat %q: %d %s; want 401 Unauthenticated with %q", cav, r.Status, r.Raw, want)
		}
		if strings.Contains(msg, "scope kms:") || strings.Contains(string(r.Raw), tok) {
			t.Errorf("caveat %q: message %q speaks of scopes or holds the token", cav, msg)
		}
	}
}
