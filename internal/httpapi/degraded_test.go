package httpapi

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
	"github.com/ron-kms/ron-kms/internal/storage/storagetest"
)

// readiness reads /readyz.
func (h *harness) readiness(t testing.TB) (response, api.Readiness) {
	t.Helper()
	r := h.do(t, "GET", "/readyz", "", nil)
	var rz api.Readiness
	if r.Status == http.StatusOK {
		r.decodeInto(t, &rz)
	}
	return r, rz
}

// waitDegraded polls /readyz until the store is (or is no longer) listed
// under degraded, and fails after 10 s.
func (h *harness) waitDegraded(t testing.TB, want bool) api.Readiness {
	t.Helper()
	start := time.Now()
	for {
		r, rz := h.readiness(t)
		if r.Status != http.StatusOK {
			t.Fatalf("/readyz: %d %s", r.Status, r.Raw)
		}
		if (len(rz.Degraded) > 0) == want {
			t.Logf("/readyz degraded=%v after %v", want, time.Since(start).Round(time.Millisecond))
			return rz
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("/readyz still %s after 10 s", r.Raw)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cacheAgeOf checks that r is an answer from the cache: cache_age_ms a
// non-negative number in the body and the same number of milliseconds in
// X-KMS-Cache-Age.
func cacheAgeOf(t testing.TB, what string, r response) int64 {
	t.Helper()
	age, ok := r.JSON["cache_age_ms"].(float64)
	hdr, err := strconv.ParseInt(r.Header.Get(api.CacheAgeHeader), 10, 64)
	if !ok || err != nil || age < 0 || int64(age) != hdr {
		t.Fatalf("%s: cache_age_ms %v, %s %q; want the same number of ms in both: %s", what, r.JSON["cache_age_ms"], api.CacheAgeHeader, r.Header.Get(api.CacheAgeHeader), r.Raw)
	}
	return hdr
}

// notFromCache checks that r carries no cache age.
func notFromCache(t testing.TB, what string, r response) {
	t.Helper()
	if _, ok := r.JSON["cache_age_ms"]; ok || r.Header.Get(api.CacheAgeHeader) != "" {
		t.Fatalf("%s with a healthy store says it came from the cache: %s %v", what, r.Raw, r.Header)
	}
}

// storeUnavailable checks that r is 503 StoreUnavailable with Retry-After.
func storeUnavailable(t testing.TB, what string, r response) {
	t.Helper()
	code := ""
	if e, ok := r.JSON["error"].(map[string]any); ok {
		code, _ = e["code"].(string)
	}
	if r.Status != http.StatusServiceUnavailable || code != string(api.CodeStoreUnavailable) || r.Header.Get("Retry-After") == "" {
		t.Errorf("%s without a store: %d %s, Retry-After %q; want 503 StoreUnavailable with Retry-After", what, r.Status, r.Raw, r.Header.Get("Retry-After"))
	}
	if r.Header.Get(api.CacheAgeHeader) != "" {
		t.Errorf("%s: an error carries %s", what, api.CacheAgeHeader)
	}
}

// TestDegradedAPI: with the store gone, every write and private-key
// operation answers 503 StoreUnavailable with Retry-After; verify, verify
// batch and key reads answer 200 from the cache with cache_age_ms and
// X-KMS-Cache-Age; /readyz stays ready and lists the store under degraded;
// /livez and /healthz stay up; kms_verify_cache_age_ms is exported. With
// the store back, everything is normal again.
func TestDegradedAPI(t *testing.T) {
	st := &storagetest.Outage{Store: memstore.New()}
	h := newHarnessOn(t, st, nil, nil, keystore.Config{ProbeInterval: 10 * time.Millisecond}, nil)
	kid := h.createKey(t, "acme", "pay", "ed25519")
	name := strings.TrimSuffix(kid, "#v1")
	kemKID := h.createKey(t, "acme", "wrap", "ml-kem-768")
	aesKID := h.createKey(t, "acme", "enc", "aes-256-gcm")
	payload := strings.Repeat("ab", 32)
	sig := h.signPayload(t, kid, payload)
	wrapped := h.wrapOK(t, h.Admin, api.WrapRequest{KID: kemKID, Size: 32})
	verifyReq := api.VerifyRequest{KID: sig.KID, PayloadB3: payload, Sigs: sig.Sigs}
	_, rz := h.readiness(t)
	if !rz.Ready || rz.Degraded == nil || len(rz.Degraded) != 0 {
		t.Fatalf("/readyz before the outage: %+v", rz)
	}
	notFromCache(t, "verify", h.do(t, "POST", "/v1/kms/verify", h.Admin, verifyReq))
	notFromCache(t, "get", h.do(t, "GET", "/v1/kms/keys/"+name, h.Admin, nil))

	st.SetDown(true)
	rz = h.waitDegraded(t, true)
	if !rz.Ready || rz.Degraded[0].Component != "store" || rz.Degraded[0].Reason == "" || rz.Degraded[0].CacheAgeMS == nil || rz.Degraded[0].Since == "" {
		t.Fatalf("/readyz without a store: %+v", rz)
	}

	msg := base64.StdEncoding.EncodeToString([]byte("data"))
	for _, c := range []struct {
		what, method, path string
		body               any
	}{
		{"sign", "POST", "/v1/kms/sign", api.SignRequest{KID: kid, PayloadB3: payload}},
		{"rotate", "POST", "/v1/kms/keys/" + name + "/rotate", map[string]any{}},
		{"create", "POST", "/v1/kms/keys", api.CreateKeyRequest{Tenant: "acme", Purpose: "pay", Alg: "ed25519"}},
		{"disable", "POST", "/v1/kms/keys/" + name + "/versions/1/disable", nil},
		{"configure", "POST", "/v1/kms/keys/" + name + "/config", map[string]any{"min_verify_version": 1}},
		{"wrap", "POST", "/v1/kms/wrap", api.WrapRequest{KID: kemKID, Size: 32}},
		{"unwrap", "POST", "/v1/kms/unwrap", api.UnwrapRequest{WrappedB64: wrapped.WrappedB64}},
		{"encrypt", "POST", "/v1/kms/encrypt", api.EncryptRequest{KID: aesKID, PlaintextB64: msg}},
		{"revoke", "POST", "/v1/kms/tokens/revoke", api.RevokeTokenRequest{ID: strings.Repeat("0", 32)}},
		{"list", "GET", "/v1/kms/keys", nil},
	} {
		start := time.Now()
		r := h.do(t, c.method, c.path, h.Admin, c.body)
		t.Logf("%s without a store: %d in %v", c.what, r.Status, time.Since(start).Round(time.Microsecond))
		storeUnavailable(t, c.what, r)
	}

	v := h.do(t, "POST", "/v1/kms/verify", h.Admin, verifyReq)
	if v.Status != http.StatusOK || v.JSON["ok"] != true {
		t.Fatalf("verify without a store: %d %s", v.Status, v.Raw)
	}
	cacheAgeOf(t, "verify", v)
	bad := verifyReq
	bad.PayloadB3 = strings.Repeat("cd", 32)
	if v := h.do(t, "POST", "/v1/kms/verify", h.Admin, bad); v.Status != http.StatusOK || v.JSON["ok"] != false {
		t.Fatalf("a wrong signature without a store: %d %s", v.Status, v.Raw)
	} else {
		cacheAgeOf(t, "verify (ok false)", v)
	}
	vb := h.do(t, "POST", "/v1/kms/verify/batch", h.Admin, api.VerifyBatchRequest{Items: []api.VerifyRequest{verifyReq, verifyReq}})
	if vb.Status != http.StatusOK || vb.JSON["all_ok"] != true {
		t.Fatalf("verify batch without a store: %d %s", vb.Status, vb.Raw)
	}
	cacheAgeOf(t, "verify batch", vb)
	g := h.do(t, "GET", "/v1/kms/keys/"+name, h.Admin, nil)
	if g.Status != http.StatusOK || g.JSON["name"] != name {
		t.Fatalf("get without a store: %d %s", g.Status, g.Raw)
	}
	cacheAgeOf(t, "get", g)
	for _, p := range []string{"/livez", "/healthz"} {
		if r := h.do(t, "GET", p, "", nil); r.Status != http.StatusOK {
			t.Errorf("%s without a store: %d %s", p, r.Status, r.Raw)
		}
	}
	m := h.do(t, "GET", "/metrics", "", nil)
	if age, ok := gauge(string(m.Raw), "kms_verify_cache_age_ms"); !ok || age < 0 {
		t.Errorf("kms_verify_cache_age_ms without a store: %v %v", age, ok)
	}

	st.SetDown(false)
	h.waitDegraded(t, false)
	notFromCache(t, "verify", h.do(t, "POST", "/v1/kms/verify", h.Admin, verifyReq))
	notFromCache(t, "get", h.do(t, "GET", "/v1/kms/keys/"+name, h.Admin, nil))
	h.signPayload(t, kid, payload)
	if got := h.rotate(t, name); !strings.HasSuffix(got, "#v2") {
		t.Fatalf("rotate after the outage: %s", got)
	}
	m = h.do(t, "GET", "/metrics", "", nil)
	if age, ok := gauge(string(m.Raw), "kms_verify_cache_age_ms"); !ok || age != 0 {
		t.Errorf("kms_verify_cache_age_ms with the store back: %v %v, want 0", age, ok)
	}
}

// gauge reads an unlabelled sample from Prometheus text.
func gauge(text, name string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestStoreReason: /readyz says what the outage means, and says when the
// cache is past its soft TTL (still served) or its hard TTL (not).
func TestStoreReason(t *testing.T) {
	ttl := keystore.CacheTTL{Soft: 5 * time.Minute, Hard: 10 * time.Minute}
	for _, c := range []struct {
		age  time.Duration
		want string
	}{
		{time.Minute, "answered from the cache (1m0s old)"},
		{6 * time.Minute, "older than its soft TTL 5m0s"},
		{11 * time.Minute, "past its hard TTL 10m0s: nothing is served"},
	} {
		h := keystore.Health{Reason: "the store does not answer: x", CacheAge: c.age, TTL: ttl}
		if got := storeReason(h); !strings.Contains(got, c.want) || !strings.HasPrefix(got, h.Reason) {
			t.Errorf("age %v: %q, want it to contain %q", c.age, got, c.want)
		}
	}
}
