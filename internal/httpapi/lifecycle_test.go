package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/keystore"
)

// testClock is a settable keystore clock, safe for concurrent use.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newClockedHarness is newHarness with a keystore (and so a scheduler) that
// reads clock; tokens are still checked against the real time.
func newClockedHarness(t testing.TB, clock *testClock) (*harness, *keystore.Scheduler) {
	t.Helper()
	h := newHarnessWith(t, clock.Now)
	return h, keystore.NewScheduler(h.KS, time.Hour, nil)
}

// getKeyInfo reads a key through the API.
func (h *harness) getKeyInfo(t testing.TB, name string) api.KeyInfo {
	t.Helper()
	r := h.do(t, "GET", "/v1/kms/keys/"+name, h.Admin, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("get %s: %d %s", name, r.Status, r.Raw)
	}
	var k api.KeyInfo
	r.decodeInto(t, &k)
	return k
}

// versionAction posts one lifecycle action.
func (h *harness) versionAction(t testing.TB, name string, n uint32, action string) response {
	t.Helper()
	return h.do(t, "POST", fmt.Sprintf("/v1/kms/keys/%s/versions/%d/%s", name, n, action), h.Admin, nil)
}

func (h *harness) versionActionOK(t testing.TB, name string, n uint32, action string) api.KeyInfo {
	t.Helper()
	r := h.versionAction(t, name, n, action)
	if r.Status != http.StatusOK {
		t.Fatalf("%s v%d of %s: %d %s", action, n, name, r.Status, r.Raw)
	}
	var k api.KeyInfo
	r.decodeInto(t, &k)
	return k
}

func (h *harness) configure(t testing.TB, name string, body any) response {
	t.Helper()
	return h.do(t, "POST", "/v1/kms/keys/"+name+"/config", h.Admin, body)
}

// sealedRecord reports whether the store's record of key name holds the
// sealed seed of version n (keystore.SealedVersions).
func (h *harness) sealedRecord(t testing.TB, name string, n uint32) bool {
	t.Helper()
	it, err := h.Store.Get(context.Background(), "k/"+name)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := keystore.SealedVersions(it.Value)
	if err != nil {
		t.Fatal(err)
	}
	return slices.Contains(vs, n)
}

func (h *harness) verifyResp(t testing.TB, req api.VerifyRequest) api.VerifyResponse {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/verify", h.Admin, req)
	if r.Status != http.StatusOK {
		t.Fatalf("verify: %d %s", r.Status, r.Raw)
	}
	var out api.VerifyResponse
	r.decodeInto(t, &out)
	return out
}

// TestVersionTransitions drives every (state, action) pair of the version
// state machine through the HTTP API: every allowed edge answers 200 with
// the KeyInfo in the new state; every other pair answers 409 Conflict naming
// the state and the action, and changes nothing. The current version
// refuses every action.
func TestVersionTransitions(t *testing.T) {
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	h, sched := newClockedHarness(t, clock)
	payload := strings.Repeat("7e", 32)

	// setup brings v1 of a fresh two-version key into a state; "current"
	// acts on v2 instead. It returns the key name, the version to act on,
	// and v1's signature of payload.
	setup := map[string]func(name string) uint32{
		"enabled": func(string) uint32 { return 1 },
		"disabled": func(name string) uint32 {
			h.versionActionOK(t, name, 1, "disable")
			return 1
		},
		"destroy_scheduled": func(name string) uint32 {
			h.versionActionOK(t, name, 1, "destroy")
			return 1
		},
		"destroyed": func(name string) uint32 {
			if r := h.configure(t, name, api.ConfigureKeyRequest{DestroyWaitingDays: ptr(1)}); r.Status != 200 {
				t.Fatalf("config: %d %s", r.Status, r.Raw)
			}
			h.versionActionOK(t, name, 1, "destroy")
			clock.Advance(24*time.Hour + time.Second)
			rep, err := sched.Tick(context.Background())
			if err != nil || len(rep.Destroyed) != 1 || rep.Destroyed[0] != name+"#v1" {
				t.Fatalf("destroy tick: %+v %v", rep, err)
			}
			return 1
		},
		"current": func(string) uint32 { return 2 },
	}
	type outcome struct {
		status int
		state  string // the state of the version afterwards
	}
	allowed := func(state string) outcome { return outcome{200, state} }
	refused := func(state string) outcome { return outcome{409, state} }
	table := map[string]map[string]outcome{
		"enabled": {
			"disable": allowed("disabled"), "enable": refused("enabled"),
			"destroy": allowed("destroy_scheduled"), "cancel-destroy": refused("enabled"),
		},
		"disabled": {
			"disable": refused("disabled"), "enable": allowed("enabled"),
			"destroy": allowed("destroy_scheduled"), "cancel-destroy": refused("disabled"),
		},
		"destroy_scheduled": {
			"disable": refused("destroy_scheduled"), "enable": refused("destroy_scheduled"),
			"destroy": refused("destroy_scheduled"), "cancel-destroy": allowed("disabled"),
		},
		"destroyed": {
			"disable": refused("destroyed"), "enable": refused("destroyed"),
			"destroy": refused("destroyed"), "cancel-destroy": refused("destroyed"),
		},
		"current": {
			"disable": refused("enabled"), "enable": refused("enabled"),
			"destroy": refused("enabled"), "cancel-destroy": refused("enabled"),
		},
	}
	for _, from := range []string{"enabled", "disabled", "destroy_scheduled", "destroyed", "current"} {
		for _, action := range []string{"disable", "enable", "destroy", "cancel-destroy"} {
			want := table[from][action]
			t.Run(from+"/"+action, func(t *testing.T) {
				kid := h.createKey(t, "acme", "lifecycle", "ed25519")
				name := strings.TrimSuffix(kid, "#v1")
				sig1 := h.signPayload(t, name, payload)
				h.rotate(t, name)
				before := h.getKeyInfo(t, name)
				n := setup[from](name)
				pub := before.Versions[n-1].PublicKeyB64

				r := h.versionAction(t, name, n, action)
				if r.Status != want.status {
					t.Fatalf("%s on %s: %d %s, want %d", action, from, r.Status, r.Raw, want.status)
				}
				if want.status != 200 {
					checkEnvelope(t, r, api.CodeConflict)
					msg := string(r.Raw)
					stateWord := want.state
					if from == "current" && (action == "disable" || action == "destroy") {
						stateWord = "current version"
					}
					if !strings.Contains(msg, stateWord) || !strings.Contains(msg, action) || !strings.Contains(msg, fmt.Sprintf("%s#v%d", name, n)) {
						t.Errorf("409 message does not name the version, its state (%s) and the action (%s): %s", stateWord, action, msg)
					}
				}
				var got api.KeyInfo
				if want.status == 200 {
					r.decodeInto(t, &got)
				} else {
					got = h.getKeyInfo(t, name)
				}
				v := got.Versions[n-1]
				if v.State != want.state {
					t.Errorf("state after %s on %s: %s, want %s", action, from, v.State, want.state)
				}
				if v.PublicKeyB64 != pub {
					t.Errorf("the public key changed")
				}
				if got.CurrentVersion != 2 || got.Versions[1].State != "enabled" {
					t.Errorf("current version %d is %s", got.CurrentVersion, got.Versions[1].State)
				}
				// destroy_at is given exactly in destroy_scheduled.
				if (v.DestroyAt != "") != (v.State == "destroy_scheduled") {
					t.Errorf("destroy_at %q in state %s", v.DestroyAt, v.State)
				}
				if v.State == "destroy_scheduled" && from != "destroy_scheduled" {
					at, err := time.Parse(time.RFC3339, v.DestroyAt)
					if want := clock.Now().Add(7 * 24 * time.Hour); err != nil || !at.Equal(want) {
						t.Errorf("destroy_at %q, want %s (7 days, the default)", v.DestroyAt, want.Format(time.RFC3339))
					}
				}
				// Private material is gone exactly when destroyed.
				if h.sealedRecord(t, name, n) != (v.State != "destroyed") {
					t.Errorf("sealed record of v%d present = %v in state %s", n, !(v.State != "destroyed"), v.State)
				}
				// Only an enabled version verifies its old signature.
				vr := h.verifyResp(t, api.VerifyRequest{KID: name + "#v1", PayloadB3: payload, Sigs: sig1.Sigs})
				v1 := got.Versions[0].State
				if vr.OK != (v1 == "enabled") {
					t.Errorf("v1 in state %s: verify ok = %v", v1, vr.OK)
				}
				if !vr.OK && vr.Details.Reason != v1 {
					t.Errorf("verify reason %q, want %q", vr.Details.Reason, v1)
				}
			})
		}
	}
}

func ptr(v uint32) *uint32 { return &v }

// TestDisabledVersionVerifiesNothing: a disabled version's old signature is
// ok:false (with the reason), in single and batch verify, and verifies again
// once enabled; a disabled wrap or encrypt version neither unwraps nor
// decrypts (409 naming the version and its state).
func TestDisabledVersionVerifiesNothing(t *testing.T) {
	h := newHarness(t)
	payload := strings.Repeat("3c", 32)
	kid := h.createKey(t, "acme", "disable", "ed25519")
	name := strings.TrimSuffix(kid, "#v1")
	sig1 := h.signPayload(t, name, payload)
	h.rotate(t, name)
	req := api.VerifyRequest{KID: kid, PayloadB3: payload, Sigs: sig1.Sigs}
	if !h.verifyResp(t, req).OK {
		t.Fatal("v1's signature does not verify before disable")
	}
	k := h.versionActionOK(t, name, 1, "disable")
	if k.Versions[0].State != "disabled" || k.Name != name || k.KID != name+"#v2" {
		t.Fatalf("disable answered %+v", k)
	}
	out := h.verifyResp(t, req)
	if out.OK || out.Details.Reason != "disabled" || len(out.Details.Checked) != 0 {
		t.Fatalf("verify with a disabled version: %+v", out)
	}
	r := h.do(t, "POST", "/v1/kms/verify/batch", h.Admin, api.VerifyBatchRequest{Items: []api.VerifyRequest{req, req}})
	checkBatchSlots(t, r, []api.Code{"", ""})
	var vb api.VerifyBatchResponse
	r.decodeInto(t, &vb)
	if vb.AllOK || vb.Results[0].OK || vb.Results[1].OK {
		t.Fatalf("batch verify with a disabled version: %s", r.Raw)
	}
	h.versionActionOK(t, name, 1, "enable")
	if out := h.verifyResp(t, req); !out.OK || out.Details.Reason != "" {
		t.Fatalf("verify after enable: %+v", out)
	}

	// Wrap and encrypt keys.
	aad := api.EncodeB64([]byte("ctx"))
	w := h.createKey(t, "acme", "disable", "x25519")
	wname := strings.TrimSuffix(w, "#v1")
	env := h.wrapOK(t, h.Admin, api.WrapRequest{KID: wname, Size: 32, AADB64: aad})
	h.rotate(t, wname)
	e := h.createKey(t, "acme", "disable", "aes-256-gcm")
	ename := strings.TrimSuffix(e, "#v1")
	ct := h.encryptOK(t, h.Admin, api.EncryptRequest{KID: ename, PlaintextB64: "aGk=", AADB64: aad})
	h.rotate(t, ename)
	h.versionActionOK(t, wname, 1, "disable")
	h.versionActionOK(t, ename, 1, "disable")
	unwrap := api.UnwrapRequest{WrappedB64: env.WrappedB64, AADB64: aad}
	decrypt := api.DecryptRequest{CiphertextB64: ct.CiphertextB64, AADB64: aad}
	for _, c := range []struct {
		path string
		body any
		kid  string
	}{{"/v1/kms/unwrap", unwrap, w}, {"/v1/kms/decrypt", decrypt, e}} {
		r := h.do(t, "POST", c.path, h.Admin, c.body)
		if r.Status != http.StatusConflict {
			t.Fatalf("%s with a disabled version: %d %s", c.path, r.Status, r.Raw)
		}
		checkEnvelope(t, r, api.CodeConflict)
		if !strings.Contains(string(r.Raw), c.kid) || !strings.Contains(string(r.Raw), "disabled") {
			t.Errorf("%s: the message does not name %s and its state: %s", c.path, c.kid, r.Raw)
		}
	}
	h.versionActionOK(t, wname, 1, "enable")
	h.versionActionOK(t, ename, 1, "enable")
	h.unwrapOK(t, h.Admin, unwrap)
	h.decryptOK(t, h.Admin, decrypt)
}

// TestMinVerifyVersion: versions below min_verify_version neither verify
// (ok:false, reason below_min_verify_version) nor unwrap nor decrypt;
// moving it back down restores them. Out-of-range values are 400.
func TestMinVerifyVersion(t *testing.T) {
	h := newHarness(t)
	payload := strings.Repeat("91", 32)
	aad := api.EncodeB64([]byte("aad"))
	kid := h.createKey(t, "acme", "minver", "ed25519")
	name := strings.TrimSuffix(kid, "#v1")
	sig1 := h.signPayload(t, name, payload)
	h.rotate(t, name)
	w := h.createKey(t, "acme", "minver", "mlkem768-x25519")
	wname := strings.TrimSuffix(w, "#v1")
	env := h.wrapOK(t, h.Admin, api.WrapRequest{KID: wname, Size: 32, AADB64: aad})
	h.rotate(t, wname)
	e := h.createKey(t, "acme", "minver", "aes-256-gcm")
	ename := strings.TrimSuffix(e, "#v1")
	ct := h.encryptOK(t, h.Admin, api.EncryptRequest{KID: ename, PlaintextB64: "aGk=", AADB64: aad})
	h.rotate(t, ename)
	verify := api.VerifyRequest{KID: kid, PayloadB3: payload, Sigs: sig1.Sigs}
	unwrap := api.UnwrapRequest{WrappedB64: env.WrappedB64, AADB64: aad}
	decrypt := api.DecryptRequest{CiphertextB64: ct.CiphertextB64, AADB64: aad}

	for _, n := range []string{name, wname, ename} {
		r := h.configure(t, n, api.ConfigureKeyRequest{MinVerifyVersion: ptr(2)})
		if r.Status != http.StatusOK {
			t.Fatalf("config: %d %s", r.Status, r.Raw)
		}
		var k api.KeyInfo
		r.decodeInto(t, &k)
		if k.MinVerifyVersion != 2 || k.Versions[0].State != "enabled" {
			t.Fatalf("config answered %+v", k)
		}
	}
	if out := h.verifyResp(t, verify); out.OK || out.Details.Reason != "below_min_verify_version" {
		t.Fatalf("verify below min_verify_version: %+v", out)
	}
	for path, body := range map[string]any{"/v1/kms/unwrap": unwrap, "/v1/kms/decrypt": decrypt} {
		r := h.do(t, "POST", path, h.Admin, body)
		if r.Status != http.StatusConflict || !strings.Contains(string(r.Raw), "min_verify_version 2") {
			t.Fatalf("%s below min_verify_version: %d %s", path, r.Status, r.Raw)
		}
		checkEnvelope(t, r, api.CodeConflict)
	}
	// The current version still signs and verifies.
	sig2 := h.signPayload(t, name, payload)
	if !h.verifyResp(t, api.VerifyRequest{KID: name, PayloadB3: payload, Sigs: sig2.Sigs}).OK {
		t.Fatal("the current version does not verify")
	}

	// Back down: both work again.
	for _, n := range []string{name, wname, ename} {
		if r := h.configure(t, n, api.ConfigureKeyRequest{MinVerifyVersion: ptr(1)}); r.Status != http.StatusOK {
			t.Fatalf("config back down: %d %s", r.Status, r.Raw)
		}
	}
	if !h.verifyResp(t, verify).OK {
		t.Fatal("v1 does not verify after min_verify_version went back to 1")
	}
	h.unwrapOK(t, h.Admin, unwrap)
	h.decryptOK(t, h.Admin, decrypt)

	// Ranges, and the answer's fields.
	for _, bad := range []string{
		`{"min_verify_version":0}`, `{"min_verify_version":3}`, `{"min_verify_version":-1}`,
		`{"auto_rotate_days":3651}`, `{"destroy_waiting_days":0}`, `{"destroy_waiting_days":366}`,
		`{}`, `{"min_verify_version":"1"}`, `{"min_verify_version":1.5}`,
	} {
		r := h.configure(t, name, bad)
		if r.Status != http.StatusBadRequest {
			t.Errorf("config %s: %d %s", bad, r.Status, r.Raw)
			continue
		}
		checkEnvelope(t, r, api.CodeBadRequest)
	}
	r := h.configure(t, name, api.ConfigureKeyRequest{AutoRotateDays: ptr(3650), DestroyWaitingDays: ptr(365), MinVerifyVersion: ptr(2)})
	var k api.KeyInfo
	r.decodeInto(t, &k)
	if r.Status != 200 || k.AutoRotateDays != 3650 || k.DestroyWaitingDays != 365 || k.MinVerifyVersion != 2 {
		t.Fatalf("config answered %d %+v", r.Status, k)
	}
	if k := h.getKeyInfo(t, wname); k.DestroyWaitingDays != 7 || k.AutoRotateDays != 0 {
		t.Errorf("defaults: destroy_waiting_days %d, auto_rotate_days %d", k.DestroyWaitingDays, k.AutoRotateDays)
	}
	r = h.configure(t, name, api.ConfigureKeyRequest{AutoRotateDays: ptr(0)})
	k = api.KeyInfo{}
	r.decodeInto(t, &k)
	if k.AutoRotateDays != 0 {
		t.Errorf("auto_rotate_days 0 did not turn it off: %+v", k)
	}
}

// TestAutoRotateThroughAPI: auto_rotate_days set through the API makes the
// scheduler rotate the key when its clock reaches the due time.
func TestAutoRotateThroughAPI(t *testing.T) {
	clock := &testClock{t: time.Now().UTC().Truncate(time.Second)}
	h, sched := newClockedHarness(t, clock)
	kid := h.createKey(t, "acme", "auto", "ml-dsa-44")
	name := strings.TrimSuffix(kid, "#v1")
	if r := h.configure(t, name, api.ConfigureKeyRequest{AutoRotateDays: ptr(2)}); r.Status != 200 {
		t.Fatalf("config: %d %s", r.Status, r.Raw)
	}
	clock.Advance(48*time.Hour - time.Second)
	if rep, _ := sched.Tick(context.Background()); len(rep.Rotated) != 0 {
		t.Fatalf("rotated early: %+v", rep)
	}
	clock.Advance(time.Second)
	if rep, err := sched.Tick(context.Background()); err != nil || len(rep.Rotated) != 1 {
		t.Fatalf("tick: %+v %v", rep, err)
	}
	k := h.getKeyInfo(t, name)
	if k.CurrentVersion != 2 || k.KID != name+"#v2" || k.Versions[0].State != "enabled" {
		t.Fatalf("after auto-rotation: %+v", k)
	}
}

// keyInfoCheck checks a KeyInfo answer for the hostile table's control rows.
func keyInfoCheck(name string, minVerify, destroyWaiting uint32) func(t *testing.T, r response) {
	return func(t *testing.T, r response) {
		var k api.KeyInfo
		r.decodeInto(t, &k)
		if k.Name != name || k.MinVerifyVersion != minVerify || k.DestroyWaitingDays != destroyWaiting || k.AutoRotateDays != 0 {
			t.Errorf("KeyInfo %+v; want %s with min_verify_version %d and destroy_waiting_days %d", k, name, minVerify, destroyWaiting)
		}
		for _, v := range k.Versions {
			if v.State != "enabled" || v.DestroyAt != "" {
				t.Errorf("version %d: state %s, destroy_at %q", v.Version, v.State, v.DestroyAt)
			}
		}
	}
}
