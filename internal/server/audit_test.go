package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"lukechampine.com/blake3"

	"github.com/ron-kms/ron-kms/internal/audit"
)

// hres is one HTTP answer.
type hres struct {
	status int
	reqID  string
	header http.Header
	raw    []byte
	body   map[string]any
}

// httpDo sends one request to r; body is JSON-encoded unless nil.
func httpDo(t *testing.T, r *running, method, path, token string, body any) hres {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := hres{status: resp.StatusCode, reqID: resp.Header.Get("X-Request-Id"), header: resp.Header, raw: raw}
	json.Unmarshal(raw, &out.body)
	return out
}

func (h hres) str(path ...string) string {
	var v any = h.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

func readToken(t *testing.T, dataDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// auditRecords verifies the audit log of dataDir and returns its records.
func auditRecords(t *testing.T, dataDir string) (audit.Report, []audit.Record) {
	t.Helper()
	pub, err := audit.ReadPublicKeyFile(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(dataDir, audit.DirName)
	rep, err := audit.Verify(dir, pub)
	if err != nil {
		t.Fatalf("audit.Verify: %v", err)
	}
	var recs []audit.Record
	err = audit.Tail(context.Background(), dir, -1, false, 0, func(e audit.Entry) error {
		if e.Record != nil {
			recs = append(recs, *e.Record)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep, recs
}

// readAuditFiles returns the bytes of every audit log file.
func readAuditFiles(t *testing.T, dataDir string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, audit.DirName, "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no audit files: %v", err)
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestAuditEveryOperation drives every kind of operation and denial through
// the HTTP API of a real server, then reads the log: each request left
// exactly one record (with one item per item for a batch) with the right
// op, result, code, actor and input hash, the log verifies, and no token, payload,
// signature, plaintext or ciphertext is in it.
func TestAuditEveryOperation(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	admin := readToken(t, cfg.DataDir)

	type want struct {
		what              string
		reqID             string
		op                string
		results, codes    []string // one per record, or per item of a batch
		batch             bool     // one record with items
		actor             string   // "admin", "none" or a token id
		input             []byte   // expected input_b3 of the first record, if any
		tenant, kidPrefix string
		secrets           []string // must not appear in the log
	}
	var wants []want
	var secrets []string
	expect := func(what string, res hres, status int, w want) hres {
		t.Helper()
		if res.status != status {
			t.Fatalf("%s: status %d, want %d: %s", what, res.status, status, res.raw)
		}
		w.what, w.reqID = what, res.reqID
		if w.results == nil {
			w.results, w.codes = []string{audit.ResultOK}, []string{""}
		}
		wants = append(wants, w)
		return res
	}
	ok := func(op string) want { return want{op: op, actor: "admin"} }
	denied := func(op, code, actor string) want {
		return want{op: op, actor: actor, results: []string{audit.ResultDenied}, codes: []string{code}}
	}
	failed := func(op, code string) want {
		return want{op: op, actor: "admin", results: []string{audit.ResultError}, codes: []string{code}}
	}

	// Tokens (token minting is audited too).
	readTok := expect("mint read", httpDo(t, r, "POST", "/v1/kms/tokens", admin, map[string]any{"scopes": []string{"kms:read"}}), 201, ok("token_mint"))
	otherTok := expect("mint other", httpDo(t, r, "POST", "/v1/kms/tokens", admin, map[string]any{"scopes": []string{"kms:sign"}, "tenant": "other"}), 201, ok("token_mint"))
	secrets = append(secrets, admin, readTok.str("token"), otherTok.str("token"))

	// Keys.
	sk := expect("create sign key", httpDo(t, r, "POST", "/v1/kms/keys", admin, map[string]any{"tenant": "acme", "purpose": "docs", "alg": "ed25519"}), 201,
		want{op: "create", actor: "admin", tenant: "acme", kidPrefix: "acme/docs/ed25519/"})
	name := sk.str("key", "name")
	wk := expect("create wrap key", httpDo(t, r, "POST", "/v1/kms/keys", admin, map[string]any{"tenant": "acme", "purpose": "dek", "alg": "x25519"}), 201, ok("create"))
	ek := expect("create aes key", httpDo(t, r, "POST", "/v1/kms/keys", admin, map[string]any{"tenant": "acme", "purpose": "pii", "alg": "aes-256-gcm"}), 201, ok("create"))
	keyPath := "/v1/kms/keys/" + name
	expect("get", httpDo(t, r, "GET", keyPath, admin, nil), 200, ok("get"))
	expect("list", httpDo(t, r, "GET", "/v1/kms/keys?tenant=acme", admin, nil), 200, ok("list"))
	expect("rotate", httpDo(t, r, "POST", keyPath+"/rotate", admin, map[string]any{}), 200,
		want{op: "rotate", actor: "admin", tenant: "acme", kidPrefix: name + "#v2"})
	expect("config", httpDo(t, r, "POST", keyPath+"/config", admin, map[string]any{"auto_rotate_days": 90}), 200, ok("configure"))
	expect("disable", httpDo(t, r, "POST", keyPath+"/versions/1/disable", admin, nil), 200, ok("disable"))
	expect("enable", httpDo(t, r, "POST", keyPath+"/versions/1/enable", admin, nil), 200, ok("enable"))
	expect("attest", httpDo(t, r, "GET", keyPath+"/attestation", admin, nil), 200, ok("attest"))
	expect("audit key", httpDo(t, r, "GET", "/v1/kms/audit/key", admin, nil), 200, ok("audit_key"))
	expect("wrapping key", httpDo(t, r, "GET", "/v1/kms/import/wrapping-key", admin, nil), 200, ok("import_wrapping_key"))

	// Sign and verify: input_b3 is BLAKE3-256 of the bytes signed.
	message := []byte("the quarterly figures, confidential")
	msgB64 := base64.StdEncoding.EncodeToString(message)
	inHash := blake3.Sum256(message)
	signed := expect("sign", httpDo(t, r, "POST", "/v1/kms/sign", admin, map[string]any{"kid": name, "message_b64": msgB64}), 200,
		want{op: "sign", actor: "admin", input: inHash[:], tenant: "acme", kidPrefix: name + "#v2"})
	sigs := signed.body["sigs"].([]any)
	sigB64 := sigs[0].(map[string]any)["signature_b64"].(string)
	secrets = append(secrets, msgB64, string(message), sigB64)
	expect("verify", httpDo(t, r, "POST", "/v1/kms/verify", admin, map[string]any{"kid": name, "message_b64": msgB64, "sigs": sigs}), 200,
		want{op: "verify", actor: "admin", input: inHash[:]})
	badSig := []map[string]any{{"alg": "ed25519", "signature_b64": base64.StdEncoding.EncodeToString(make([]byte, 64))}}
	expect("verify bad", httpDo(t, r, "POST", "/v1/kms/verify", admin, map[string]any{"kid": name, "message_b64": msgB64, "sigs": badSig}), 200,
		want{op: "verify", actor: "admin", results: []string{"invalid"}, codes: []string{""}})
	digest := strings.Repeat("cd", 32)
	digestBytes, _ := hex.DecodeString(digest)
	digestHash := blake3.Sum256(digestBytes)
	batch := map[string]any{"items": []map[string]any{
		{"kid": name, "payload_b3": digest},
		{"kid": "acme/docs/ed25519/01890a5d-ac96-774b-bcce-b302099a8057", "payload_b3": digest},
		{"kid": name, "message_b64": msgB64},
	}}
	expect("sign batch", httpDo(t, r, "POST", "/v1/kms/sign/batch", admin, batch), 200,
		want{op: "sign_batch", actor: "admin", input: digestHash[:], batch: true,
			results: []string{"ok", "error", "ok"}, codes: []string{"", "NotFound", ""}})
	vb := map[string]any{"items": []map[string]any{
		{"kid": name, "message_b64": msgB64, "sigs": sigs},
		{"kid": name, "message_b64": msgB64, "sigs": badSig},
	}}
	expect("verify batch", httpDo(t, r, "POST", "/v1/kms/verify/batch", admin, vb), 200,
		want{op: "verify_batch", actor: "admin", batch: true, results: []string{"ok", "invalid"}, codes: []string{"", ""}})

	// Wrap, unwrap, encrypt, decrypt.
	dataKey := bytes.Repeat([]byte{0x5a}, 32)
	dkB64 := base64.StdEncoding.EncodeToString(dataKey)
	// SPEC §9: data routes hash the envelope or ciphertext, never the
	// plaintext or data key, on the way in and on the way out.
	wrapped := httpDo(t, r, "POST", "/v1/kms/wrap", admin, map[string]any{"kid": wk.str("kid"), "plaintext_key_b64": dkB64})
	env := wrapped.str("wrapped_b64")
	envBytes, _ := base64.StdEncoding.DecodeString(env)
	envHash := blake3.Sum256(envBytes)
	expect("wrap", wrapped, 200, want{op: "wrap", actor: "admin", input: envHash[:]})
	expect("unwrap", httpDo(t, r, "POST", "/v1/kms/unwrap", admin, map[string]any{"wrapped_b64": env}), 200,
		want{op: "unwrap", actor: "admin", input: envHash[:]})
	pt := []byte("social security number 078-05-1120")
	ptB64 := base64.StdEncoding.EncodeToString(pt)
	enc := httpDo(t, r, "POST", "/v1/kms/encrypt", admin, map[string]any{"kid": ek.str("kid"), "plaintext_b64": ptB64})
	ct := enc.str("ciphertext_b64")
	ctBytes, _ := base64.StdEncoding.DecodeString(ct)
	ctHash := blake3.Sum256(ctBytes)
	expect("encrypt", enc, 200, want{op: "encrypt", actor: "admin", input: ctHash[:]})
	expect("decrypt", httpDo(t, r, "POST", "/v1/kms/decrypt", admin, map[string]any{"ciphertext_b64": ct}), 200,
		want{op: "decrypt", actor: "admin", input: ctHash[:]})
	secrets = append(secrets, dkB64, string(pt), ptB64, ct, env)

	// Backup (streams; audited before its first byte).
	expect("backup", httpDo(t, r, "GET", "/v1/kms/backup", admin, nil), 200, ok("backup"))

	// Denials and failures.
	expect("no token", httpDo(t, r, "POST", "/v1/kms/sign", "", map[string]any{"kid": name, "payload_b3": digest}), 401,
		denied("sign", "Unauthenticated", "none"))
	expect("bad token", httpDo(t, r, "POST", "/v1/kms/sign", admin[:len(admin)-4]+"AAAA", map[string]any{"kid": name, "payload_b3": digest}), 401,
		denied("sign", "Unauthenticated", "none"))
	expect("no scope", httpDo(t, r, "POST", "/v1/kms/sign", readTok.str("token"), map[string]any{"kid": name, "payload_b3": digest}), 403,
		denied("sign", "NoCapability", readTok.str("id")))
	w := denied("sign", "NoCapability", otherTok.str("id"))
	w.tenant, w.kidPrefix = "acme", name
	expect("other tenant", httpDo(t, r, "POST", "/v1/kms/sign", otherTok.str("token"), map[string]any{"kid": name, "payload_b3": digest}), 403, w)
	expect("denied rotate", httpDo(t, r, "POST", keyPath+"/rotate", readTok.str("token"), map[string]any{}), 403,
		denied("rotate", "NoCapability", readTok.str("id")))
	expect("bad request", httpDo(t, r, "POST", "/v1/kms/sign", admin, map[string]any{"kid": "not a kid", "payload_b3": digest}), 400,
		failed("sign", "BadRequest"))
	expect("conflict", httpDo(t, r, "POST", "/v1/kms/sign", admin, map[string]any{"kid": name + "#v1", "payload_b3": digest}), 409,
		failed("sign", "Conflict"))
	expect("batch too large", httpDo(t, r, "POST", "/v1/kms/sign/batch", admin, map[string]any{"items": []any{}}), 400,
		failed("sign_batch", "BadRequest"))

	// Probes are not operations: they leave no record.
	for _, p := range []string{"/healthz", "/readyz", "/version", "/metrics"} {
		if res := httpDo(t, r, "GET", p, "", nil); res.status != 200 {
			t.Fatalf("%s: %d %s", p, res.status, res.raw)
		}
	}

	r.shutdown(t)
	rep, recs := auditRecords(t, cfg.DataDir)
	if len(rep.Warnings) != 0 {
		t.Errorf("audit.Verify warnings: %v", rep.Warnings)
	}
	byReq := map[string][]audit.Record{}
	for _, rec := range recs {
		byReq[rec.RequestID] = append(byReq[rec.RequestID], rec)
	}
	total := 0
	adminID := ""
	for _, rec := range byReq[wants[0].reqID] {
		adminID = rec.Actor
	}
	if len(adminID) == 0 {
		t.Fatal("the admin token's id is not recorded")
	}
	for _, w := range wants {
		got := byReq[w.reqID]
		total += len(got)
		if w.batch {
			// One record; its items are what the per-record checks below
			// look at (SPEC §9).
			if len(got) != 1 {
				t.Errorf("%s: %d records, want 1 for the batch", w.what, len(got))
				continue
			}
			b := got[0]
			if b.Count != uint64(len(b.Items)) {
				t.Errorf("%s: count %d for %d items", w.what, b.Count, len(b.Items))
			}
			got = nil
			for _, it := range b.Items {
				got = append(got, audit.Record{Op: b.Op, Actor: b.Actor, Kid: it.Kid, InputB3: it.InputB3, Result: it.Result, Code: it.Code, Tenant: b.Tenant})
			}
		}
		if len(got) != len(w.results) {
			t.Errorf("%s: %d records, want %d", w.what, len(got), len(w.results))
			continue
		}
		actor := w.actor
		switch actor {
		case "admin":
			actor = adminID
		case "none":
			actor = ""
		}
		for i, rec := range got {
			if rec.Op != w.op || rec.Result != w.results[i] || rec.Code != w.codes[i] || rec.Actor != actor {
				t.Errorf("%s[%d]: op %q result %q code %q actor %q; want %q %q %q %q",
					w.what, i, rec.Op, rec.Result, rec.Code, rec.Actor, w.op, w.results[i], w.codes[i], actor)
			}
		}
		if w.input != nil && !bytes.Equal(got[0].InputB3, w.input) {
			t.Errorf("%s: input_b3 %x, want %x", w.what, got[0].InputB3, w.input)
		}
		if w.tenant != "" && got[0].Tenant != w.tenant {
			t.Errorf("%s: tenant %q, want %q", w.what, got[0].Tenant, w.tenant)
		}
		if w.kidPrefix != "" && !strings.HasPrefix(got[0].Kid, w.kidPrefix) {
			t.Errorf("%s: kid %q, want prefix %q", w.what, got[0].Kid, w.kidPrefix)
		}
	}
	// Nothing else was recorded: no probe, no stray record.
	if total != len(recs) {
		t.Errorf("%d records for the requests made, %d in the log", total, len(recs))
	}

	// No token, payload, signature or key material in the log.
	raw := readAuditFiles(t, cfg.DataDir)
	for _, s := range secrets {
		if s != "" && bytes.Contains(raw, []byte(s)) {
			t.Errorf("the audit log holds a secret or a payload: %.24q…", s)
		}
	}
	for _, b := range [][]byte{message, dataKey, pt, envBytes} {
		if bytes.Contains(raw, b) || bytes.Contains(raw, []byte(hex.EncodeToString(b))) {
			t.Errorf("the audit log holds input bytes %.16x…", b)
		}
	}
}

// failingSink wraps an audit sink and fails while fail is set.
type failingSink struct {
	auditSink
	fail *atomic.Bool
}

var errDiskGone = errors.New("audit: log unavailable: writing audit-000001.log: injected: no space left on device")

func (f *failingSink) AppendAll(ctx context.Context, rs []audit.Record) error {
	if f.fail.Load() {
		return errDiskGone
	}
	return f.auditSink.AppendAll(ctx, rs)
}

func (f *failingSink) Healthy() error {
	if f.fail.Load() {
		return errDiskGone
	}
	return f.auditSink.Healthy()
}

// TestAuditFailureIs503: while the audit log cannot be written, sign answers
// 503 StoreUnavailable with Retry-After and no signature, and /readyz names
// the audit log; once it can, both recover.
func TestAuditFailureIs503(t *testing.T) {
	cfg := testConfig(t)
	var fail atomic.Bool
	cfg.wrapAudit = func(s auditSink) auditSink { return &failingSink{s, &fail} }
	r := start(t, cfg)
	admin := readToken(t, cfg.DataDir)
	k := httpDo(t, r, "POST", "/v1/kms/keys", admin, map[string]any{"tenant": "acme", "purpose": "docs", "alg": "ed25519"})
	if k.status != 201 {
		t.Fatalf("create: %d %s", k.status, k.raw)
	}
	sign := map[string]any{"kid": k.str("kid"), "payload_b3": strings.Repeat("ab", 32)}

	fail.Store(true)
	for _, req := range []struct {
		path string
		body any
	}{{"/v1/kms/sign", sign}, {"/v1/kms/sign/batch", map[string]any{"items": []any{sign, sign}}}, {"/v1/kms/keys", map[string]any{"tenant": "acme", "purpose": "x", "alg": "ed25519"}}} {
		res := httpDo(t, r, "POST", req.path, admin, req.body)
		if res.status != 503 || res.str("error", "code") != "StoreUnavailable" || res.header.Get("Retry-After") == "" {
			t.Fatalf("%s with a failing audit log: %d %v %s", req.path, res.status, res.header, res.raw)
		}
		if bytes.Contains(res.raw, []byte("signature_b64")) || bytes.Contains(res.raw, []byte(`"sigs"`)) {
			t.Fatalf("%s: a signature was returned without its audit record: %s", req.path, res.raw)
		}
		if !strings.Contains(res.str("error", "message"), "audit") {
			t.Errorf("%s: message does not name the audit log: %s", req.path, res.raw)
		}
	}
	// A denial cannot be recorded either: it is not answered 401.
	if res := httpDo(t, r, "POST", "/v1/kms/sign", "", sign); res.status != 503 {
		t.Errorf("unauthenticated with a failing audit log: %d, want 503", res.status)
	}
	rz := httpDo(t, r, "GET", "/readyz", "", nil)
	if rz.status != 503 || !strings.Contains(rz.str("error", "message"), "audit log: ") {
		t.Fatalf("/readyz with a failing audit log: %d %s", rz.status, rz.raw)
	}
	if hz := httpDo(t, r, "GET", "/healthz", "", nil); hz.status != 200 {
		t.Errorf("/healthz: %d", hz.status)
	}

	fail.Store(false)
	if res := httpDo(t, r, "POST", "/v1/kms/sign", admin, sign); res.status != 200 {
		t.Fatalf("sign after recovery: %d %s", res.status, res.raw)
	}
	if rz := httpDo(t, r, "GET", "/readyz", "", nil); rz.status != 200 {
		t.Fatalf("/readyz after recovery: %d %s", rz.status, rz.raw)
	}
	r.shutdown(t)
	_, recs := auditRecords(t, cfg.DataDir)
	if n := len(recs); n != 2 { // the create and the last sign
		t.Errorf("%d records, want 2 (nothing of the failed period)", n)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRollback: an old kms.db put back under a newer audit log is noticed at
// start: the server serves reads and verify but refuses writes (and signing)
// with 503 naming the rollback, and /readyz says why, until it is started
// with --accept-rollback, which is recorded; the log still verifies.
func TestRollback(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	admin := readToken(t, cfg.DataDir)
	k := httpDo(t, r, "POST", "/v1/kms/keys", admin, map[string]any{"tenant": "acme", "purpose": "docs", "alg": "ed25519"})
	if k.status != 201 {
		t.Fatalf("create: %d %s", k.status, k.raw)
	}
	name := k.str("key", "name")
	sign := map[string]any{"kid": name, "payload_b3": strings.Repeat("ab", 32)}
	signed := httpDo(t, r, "POST", "/v1/kms/sign", admin, sign)
	r.shutdown(t)

	// An old copy of the store, taken while the server was stopped.
	old := filepath.Join(t.TempDir(), "kms.db.old")
	copyFile(t, filepath.Join(cfg.DataDir, DBFile), old)

	r = start(t, cfg)
	for range 3 {
		if res := httpDo(t, r, "POST", "/v1/kms/keys/"+name+"/rotate", admin, map[string]any{}); res.status != 200 {
			t.Fatalf("rotate: %d %s", res.status, res.raw)
		}
	}
	r.shutdown(t)
	copyFile(t, old, filepath.Join(cfg.DataDir, DBFile))

	// Started on the old store: up, but refusing writes.
	r = start(t, cfg)
	for _, req := range []struct{ method, path string }{
		{"POST", "/v1/kms/keys/" + name + "/rotate"},
		{"POST", "/v1/kms/keys"},
		{"POST", "/v1/kms/sign"},
		{"POST", "/v1/kms/tokens/revoke"},
	} {
		body := map[string]any{}
		switch req.path {
		case "/v1/kms/keys":
			body = map[string]any{"tenant": "acme", "purpose": "docs", "alg": "ed25519"}
		case "/v1/kms/sign":
			body = sign
		case "/v1/kms/tokens/revoke":
			body = map[string]any{"id": strings.Repeat("ab", 16)}
		}
		res := httpDo(t, r, req.method, req.path, admin, body)
		if res.status != 503 || res.str("error", "code") != "StoreUnavailable" || res.header.Get("Retry-After") == "" ||
			!strings.Contains(res.str("error", "message"), "rolled back") {
			t.Fatalf("%s %s on a rolled-back store: %d %s", req.method, req.path, res.status, res.raw)
		}
	}
	// Reads and verify still work.
	if res := httpDo(t, r, "GET", "/v1/kms/keys/"+name, admin, nil); res.status != 200 {
		t.Errorf("get on a rolled-back store: %d %s", res.status, res.raw)
	}
	vr := httpDo(t, r, "POST", "/v1/kms/verify", admin, map[string]any{"kid": name, "payload_b3": strings.Repeat("ab", 32), "sigs": signed.body["sigs"]})
	if vr.status != 200 || vr.body["ok"] != true {
		t.Errorf("verify on a rolled-back store: %d %s", vr.status, vr.raw)
	}
	rz := httpDo(t, r, "GET", "/readyz", "", nil)
	if rz.status != 503 || !strings.Contains(rz.str("error", "message"), "store rollback") ||
		!strings.Contains(rz.str("error", "message"), "--accept-rollback") {
		t.Fatalf("/readyz on a rolled-back store: %d %s", rz.status, rz.raw)
	}
	r.shutdown(t)

	// A restart without the flag still refuses: the log remembers.
	r = start(t, cfg)
	if res := httpDo(t, r, "POST", "/v1/kms/keys/"+name+"/rotate", admin, map[string]any{}); res.status != 503 {
		t.Fatalf("rotate after a second start on the old store: %d %s", res.status, res.raw)
	}
	r.shutdown(t)

	// The operator accepts the old store.
	cfg.AcceptRollback = true
	r = start(t, cfg)
	if res := httpDo(t, r, "POST", "/v1/kms/keys/"+name+"/rotate", admin, map[string]any{}); res.status != 200 {
		t.Fatalf("rotate after --accept-rollback: %d %s", res.status, res.raw)
	}
	if rz := httpDo(t, r, "GET", "/readyz", "", nil); rz.status != 200 {
		t.Fatalf("/readyz after --accept-rollback: %d %s", rz.status, rz.raw)
	}
	r.shutdown(t)

	// And later starts without the flag are fine.
	cfg.AcceptRollback = false
	r = start(t, cfg)
	if res := httpDo(t, r, "POST", "/v1/kms/sign", admin, sign); res.status != 200 {
		t.Fatalf("sign after the accepted rollback: %d %s", res.status, res.raw)
	}
	r.shutdown(t)

	_, recs := auditRecords(t, cfg.DataDir)
	accepted, refused := 0, 0
	for _, rec := range recs {
		if rec.Op == "accept_rollback" && rec.Result == audit.ResultOK {
			accepted++
		}
		if rec.Code == "StoreUnavailable" {
			refused++
		}
	}
	if accepted != 1 {
		t.Errorf("%d accept_rollback records, want 1", accepted)
	}
	if refused != 5 {
		t.Errorf("%d refused operations recorded, want 5", refused)
	}
}
