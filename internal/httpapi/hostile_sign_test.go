package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

// hostileSignRows is the rows of sign, verify and their batches.
func hostileSignRows(t *testing.T, f *hostileFixture) []hostileRow {
	h, kidA1, nameA, kidA2, nameB, absent := f.h, f.kidA1, f.nameA, f.kidA2, f.nameB, f.absent
	payload, sig, zeroSig, signReq, verifyReq, otherTenant := f.payload, f.sig, f.zeroSig, f.signReq, f.verifyReq, f.otherTenant
	sign, verify, signBatch, verifyBatch := f.sign, f.verify, f.signBatch, f.verifyBatch
	var rows []hostileRow
	add := func(r ...hostileRow) { rows = append(rows, r...) }

	add(
		// sign
		sign("older version", api.SignRequest{KID: kidA1, PayloadB3: payload}, 409, api.CodeConflict),
		sign("absent version", api.SignRequest{KID: nameA + "#v9", PayloadB3: payload}, 404, api.CodeNotFound),
		sign("absent key", api.SignRequest{KID: absent, PayloadB3: payload}, 404, api.CodeNotFound),
		sign("kid wrong type", `{"kid":1,"payload_b3":"`+payload+`"}`, 400, api.CodeBadRequest),
		sign("kid missing", `{"payload_b3":"`+payload+`"}`, 400, api.CodeBadRequest),
		sign("payload upper case", api.SignRequest{KID: nameA, PayloadB3: strings.ToUpper(payload)}, 400, api.CodeBadRequest),
		sign("payload 63 chars", api.SignRequest{KID: nameA, PayloadB3: payload[:63]}, 400, api.CodeBadRequest),
		sign("payload 65 chars", api.SignRequest{KID: nameA, PayloadB3: payload + "a"}, 400, api.CodeBadRequest),
		sign("payload not hex", api.SignRequest{KID: nameA, PayloadB3: "zz" + payload[2:]}, 400, api.CodeBadRequest),
		sign("payload base64", api.SignRequest{KID: nameA, PayloadB3: base64.StdEncoding.EncodeToString(make([]byte, 32))}, 400, api.CodeBadRequest),
		sign("payload wrong type", `{"kid":"`+nameA+`","payload_b3":[1,2]}`, 400, api.CodeBadRequest),
		sign("payload and message", api.SignRequest{KID: nameA, PayloadB3: payload, MessageB64: "aGk="}, 400, api.CodeBadRequest),
		sign("neither payload nor message", api.SignRequest{KID: nameA}, 400, api.CodeBadRequest),
		sign("message unpadded", api.SignRequest{KID: nameA, MessageB64: "aGk"}, 400, api.CodeBadRequest),
		sign("message url alphabet", api.SignRequest{KID: nameA, MessageB64: "-_8="}, 400, api.CodeBadRequest),
		sign("message newline", api.SignRequest{KID: nameA, MessageB64: "aGVs\nbG8="}, 400, api.CodeBadRequest),
		sign("message trailing bits", api.SignRequest{KID: nameA, MessageB64: "aGl="}, 400, api.CodeBadRequest),
		sign("message over 64 KiB", api.SignRequest{KID: nameA, MessageB64: api.EncodeB64(make([]byte, api.MaxMessage+1))}, 400, api.CodeBadRequest),
		sign("context bad base64", api.SignRequest{KID: nameA, PayloadB3: payload, ContextB64: "%%%"}, 400, api.CodeBadRequest),
		sign("context 256 bytes", api.SignRequest{KID: nameA, PayloadB3: payload, ContextB64: api.EncodeB64(make([]byte, 256))}, 400, api.CodeBadRequest),
		sign("op_id too long", api.SignRequest{KID: nameA, PayloadB3: payload, OpID: strings.Repeat("o", 129)}, 400, api.CodeBadRequest),
		sign("control: payload", signReq, 200, ""),
		sign("control: message of 64 KiB", api.SignRequest{KID: nameA, MessageB64: api.EncodeB64(make([]byte, api.MaxMessage))}, 200, ""),
		sign("control: body of exactly the limit", func() string {
			b := js(signReq)
			return b + strings.Repeat(" ", maxBody-len(b))
		}(), 200, ""),
		sign("body one byte over the limit", func() string {
			b := js(signReq)
			return b + strings.Repeat(" ", maxBody-len(b)+1)
		}(), 413, api.CodeTooLarge),
		hostileRow{name: "sign/key-prefix token", method: "POST", path: "/v1/kms/sign", body: signReq, status: 403, code: api.CodeNoCapability,
			token: h.mint(t, captoken.Restrictions{KeyPrefix: "acme/other/"})},
		hostileRow{name: "sign/alg-limited token", method: "POST", path: "/v1/kms/sign", body: signReq, status: 403, code: api.CodeNoCapability,
			token: h.mint(t, captoken.Restrictions{Algs: []string{"ml-dsa-65"}})},
		hostileRow{name: "sign/other tenant token on its own key control", method: "POST", path: "/v1/kms/sign", body: api.SignRequest{KID: nameB, PayloadB3: payload}, token: otherTenant, status: 200},

		// verify
		verify("absent key", api.VerifyRequest{KID: absent, PayloadB3: payload, Sigs: sig.Sigs}, 404, api.CodeNotFound),
		verify("absent version", api.VerifyRequest{KID: nameA + "#v9", PayloadB3: payload, Sigs: sig.Sigs}, 404, api.CodeNotFound),
		verify("sigs missing", api.VerifyRequest{KID: nameA, PayloadB3: payload}, 400, api.CodeBadRequest),
		verify("sigs empty", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":[]}`, 400, api.CodeBadRequest),
		verify("five sigs", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: append(append(append([]api.Signature{}, sig.Sigs...), sig.Sigs...), sig.Sigs[0], sig.Sigs[0], sig.Sigs[0])}, 400, api.CodeBadRequest),
		verify("sigs wrong type", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":"abc"}`, 400, api.CodeBadRequest),
		verify("sig wrong type", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":[1]}`, 400, api.CodeBadRequest),
		verify("sig unknown field", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":[{"alg":"ed25519","signature_b64":"`+zeroSig+`","x":1}]}`, 400, api.CodeBadRequest),
		verify("sig alg unknown", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "rsa", SignatureB64: zeroSig}}}, 400, api.CodeBadRequest),
		verify("sig alg of another kind", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ml-dsa-65", SignatureB64: zeroSig}}}, 400, api.CodeBadRequest),
		verify("two sigs for a single key", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{sig.Sigs[0], sig.Sigs[0]}}, 400, api.CodeBadRequest),
		verify("sig unpadded", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: strings.TrimRight(zeroSig, "=")}}}, 400, api.CodeBadRequest),
		verify("sig url alphabet", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: strings.NewReplacer("+", "-", "/", "_").Replace(sig.Sigs[0].SignatureB64) + "-_"}}}, 400, api.CodeBadRequest),
		verify("sig newline", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: zeroSig[:40] + "\n" + zeroSig[40:]}}}, 400, api.CodeBadRequest),
		verify("payload upper case", api.VerifyRequest{KID: nameA, PayloadB3: strings.ToUpper(payload), Sigs: sig.Sigs}, 400, api.CodeBadRequest),
		verify("payload 63 chars", api.VerifyRequest{KID: nameA, PayloadB3: payload[:63], Sigs: sig.Sigs}, 400, api.CodeBadRequest),
		verify("payload 65 chars", api.VerifyRequest{KID: nameA, PayloadB3: payload + "0", Sigs: sig.Sigs}, 400, api.CodeBadRequest),
		verify("message bad base64", api.VerifyRequest{KID: nameA, MessageB64: "a", Sigs: sig.Sigs}, 400, api.CodeBadRequest),
		verify("payload and message", api.VerifyRequest{KID: nameA, PayloadB3: payload, MessageB64: "aGk=", Sigs: sig.Sigs}, 400, api.CodeBadRequest),
		verify("context bad base64", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, ContextB64: "a==="}, 400, api.CodeBadRequest),
		verify("policy mode unknown", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, Policy: &api.VerifyPolicy{Mode: "xor"}}, 400, api.CodeBadRequest),
		verify("policy mode upper case", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, Policy: &api.VerifyPolicy{Mode: "AND"}}, 400, api.CodeBadRequest),
		verify("policy pq_only on ed25519", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, Policy: &api.VerifyPolicy{Mode: "pq_only"}}, 400, api.CodeUnsupported),
		verify("policy wrong type", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":[],"policy":"and"}`, 400, api.CodeBadRequest),
		verify("policy unknown field", `{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":[],"policy":{"mode":"and","floor":"or"}}`, 400, api.CodeBadRequest),
		hostileRow{name: "verify/control: good signature", method: "POST", path: "/v1/kms/verify", token: h.Admin, body: verifyReq, status: 200,
			check: wantVerified(true)},
		hostileRow{name: "verify/control: good signature with the kid that signed", method: "POST", path: "/v1/kms/verify", token: h.Admin,
			body: api.VerifyRequest{KID: kidA2, PayloadB3: payload, Sigs: sig.Sigs}, status: 200, check: wantVerified(true)},
		hostileRow{name: "verify/wrong signature is 200 ok false", method: "POST", path: "/v1/kms/verify", token: h.Admin,
			body: api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: zeroSig}}}, status: 200, check: wantVerified(false)},
		hostileRow{name: "verify/signature of v2 under v1 is ok false", method: "POST", path: "/v1/kms/verify", token: h.Admin,
			body: api.VerifyRequest{KID: kidA1, PayloadB3: payload, Sigs: sig.Sigs}, status: 200, check: wantVerified(false)},
		hostileRow{name: "verify/other payload is ok false", method: "POST", path: "/v1/kms/verify", token: h.Admin,
			body: api.VerifyRequest{KID: nameA, PayloadB3: strings.Repeat("cd", 32), Sigs: sig.Sigs}, status: 200, check: wantVerified(false)},

		// sign/batch
		signBatch("items missing", `{}`, 400, api.CodeBadRequest),
		signBatch("items empty", `{"items":[]}`, 400, api.CodeBadRequest),
		signBatch("items null", `{"items":null}`, 400, api.CodeBadRequest),
		signBatch("items wrong type", `{"items":{"kid":"x"}}`, 400, api.CodeBadRequest),
		signBatch("item wrong type", `{"items":[1]}`, 400, api.CodeBadRequest),
		signBatch("item unknown field", `{"items":[{"kid":"`+nameA+`","payload_b3":"`+payload+`","x":1}]}`, 400, api.CodeBadRequest),
		signBatch("1001 items", api.SignBatchRequest{Items: make([]api.SignRequest, api.MaxBatch+1)}, 413, api.CodeTooLarge),
		signBatch("1001 good items", api.SignBatchRequest{Items: func() []api.SignRequest {
			s := make([]api.SignRequest, api.MaxBatch+1)
			for i := range s {
				s[i] = signReq
			}
			return s
		}()}, 413, api.CodeTooLarge),
		signBatch("1000 bad items", api.SignBatchRequest{Items: make([]api.SignRequest, api.MaxBatch)}, 200, "", codes(api.MaxBatch, api.CodeBadRequest)...),
		signBatch("per-item errors", api.SignBatchRequest{Items: []api.SignRequest{
			{KID: kidA1, PayloadB3: payload},
			{KID: absent, PayloadB3: payload},
			{KID: nameA, PayloadB3: "AB"},
			{KID: nameA, MessageB64: "aGk"},
			{KID: nameA, PayloadB3: payload, ContextB64: "-_-_"},
			signReq,
		}}, 200, "", api.CodeConflict, api.CodeNotFound, api.CodeBadRequest, api.CodeBadRequest, api.CodeBadRequest, ""),

		// verify/batch
		verifyBatch("items missing", `{}`, 400, api.CodeBadRequest),
		verifyBatch("items empty", `{"items":[]}`, 400, api.CodeBadRequest),
		verifyBatch("items wrong type", `{"items":"x"}`, 400, api.CodeBadRequest),
		verifyBatch("item sigs wrong type", `{"items":[{"kid":"`+nameA+`","payload_b3":"`+payload+`","sigs":{}}]}`, 400, api.CodeBadRequest),
		verifyBatch("1001 items", api.VerifyBatchRequest{Items: make([]api.VerifyRequest, api.MaxBatch+1)}, 413, api.CodeTooLarge),
		verifyBatch("1000 bad items", api.VerifyBatchRequest{Items: make([]api.VerifyRequest, api.MaxBatch)}, 200, "", codes(api.MaxBatch, api.CodeBadRequest)...),
		verifyBatch("per-item errors", api.VerifyBatchRequest{Items: []api.VerifyRequest{
			{KID: absent, PayloadB3: payload, Sigs: sig.Sigs},
			{KID: nameA, PayloadB3: payload},
			{KID: nameA, PayloadB3: payload, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: "***"}}},
			{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, Policy: &api.VerifyPolicy{Mode: "pq_only"}},
			verifyReq,
		}}, 200, "", api.CodeNotFound, api.CodeBadRequest, api.CodeBadRequest, api.CodeUnsupported, ""),
	)
	return rows
}

// hostileOtherAlgRows is the sign and verify rows with keys of other kinds
// and algorithms.
func hostileOtherAlgRows(t *testing.T, f *hostileFixture) []hostileRow {
	nameA, kidA2, payload, sig, zeroSig, nameW := f.nameA, f.kidA2, f.payload, f.sig, f.zeroSig, f.nameW
	nameWB, nameE, kidC, nameC, sigC, nameM := f.nameWB, f.nameE, f.kidC, f.nameC, f.sigC, f.nameM
	ctx255, sigMOut := f.ctx255, f.sigMOut
	sign, verify := f.sign, f.verify
	var rows []hostileRow
	add := func(r ...hostileRow) { rows = append(rows, r...) }

	verifiedHybrid := func(ok bool, mode string, checked ...string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var out api.VerifyResponse
			r.decodeInto(t, &out)
			if out.OK != ok || out.Details.SatisfiedMode != mode || strings.Join(out.Details.Checked, ",") != strings.Join(checked, ",") {
				t.Errorf("verify answered %+v; want ok %v, satisfied_mode %q, checked %v", out, ok, mode, checked)
			}
		}
	}

	add(
		// sign and verify with keys of other kinds and algorithms
		sign("KEM key", api.SignRequest{KID: nameW, PayloadB3: payload}, 400, api.CodeUnsupported),
		sign("x25519 key", api.SignRequest{KID: nameWB, PayloadB3: payload}, 400, api.CodeUnsupported),
		sign("aes key", api.SignRequest{KID: nameE, PayloadB3: payload}, 400, api.CodeUnsupported),
		sign("context on ed25519", api.SignRequest{KID: nameA, PayloadB3: payload, ContextB64: "Y3R4"}, 400, api.CodeUnsupported),
		sign("context 256 bytes on ml-dsa-65", api.SignRequest{KID: nameM, PayloadB3: payload, ContextB64: b64n(api.MaxContext + 1)}, 400, api.CodeBadRequest),
		sign("context 256 bytes on the hybrid", api.SignRequest{KID: nameC, PayloadB3: payload, ContextB64: b64n(api.MaxContext + 1)}, 400, api.CodeBadRequest),
		sign("control: context 255 bytes on ml-dsa-65", api.SignRequest{KID: nameM, PayloadB3: payload, ContextB64: ctx255}, 200, ""),
		sign("control: hybrid", api.SignRequest{KID: nameC, MessageB64: "aGk="}, 200, ""),
		verify("KEM key", api.VerifyRequest{KID: nameW, PayloadB3: payload, Sigs: sig.Sigs}, 400, api.CodeUnsupported),
		verify("context on ed25519", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sig.Sigs, ContextB64: "Y3R4"}, 400, api.CodeUnsupported),
		verify("context 256 bytes on ml-dsa-65", api.VerifyRequest{KID: nameM, PayloadB3: payload, Sigs: sigMOut.Sigs, ContextB64: b64n(api.MaxContext + 1)}, 400, api.CodeBadRequest),
		verify("policy mode bogus on the hybrid", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs, Policy: &api.VerifyPolicy{Mode: "bogus"}}, 400, api.CodeBadRequest),
		verify("policy mode empty on the hybrid", `{"kid":"`+nameC+`","payload_b3":"`+payload+`","sigs":`+js(sigC.Sigs)+`,"policy":{}}`, 400, api.CodeBadRequest),
		verify("policy or under the floor and", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs, Policy: &api.VerifyPolicy{Mode: "or"}}, 400, api.CodeUnsupported),
		verify("policy pq_only on ed25519 with its kid", api.VerifyRequest{KID: kidA2, PayloadB3: payload, Sigs: sig.Sigs, Policy: &api.VerifyPolicy{Mode: "pq_only"}}, 400, api.CodeUnsupported),
		verify("hybrid duplicate ml-dsa component", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[0], sigC.Sigs[0]}}, 400, api.CodeBadRequest),
		verify("hybrid duplicate ed25519 component", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[1], sigC.Sigs[1]}}, 400, api.CodeBadRequest),
		verify("hybrid duplicate component, pq_only", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[1], sigC.Sigs[1]}, Policy: &api.VerifyPolicy{Mode: "pq_only"}}, 400, api.CodeBadRequest),
		verify("hybrid three components", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[0], sigC.Sigs[1], sigC.Sigs[0]}}, 400, api.CodeBadRequest),
		verify("hybrid component of another alg", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[0], {Alg: "ml-dsa-44", SignatureB64: zeroSig}}}, 400, api.CodeBadRequest),
		verify("hybrid named as one alg", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{{Alg: "mldsa65-ed25519", SignatureB64: sigC.Sigs[0].SignatureB64}}}, 400, api.CodeBadRequest),
		withCheck(verify("control: hybrid without policy", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs}, 200, ""), verifiedHybrid(true, "and", "ml-dsa-65", "ed25519")),
		withCheck(verify("control: hybrid and", api.VerifyRequest{KID: kidC, PayloadB3: payload, Sigs: sigC.Sigs, Policy: &api.VerifyPolicy{Mode: "and"}}, 200, ""), verifiedHybrid(true, "and", "ml-dsa-65", "ed25519")),
		withCheck(verify("control: hybrid pq_only", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs, Policy: &api.VerifyPolicy{Mode: "pq_only"}}, 200, ""), verifiedHybrid(true, "pq_only", "ml-dsa-65")),
		withCheck(verify("hybrid and without the ed25519 component is ok false", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs[:1]}, 200, ""), verifiedHybrid(false, "", "ml-dsa-65")),
		withCheck(verify("hybrid and with a zero ed25519 component is ok false", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: []api.Signature{sigC.Sigs[0], {Alg: "ed25519", SignatureB64: zeroSig}}}, 200, ""), verifiedHybrid(false, "", "ml-dsa-65", "ed25519")),
		withCheck(verify("hybrid pq_only with only the ed25519 component is ok false", api.VerifyRequest{KID: nameC, PayloadB3: payload, Sigs: sigC.Sigs[1:], Policy: &api.VerifyPolicy{Mode: "pq_only"}}, 200, ""), verifiedHybrid(false, "")),
		withCheck(verify("hybrid component alone under ed25519 key is ok false", api.VerifyRequest{KID: nameA, PayloadB3: payload, Sigs: sigC.Sigs[1:]}, 200, ""), wantVerified(false)),
		withCheck(verify("control: ml-dsa-65 with context", api.VerifyRequest{KID: nameM, PayloadB3: payload, Sigs: sigMOut.Sigs, ContextB64: ctx255}, 200, ""), verifiedHybrid(true, "", "ml-dsa-65")),
		withCheck(verify("ml-dsa-65 without its context is ok false", api.VerifyRequest{KID: nameM, PayloadB3: payload, Sigs: sigMOut.Sigs}, 200, ""), verifiedHybrid(false, "", "ml-dsa-65")),
	)
	return rows
}

func wantVerified(ok bool) func(t *testing.T, r response) {
	return func(t *testing.T, r response) {
		var out api.VerifyResponse
		r.decodeInto(t, &out)
		if out.OK != ok {
			t.Errorf("ok = %v, want %v", out.OK, ok)
		}
		if len(out.Details.Checked) != 1 || out.Details.Checked[0] != "ed25519" {
			t.Errorf("details.checked = %v", out.Details.Checked)
		}
	}
}

// checkBatchSlots checks a 200 batch answer: one slot per item, in order;
// a failed slot is exactly {"error":{"code","message"}} with the wanted
// code; a slot that ran has no error.
func checkBatchSlots(t *testing.T, r response, want []api.Code) {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.Raw, &top); err != nil {
		t.Fatalf("batch answer: %v", err)
	}
	var slots []map[string]json.RawMessage
	if err := json.Unmarshal(top["results"], &slots); err != nil {
		t.Fatalf("results: %v: %.300s", err, r.Raw)
	}
	if len(slots) != len(want) {
		t.Fatalf("%d results for %d items", len(slots), len(want))
	}
	allOK := true
	for i, slot := range slots {
		if want[i] == "" {
			if _, ok := slot["error"]; ok {
				t.Errorf("slot %d: unexpected error %s", i, slot["error"])
			}
			if ok, has := slot["ok"]; has && string(ok) != "true" {
				allOK = false
			}
			continue
		}
		allOK = false
		if len(slot) != 1 || slot["error"] == nil {
			t.Errorf("slot %d must be exactly {\"error\":{...}}, got %v", i, keysOf(slot))
			continue
		}
		var e map[string]json.RawMessage
		if err := json.Unmarshal(slot["error"], &e); err != nil || len(e) != 2 || e["code"] == nil || e["message"] == nil {
			t.Errorf("slot %d: error must be exactly {code, message}: %s", i, slot["error"])
			continue
		}
		var ie api.ItemError
		json.Unmarshal(slot["error"], &ie)
		if ie.Code != want[i] || ie.Message == "" {
			t.Errorf("slot %d: code %s (%q), want %s", i, ie.Code, ie.Message, want[i])
		}
	}
	if v, ok := top["all_ok"]; ok && string(v) != fmt.Sprint(allOK) {
		t.Errorf("all_ok = %s, want %v", v, allOK)
	}
}

func keysOf(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestBatchItemsFailIndependently: one bad item among good ones gets
// {"error":{code,message}} in its own slot; the others run, in order.
func TestBatchItemsFailIndependently(t *testing.T) {
	h := newHarness(t)
	kidA := h.createKey(t, "acme", "payments", "ed25519")
	kidB := h.createKey(t, "acme", "billing", "ed25519")
	nameB := strings.TrimSuffix(kidB, "#v1")
	p1, p2 := strings.Repeat("0a", 32), strings.Repeat("0b", 32)
	msg := api.EncodeB64([]byte("hello"))

	r := h.do(t, "POST", "/v1/kms/sign/batch", h.Admin, api.SignBatchRequest{Items: []api.SignRequest{
		{KID: kidA, PayloadB3: p1},
		{KID: "ACME/payments/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", PayloadB3: p1},
		{KID: nameB, PayloadB3: p2},
		{KID: kidA, PayloadB3: strings.ToUpper(p1)},
		{KID: nameB, MessageB64: msg},
		{KID: "acme/payments/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", PayloadB3: p1},
		{KID: kidA, PayloadB3: p2},
	}})
	if r.Status != http.StatusOK {
		t.Fatalf("sign batch: %d %s", r.Status, r.Raw)
	}
	checkBatchSlots(t, r, []api.Code{"", api.CodeBadRequest, "", api.CodeBadRequest, "", api.CodeNotFound, ""})
	var sb api.SignBatchResponse
	r.decodeInto(t, &sb)
	wantKID := []string{kidA, "", kidB, "", kidB, "", kidA}
	for i, res := range sb.Results {
		if res.KID != wantKID[i] {
			t.Errorf("slot %d: kid %q, want %q", i, res.KID, wantKID[i])
		}
		if (res.Error == nil) != (len(res.Sigs) == 1) {
			t.Errorf("slot %d: %d signatures and error %v", i, len(res.Sigs), res.Error)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// Every signature is the one its own item asked for (Ed25519 is
	// deterministic), and verifies for its own input only.
	good := []struct {
		slot     int
		kid      string
		payload  string
		message  string
		neighbor string
	}{{0, kidA, p1, "", p2}, {2, kidB, p2, "", p1}, {4, kidB, "", msg, p1}, {6, kidA, p2, "", p1}}
	var vitems []api.VerifyRequest
	for _, g := range good {
		single := h.do(t, "POST", "/v1/kms/sign", h.Admin, api.SignRequest{KID: g.kid, PayloadB3: g.payload, MessageB64: g.message})
		var one api.SignResponse
		single.decodeInto(t, &one)
		if !reflect.DeepEqual(one.Sigs, sb.Results[g.slot].Sigs) {
			t.Errorf("slot %d: batch signature differs from a single sign of the same item", g.slot)
		}
		vitems = append(vitems,
			api.VerifyRequest{KID: g.kid, PayloadB3: g.payload, MessageB64: g.message, Sigs: sb.Results[g.slot].Sigs},
			api.VerifyRequest{KID: g.kid, PayloadB3: g.neighbor, Sigs: sb.Results[g.slot].Sigs})
	}

	// Verify: good, wrong, and failing items side by side.
	items := []api.VerifyRequest{
		vitems[0], // ok
		{KID: "acme/payments/ed25519/not-a-uuid", PayloadB3: p1, Sigs: vitems[0].Sigs}, // BadRequest
		vitems[1], // wrong payload: ok false, no error
		vitems[2], // ok
		{KID: "acme/payments/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b", PayloadB3: p1, Sigs: vitems[0].Sigs}, // NotFound
		vitems[4], // ok (message)
		vitems[5], // wrong
		{KID: kidA, PayloadB3: p1, Sigs: []api.Signature{{Alg: "ed25519", SignatureB64: "not base64"}}}, // BadRequest
		vitems[6], // ok
	}
	r = h.do(t, "POST", "/v1/kms/verify/batch", h.Admin, api.VerifyBatchRequest{Items: items})
	if r.Status != http.StatusOK {
		t.Fatalf("verify batch: %d %s", r.Status, r.Raw)
	}
	checkBatchSlots(t, r, []api.Code{"", api.CodeBadRequest, "", "", api.CodeNotFound, "", "", api.CodeBadRequest, ""})
	var vb api.VerifyBatchResponse
	r.decodeInto(t, &vb)
	wantOK := []bool{true, false, false, true, false, true, false, false, true}
	for i, res := range vb.Results {
		if res.OK != wantOK[i] {
			t.Errorf("verify slot %d: ok = %v, want %v", i, res.OK, wantOK[i])
		}
	}
	if vb.AllOK {
		t.Error("all_ok is true with failed items")
	}

	// The good items alone: all_ok.
	r = h.do(t, "POST", "/v1/kms/verify/batch", h.Admin, api.VerifyBatchRequest{Items: []api.VerifyRequest{vitems[0], vitems[2], vitems[4], vitems[6]}})
	vb = api.VerifyBatchResponse{}
	r.decodeInto(t, &vb)
	if r.Status != http.StatusOK || !vb.AllOK || len(vb.Results) != 4 {
		t.Errorf("good items alone: %d %s", r.Status, r.Raw)
	}
}
