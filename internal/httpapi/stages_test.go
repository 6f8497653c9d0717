package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// stageCounts reads kms_stage_latency_seconds_count by stage from /metrics,
// and fails on any other label on the histogram (SPEC §8: no kid or
// tenant).
func stageCounts(t *testing.T, h *harness) map[string]int {
	t.Helper()
	m := h.do(t, "GET", "/metrics", "", nil)
	out := map[string]int{}
	for _, line := range strings.Split(string(m.Raw), "\n") {
		if !strings.HasPrefix(line, "kms_stage_latency_seconds") {
			continue
		}
		if strings.Contains(line, "acme") || strings.Contains(line, "tenant") || strings.Contains(line, "kid") {
			t.Fatalf("a stage series carries a request string: %s", line)
		}
		rest, ok := strings.CutPrefix(line, `kms_stage_latency_seconds_count{stage="`)
		if !ok {
			continue
		}
		stage, n, ok := strings.Cut(rest, `"} `)
		if !ok {
			t.Fatalf("unexpected line %q", line)
		}
		v, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		out[stage] = v
	}
	return out
}

// TestStageHistogram: every sign, sign batch and verify passes through the
// stages of kms_stage_latency_seconds once each; a request refused for its
// token is timed in auth but never reaches the operation's stages.
func TestStageHistogram(t *testing.T) {
	h := newHarness(t)
	kid := h.createKey(t, "acme", "pay", "ed25519")
	before := stageCounts(t, h)
	const n = 5
	var sig api.SignResponse
	for range n {
		sig = h.signPayload(t, kid, fuzzPayload)
	}
	batch := api.SignBatchRequest{Items: []api.SignRequest{{KID: kid, PayloadB3: fuzzPayload}, {KID: kid, PayloadB3: fuzzPayload}}}
	if r := h.do(t, "POST", "/v1/kms/sign/batch", h.Admin, batch); r.Status != http.StatusOK {
		t.Fatalf("sign batch: %d %s", r.Status, r.Raw)
	}
	if r := h.do(t, "POST", "/v1/kms/verify", h.Admin, api.VerifyRequest{KID: kid, PayloadB3: fuzzPayload, Sigs: sig.Sigs}); r.Status != http.StatusOK {
		t.Fatalf("verify: %d %s", r.Status, r.Raw)
	}
	if r := h.do(t, "POST", "/v1/kms/sign", "not-a-token", api.SignRequest{KID: kid, PayloadB3: fuzzPayload}); r.Status != http.StatusUnauthorized {
		t.Fatalf("sign without a token: %d %s", r.Status, r.Raw)
	}
	after := stageCounts(t, h)
	want := map[string]int{
		"auth": n + 3, "queue": n + 3, "audit": n + 3, // the refused one too
		"decode": n + 2, "sign": n + 1, "verify": 1, "write": n + 2,
	}
	for stage, w := range want {
		if got := after[stage] - before[stage]; got != w {
			t.Errorf("stage %s counted %d requests, want %d", stage, got, w)
		}
	}
}
