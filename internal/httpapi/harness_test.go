package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/backup"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/metrics"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/boltstore"
)

// harness is a real server: a bbolt file, an AES-GCM sealer, the keystore,
// a token authority and the HTTP API, served on a loopback listener.
type harness struct {
	URL   string
	Admin string // a token minted with no restriction at all
	Auth  *captoken.Authority
	Store storage.Store
	KS    *keystore.Keystore
	API   *Server // the handler the listener serves

	client *http.Client
	sealer *seal.AESGCM // for another node on the same store (peer)
	root   []byte       // the token root key, idem
}

// newHarness serves the API over a real bolt file and a real loopback
// listener.
func newHarness(t testing.TB) *harness { return newHarnessWith(t, nil) }

// newHarnessWith is newHarness with a keystore that reads now (time.Now
// when nil); tokens are still checked against the real time.
func newHarnessWith(t testing.TB, now func() time.Time) *harness {
	return newHarnessAudited(t, now, nil)
}

// newHarnessAudited is newHarnessWith with an audit sink (nil: none).
func newHarnessAudited(t testing.TB, now func() time.Time, sink Auditor) *harness {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newHarnessOn(t, st, nil, nil, keystore.Config{Now: now}, sink)
}

// newHarnessOn serves the API over st (closed by the caller) and a real
// loopback listener. sealer and root are the KEK's sealer and the token
// root key; fresh ones when nil (pass another harness's to make a second
// node of the same deployment). cfg's Store and Sealer are filled in.
func newHarnessOn(t testing.TB, st storage.Store, sealer *seal.AESGCM, root []byte, cfg keystore.Config, sink Auditor) *harness {
	t.Helper()
	ctx := context.Background()
	if sealer == nil {
		kek := make([]byte, seal.KEKSize)
		rand.Read(kek)
		var err error
		if sealer, err = seal.NewAESGCM(kek); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Store, cfg.Sealer = st, sealer
	ks, err := keystore.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	if root == nil {
		root = make([]byte, captoken.RootKeySize)
		rand.Read(root)
	}
	auth, err := captoken.NewAuthority(root, "ron-kms-test")
	if err != nil {
		t.Fatal(err)
	}
	admin, _, err := auth.Mint(captoken.Restrictions{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	kekID := sealer.KEKID()
	api, err := New(ks, auth, metrics.New(), log, Options{
		BackupKEK: BackupKEK{Source: backup.KEKRootKey, ID: hex.EncodeToString(kekID[:])},
		Audit:     sink,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.Timeout = 30 * time.Second
	// Redirects are answers too: the test must see them, not follow them.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &harness{URL: srv.URL, Admin: admin, Auth: auth, Store: st, KS: ks, API: api, client: client, sealer: sealer, root: root}
}

// mint makes a token with restrictions r under the server's root key.
func (h *harness) mint(t testing.TB, r captoken.Restrictions) string {
	t.Helper()
	tok, _, err := h.Auth.Mint(r)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// response is what do returns.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	JSON   map[string]any // nil if the body is not a JSON object
}

// do sends one request. body is sent as is when it is a string or []byte,
// nothing when nil, and JSON-encoded otherwise. token is sent as a bearer
// token unless empty. hdr adds headers (name, value pairs).
func (h *harness) do(t testing.TB, method, path, token string, body any, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, h.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the response: %v", method, path, err)
	}
	r := response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	var m map[string]any
	if json.Unmarshal(raw, &m) == nil {
		r.JSON = m
	}
	return r
}

// decodeInto decodes r's body strictly into v.
func (r response) decodeInto(t testing.TB, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(r.Raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %T from %s: %v", v, r.Raw, err)
	}
}

// createKey makes a key through the API and returns its kid (#v1).
func (h *harness) createKey(t testing.TB, tenant, purpose, alg string) string {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/keys", h.Admin, api.CreateKeyRequest{Tenant: tenant, Purpose: purpose, Alg: alg})
	if r.Status != http.StatusCreated {
		t.Fatalf("create %s/%s/%s: %d %s", tenant, purpose, alg, r.Status, r.Raw)
	}
	var out api.CreateKeyResponse
	r.decodeInto(t, &out)
	return out.KID
}

// signPayload signs a payload_b3 with the admin token.
func (h *harness) signPayload(t testing.TB, kid, payloadB3 string) api.SignResponse {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/sign", h.Admin, api.SignRequest{KID: kid, PayloadB3: payloadB3})
	if r.Status != http.StatusOK {
		t.Fatalf("sign with %s: %d %s", kid, r.Status, r.Raw)
	}
	var out api.SignResponse
	r.decodeInto(t, &out)
	return out
}

// storeState is everything the store holds, with revisions.
type storeState struct {
	Revision int64
	Items    []storage.Item
}

func (h *harness) snapshot(t testing.TB) storeState {
	t.Helper()
	ctx := context.Background()
	items, err := h.Store.List(ctx, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := h.Store.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return storeState{Revision: rev, Items: items}
}

func (a storeState) equal(b storeState) bool { return reflect.DeepEqual(a, b) }

// diff names the keys that differ between two snapshots.
func (a storeState) diff(b storeState) []string {
	am := map[string]storage.Item{}
	for _, it := range a.Items {
		am[it.Key] = it
	}
	var out []string
	seen := map[string]bool{}
	for _, it := range b.Items {
		seen[it.Key] = true
		if old, ok := am[it.Key]; !ok {
			out = append(out, "added "+it.Key)
		} else if !reflect.DeepEqual(old, it) {
			out = append(out, "changed "+it.Key)
		}
	}
	for k := range am {
		if !seen[k] {
			out = append(out, "removed "+k)
		}
	}
	return out
}

// envelopeKeys are the fields of the error envelope (SPEC §4.1), exactly.
var envelopeKeys = []string{"code", "message", "retryable", "hint", "ts", "request_id"}

// checkEnvelope checks that r is a contract error answer: the envelope
// shape and nothing else, with code and a status that matches it.
func checkEnvelope(t testing.TB, r response, code api.Code) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.Raw, &top); err != nil {
		t.Errorf("body is not a JSON object: %v: %q", err, r.Raw)
		return
	}
	if len(top) != 1 || top["error"] == nil {
		t.Errorf("body must be exactly {\"error\":{...}}, got %s", r.Raw)
		return
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal(top["error"], &inner); err != nil {
		t.Errorf("error is not an object: %s", r.Raw)
		return
	}
	if len(inner) != len(envelopeKeys) {
		t.Errorf("error has %d fields, want exactly %v: %s", len(inner), envelopeKeys, r.Raw)
	}
	for _, k := range envelopeKeys {
		if _, ok := inner[k]; !ok {
			t.Errorf("error lacks %q: %s", k, r.Raw)
		}
	}
	var e api.Error
	dec := json.NewDecoder(bytes.NewReader(r.Raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Errorf("envelope field types: %v: %s", err, r.Raw)
		return
	}
	if e.Err.Code != code {
		t.Errorf("code = %s, want %s (message %q)", e.Err.Code, code, e.Err.Message)
	}
	if e.Err.Message == "" || e.Err.Hint == "" {
		t.Errorf("empty message or hint: %s", r.Raw)
	}
	if e.Err.Retryable != e.Err.Code.Retryable() {
		t.Errorf("retryable = %v for %s", e.Err.Retryable, e.Err.Code)
	}
	if ts, err := time.Parse(time.RFC3339, e.Err.TS); err != nil || time.Since(ts) > time.Hour || time.Until(ts) > time.Minute {
		t.Errorf("ts %q is not a current RFC 3339 time (%v)", e.Err.TS, err)
	}
	if id := r.Header.Get("X-Request-Id"); e.Err.RequestID == "" || e.Err.RequestID != id {
		t.Errorf("request_id %q does not match X-Request-Id %q", e.Err.RequestID, id)
	}
}
