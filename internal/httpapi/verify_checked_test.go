package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// TestVerifyCheckedIsArray: details.checked is a JSON array on every verify
// answer, [] when no component was checked, never null: for composite and
// ML-DSA keys, good and bad signatures, every mode (the floor is or, so that
// all three may be asked), and a disabled Ed25519 version. The same items
// sent as one batch answer {ok} in every slot (batch slots carry no details,
// SPEC §4), with no null member.
func TestVerifyCheckedIsArray(t *testing.T) {
	h := newHarness(t).withOptions(t, Options{VerifyModeFloor: "or"})
	payload := strings.Repeat("3e", 32)
	kidC := h.createKey(t, "acme", "checked", "mldsa65-ed25519")
	kidE := h.createKey(t, "acme", "checked", "ed25519")
	kidM := h.createKey(t, "acme", "checked", "ml-dsa-65")
	sigC := h.signPayload(t, kidC, payload).Sigs
	sigE := h.signPayload(t, kidE, payload).Sigs
	sigM := h.signPayload(t, kidM, payload).Sigs
	broken := func(s api.Signature) api.Signature {
		return api.Signature{Alg: s.Alg, SignatureB64: api.EncodeB64(flip(mustB64(t, s.SignatureB64), 3))}
	}
	// A disabled version verifies nothing and says why.
	nameE := strings.TrimSuffix(kidE, "#v1")
	h.rotate(t, nameE)
	if r := h.do(t, "POST", "/v1/kms/keys/"+nameE+"/versions/1/disable", h.Admin, nil); r.Status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.Status, r.Raw)
	}

	type tc struct {
		kid   string
		sigs  []api.Signature
		wantN int // len(checked)
	}
	var reqs []api.VerifyRequest
	var names []string
	var wants []int
	add := func(name string, c tc) {
		for _, mode := range []string{"", "or", "and", "pq_only"} {
			req := api.VerifyRequest{KID: c.kid, PayloadB3: payload, Sigs: c.sigs}
			if mode != "" {
				req.Policy = &api.VerifyPolicy{Mode: mode}
			}
			n := c.wantN
			if c.kid == kidC && mode == "pq_only" {
				n = 0
				for _, s := range c.sigs {
					if s.Alg == "ml-dsa-65" {
						n = 1
					}
				}
			}
			reqs, names, wants = append(reqs, req), append(names, fmt.Sprintf("%s, mode %q", name, mode)), append(wants, n)
		}
	}
	add("composite, both parts", tc{kidC, sigC, 2})
	add("composite, both broken", tc{kidC, []api.Signature{broken(sigC[0]), broken(sigC[1])}, 2})
	add("composite, ML-DSA part only", tc{kidC, sigC[:1], 1})
	add("composite, Ed25519 part only", tc{kidC, sigC[1:], 1})
	add("composite, broken ML-DSA part only", tc{kidC, []api.Signature{broken(sigC[0])}, 1})
	add("composite, broken Ed25519 part only", tc{kidC, []api.Signature{broken(sigC[1])}, 1})
	add("ml-dsa-65", tc{kidM, sigM, 1})
	add("ml-dsa-65, broken", tc{kidM, []api.Signature{broken(sigM[0])}, 1})
	add("ed25519 disabled version", tc{kidE, sigE, 0})

	for i, req := range reqs {
		r := h.do(t, "POST", "/v1/kms/verify", h.Admin, req)
		if r.Status != http.StatusOK {
			t.Errorf("%s: %d %s, want a verify answer", names[i], r.Status, r.Raw)
			continue
		}
		var top struct {
			Details map[string]json.RawMessage `json:"details"`
		}
		if err := json.Unmarshal(r.Raw, &top); err != nil {
			t.Fatalf("%s: %v: %s", names[i], err, r.Raw)
		}
		var checked []string
		raw := top.Details["checked"]
		if !bytes.HasPrefix(raw, []byte("[")) || json.Unmarshal(raw, &checked) != nil {
			t.Errorf("%s: details.checked is %s, want a JSON array: %s", names[i], raw, r.Raw)
			continue
		}
		if len(checked) != wants[i] {
			t.Errorf("%s: checked %v, want %d component(s): %s", names[i], checked, wants[i], r.Raw)
		}
	}

	r := h.do(t, "POST", "/v1/kms/verify/batch", h.Admin, api.VerifyBatchRequest{Items: reqs})
	if r.Status != http.StatusOK {
		t.Fatalf("batch: %d %s", r.Status, r.Raw)
	}
	var out struct {
		AllOK   *bool                        `json:"all_ok"`
		Results []map[string]json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(r.Raw, &out); err != nil || out.AllOK == nil || len(out.Results) != len(reqs) {
		t.Fatalf("batch answer %s (%v)", r.Raw, err)
	}
	for i, slot := range out.Results {
		for k, v := range slot {
			if string(v) == "null" {
				t.Errorf("batch slot %d: %q is null: %s", i, k, r.Raw)
			}
		}
		if _, has := slot["ok"]; !has {
			t.Errorf("batch slot %d has no ok: %s", i, r.Raw)
		}
	}
}
