package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/audit"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

// auditedHarness is a harness whose audit log is a real audit.Log in dir.
func auditedHarness(t *testing.T) (*harness, *audit.Log, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), audit.DirName)
	l, err := audit.Open(dir, audit.Options{AuditKeySeed: bytes.Repeat([]byte{3}, ed25519.SeedSize)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return newHarnessAudited(t, nil, l), l, dir
}

// recordsOf reads the log in dir and returns the records of request id.
func recordsOf(t *testing.T, dir, id string) []audit.Record {
	t.Helper()
	var out []audit.Record
	err := audit.Tail(context.Background(), dir, -1, false, 0, func(e audit.Entry) error {
		if e.Record != nil && e.Record.RequestID == id {
			out = append(out, *e.Record)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type wantItem struct {
	kidPrefix string // the item's kid starts with it ("" for none)
	input     []byte // the bytes whose BLAKE3 is input_b3; nil for none
	result    string
	code      string
}

// checkBatchRecord checks that request id left exactly one record, of op,
// with the items want in order and a summary result.
func checkBatchRecord(t *testing.T, dir, id, op string, want []wantItem) audit.Record {
	t.Helper()
	rs := recordsOf(t, dir, id)
	if len(rs) != 1 {
		t.Fatalf("%s: %d records for the request, want exactly 1", op, len(rs))
	}
	r := rs[0]
	if r.Op != op || r.Count != uint64(len(want)) || len(r.Items) != len(want) {
		t.Fatalf("%s: record op %q count %d with %d items; want %q, %d items", op, r.Op, r.Count, len(r.Items), op, len(want))
	}
	allOK := true
	for i, w := range want {
		it := r.Items[i]
		if it.Result != w.result || it.Code != w.code {
			t.Errorf("%s item %d: result %q code %q, want %q %q", op, i, it.Result, it.Code, w.result, w.code)
		}
		if w.kidPrefix == "" && it.Kid != "" || !strings.HasPrefix(it.Kid, w.kidPrefix) {
			t.Errorf("%s item %d: kid %q, want prefix %q", op, i, it.Kid, w.kidPrefix)
		}
		var in []byte
		if w.input != nil {
			in = b3(w.input)
		}
		if !bytes.Equal(it.InputB3, in) {
			t.Errorf("%s item %d: input_b3 %x, want %x", op, i, it.InputB3, in)
		}
		allOK = allOK && w.result == audit.ResultOK
	}
	if wantRes := map[bool]string{true: audit.ResultOK, false: audit.ResultPartial}[allOK]; r.Result != wantRes || r.Code != "" {
		t.Errorf("%s: record result %q code %q, want %q and no code", op, r.Result, r.Code, wantRes)
	}
	return r
}

// TestBatchIsOneAuditRecord (SPEC §9): a sign or verify batch that ran
// leaves one record whose items are the request's items in order, each with
// its kid (with the version that signed), input hash, result and code; a
// batch refused as a whole leaves one ordinary record; the log verifies,
// and changing one item's input_b3 in the file breaks it at that record.
func TestBatchIsOneAuditRecord(t *testing.T) {
	h, l, dir := auditedHarness(t)
	acme := h.createKey(t, "acme", "docs", "ed25519")
	other := h.createKey(t, "other", "docs", "ed25519")
	acmeName, _, _ := strings.Cut(acme, "#")
	acmeOnly := h.mint(t, captoken.Restrictions{Tenant: "acme"})
	digest := bytes.Repeat([]byte{0xcd}, 32)
	msg := []byte("a message")
	missing := "acme/docs/ed25519/01890a5d-ac96-774b-bcce-b302099a8057"

	sb := api.SignBatchRequest{Items: []api.SignRequest{
		{KID: acmeName, PayloadB3: hex.EncodeToString(digest)},
		{KID: missing, PayloadB3: hex.EncodeToString(digest)},
		{KID: "not a kid", PayloadB3: hex.EncodeToString(digest)},
		{KID: other, PayloadB3: hex.EncodeToString(digest)},
		{KID: acme, PayloadB3: "zz"},
		api.SignRequest{KID: acme}.WithMessage(msg),
	}}
	res := h.do(t, "POST", "/v1/kms/sign/batch", acmeOnly, sb)
	if res.Status != http.StatusOK {
		t.Fatalf("sign batch: %d %s", res.Status, res.Raw)
	}
	var sr api.SignBatchResponse
	res.decodeInto(t, &sr)
	checkBatchRecord(t, dir, res.Header.Get("X-Request-Id"), "sign_batch", []wantItem{
		{acmeName + "#v1", digest, audit.ResultOK, ""},
		{missing, digest, audit.ResultError, string(api.CodeNotFound)},
		{"", nil, audit.ResultError, string(api.CodeBadRequest)},
		{other, nil, audit.ResultDenied, string(api.CodeNoCapability)},
		{acme, nil, audit.ResultError, string(api.CodeBadRequest)},
		{acme, msg, audit.ResultOK, ""},
	})
	if sr.Results[0].Error != nil || sr.Results[5].Error != nil || sr.Results[1].Error == nil {
		t.Fatalf("sign batch answered %s", res.Raw)
	}

	good := h.signPayload(t, acme, hex.EncodeToString(digest))
	bad := []api.Signature{{Alg: "ed25519", SignatureB64: api.EncodeB64(make([]byte, 64))}}
	vb := api.VerifyBatchRequest{Items: []api.VerifyRequest{
		{KID: acme, PayloadB3: hex.EncodeToString(digest), Sigs: good.Sigs},
		{KID: acme, PayloadB3: hex.EncodeToString(digest), Sigs: bad},
		{KID: missing, PayloadB3: hex.EncodeToString(digest), Sigs: good.Sigs},
	}}
	res = h.do(t, "POST", "/v1/kms/verify/batch", h.Admin, vb)
	if res.Status != http.StatusOK {
		t.Fatalf("verify batch: %d %s", res.Status, res.Raw)
	}
	vr := checkBatchRecord(t, dir, res.Header.Get("X-Request-Id"), "verify_batch", []wantItem{
		{acme, digest, audit.ResultOK, ""},
		{acme, digest, resultInvalid, ""},
		{missing, digest, audit.ResultError, string(api.CodeNotFound)},
	})
	if vr.Tenant != "acme" || vr.Alg != "ed25519" || vr.Kid != "" || vr.InputB3 != nil {
		t.Errorf("verify batch record: tenant %q alg %q kid %q input %x; want acme, ed25519 and no kid or input", vr.Tenant, vr.Alg, vr.Kid, vr.InputB3)
	}
	res = h.do(t, "POST", "/v1/kms/verify/batch", h.Admin, api.VerifyBatchRequest{Items: vb.Items[:1]})
	if vr := checkBatchRecord(t, dir, res.Header.Get("X-Request-Id"), "verify_batch", []wantItem{{acme, digest, audit.ResultOK, ""}}); vr.Result != audit.ResultOK {
		t.Errorf("all-ok batch: result %q", vr.Result)
	}

	// Refused as a whole: one record without items, as before.
	readOnly := h.mint(t, captoken.Restrictions{Scopes: []captoken.Scope{captoken.ScopeRead}})
	res = h.do(t, "POST", "/v1/kms/sign/batch", readOnly, sb)
	if res.Status != http.StatusForbidden {
		t.Fatalf("sign batch without the scope: %d %s", res.Status, res.Raw)
	}
	rs := recordsOf(t, dir, res.Header.Get("X-Request-Id"))
	if len(rs) != 1 || rs[0].Items != nil || rs[0].Result != audit.ResultDenied || rs[0].Code != string(api.CodeNoCapability) {
		t.Fatalf("denied batch: records %+v, want one denial without items", rs)
	}
	res = h.do(t, "POST", "/v1/kms/sign/batch", h.Admin, `{"items":[]}`)
	if rs := recordsOf(t, dir, res.Header.Get("X-Request-Id")); res.Status != http.StatusBadRequest || len(rs) != 1 || rs[0].Items != nil || rs[0].Code != string(api.CodeBadRequest) {
		t.Fatalf("empty batch: %d, records %+v", res.Status, rs)
	}

	// The log verifies; one changed item input does not.
	pub := l.PublicKey()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(dir, pub); err != nil {
		t.Fatalf("the log does not verify: %v", err)
	}
	target := recordsOf(t, dir, vr.RequestID)[0]
	name := filepath.Join(dir, audit.FileName(1))
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	old := `"input_b3":"` + hex.EncodeToString(target.Items[0].InputB3) + `","kid":"` + acme
	forged := `"input_b3":"` + hex.EncodeToString(b3([]byte("another input"))) + `","kid":"` + acme
	i := bytes.Index(data, []byte(`"request_id":"`+vr.RequestID+`"`))
	start := bytes.LastIndexByte(data[:i], '\n') + 1
	j := bytes.Index(data[start:], []byte(old))
	if i < 0 || j < 0 || start+j > i {
		t.Fatal("the verify batch record is not in the file as expected")
	}
	data = append(data[:start+j:start+j], append([]byte(forged), data[start+j+len(old):]...)...)
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = audit.Verify(dir, pub)
	var ve *audit.VerifyError
	if !errors.As(err, &ve) || ve.Seq != target.Seq {
		t.Fatalf("Verify after changing an item's input_b3: %v, want a failure at seq %d", err, target.Seq)
	}
}
