package httpapi

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/metrics"
)

// rotate rotates a key through the API with the admin token and returns the
// new kid.
func (h *harness) rotate(t testing.TB, name string) string {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/keys/"+name+"/rotate", h.Admin, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("rotate %s: %d %s", name, r.Status, r.Raw)
	}
	var out api.RotateResponse
	r.decodeInto(t, &out)
	return out.KID
}

// wrapOK wraps with token and requires a 200; the answer is decoded strictly.
func (h *harness) wrapOK(t testing.TB, token string, req api.WrapRequest) api.WrapResponse {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/wrap", token, req)
	if r.Status != http.StatusOK {
		t.Fatalf("wrap with %s: %d %s", req.KID, r.Status, r.Raw)
	}
	var out api.WrapResponse
	r.decodeInto(t, &out)
	// The plaintext comes back only when the server generated it.
	if _, has := r.JSON["plaintext_key_b64"]; has != (req.Size != 0) {
		t.Errorf("wrap (size %d): plaintext_key_b64 present = %v", req.Size, has)
	}
	return out
}

func (h *harness) unwrapOK(t testing.TB, token string, req api.UnwrapRequest) api.UnwrapResponse {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/unwrap", token, req)
	if r.Status != http.StatusOK {
		t.Fatalf("unwrap: %d %s", r.Status, r.Raw)
	}
	var out api.UnwrapResponse
	r.decodeInto(t, &out)
	return out
}

func (h *harness) encryptOK(t testing.TB, token string, req api.EncryptRequest) api.EncryptResponse {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/encrypt", token, req)
	if r.Status != http.StatusOK {
		t.Fatalf("encrypt with %s: %d %s", req.KID, r.Status, r.Raw)
	}
	var out api.EncryptResponse
	r.decodeInto(t, &out)
	return out
}

func (h *harness) decryptOK(t testing.TB, token string, req api.DecryptRequest) api.DecryptResponse {
	t.Helper()
	r := h.do(t, "POST", "/v1/kms/decrypt", token, req)
	if r.Status != http.StatusOK {
		t.Fatalf("decrypt: %d %s", r.Status, r.Raw)
	}
	var out api.DecryptResponse
	r.decodeInto(t, &out)
	return out
}

// mustB64 decodes standard base64 or fails the test.
func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := api.DecodeB64("test", s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// relabel rewrites the key name and version in the header of a wrap
// envelope or a symmetric ciphertext. Both formats start with a 3-byte magic
// and a format byte, then u16 len(name) ‖ name ‖ u32 version, big-endian;
// everything after is kept. The result names another key (or version) but
// was made by the original one, so it must never open.
func relabel(b []byte, name string, version uint32) []byte {
	n := int(binary.BigEndian.Uint16(b[4:6]))
	out := append([]byte{}, b[:4]...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(name)))
	out = append(out, name...)
	out = binary.BigEndian.AppendUint32(out, version)
	return append(out, b[6+n+4:]...)
}

// flip returns a copy of b with one bit of byte i flipped (i < 0 counts
// from the end).
func flip(b []byte, i int) []byte {
	out := bytes.Clone(b)
	if i < 0 {
		i += len(out)
	}
	out[i] ^= 0x01
	return out
}

// TestDataRoundTrip: for each wrap algorithm, wrap → unwrap and datakey →
// unwrap, and for aes-256-gcm encrypt → decrypt, each across a rotation:
// what the old version made still opens, names the old version, and only
// the new version makes new envelopes. Tokens are as narrow as each
// operation allows (one scope, tenant acme).
func TestDataRoundTrip(t *testing.T) {
	h := newHarness(t)
	tok := func(s captoken.Scope) string {
		return h.mint(t, captoken.Restrictions{Scopes: []captoken.Scope{s}, Tenant: "acme"})
	}
	wrapTok, unwrapTok := tok(captoken.ScopeWrap), tok(captoken.ScopeUnwrap)
	encTok, decTok := tok(captoken.ScopeEncrypt), tok(captoken.ScopeDecrypt)
	aad := api.EncodeB64([]byte("tenant=acme;object=42"))

	for _, alg := range []string{"x25519", "ml-kem-768", "mlkem768-x25519"} {
		t.Run("wrap/"+alg, func(t *testing.T) {
			kid1 := h.createKey(t, "acme", "data", alg)
			name := strings.TrimSuffix(kid1, "#v1")
			dk := bytes.Repeat([]byte{0x5a}, 32)

			type sealed struct {
				env, aad string
				key      []byte
				kid      string
			}
			var made []sealed
			mk := func(wantKID string) {
				// A caller's data key, with and without aad.
				for _, a := range []string{aad, ""} {
					w := h.wrapOK(t, wrapTok, api.WrapRequest{KID: name, PlaintextKeyB64: api.EncodeB64(dk), AADB64: a})
					if w.KID != wantKID || w.Alg != alg || w.WrappedB64 == "" {
						t.Fatalf("wrap answered kid %s alg %s, want %s %s", w.KID, w.Alg, wantKID, alg)
					}
					made = append(made, sealed{w.WrappedB64, a, dk, wantKID})
				}
				// A generated data key (size), also with the explicit kid.
				for _, size := range []int{32, 1, api.MaxDataKey} {
					w := h.wrapOK(t, wrapTok, api.WrapRequest{KID: wantKID, Size: size, AADB64: aad})
					key := mustB64(t, w.PlaintextKeyB64)
					if w.KID != wantKID || w.Alg != alg || len(key) != size {
						t.Fatalf("datakey %d answered kid %s alg %s and %d bytes", size, w.KID, w.Alg, len(key))
					}
					made = append(made, sealed{w.WrappedB64, aad, key, wantKID})
				}
			}
			check := func() {
				t.Helper()
				for i, s := range made {
					u := h.unwrapOK(t, unwrapTok, api.UnwrapRequest{WrappedB64: s.env, AADB64: s.aad})
					if u.KID != s.kid || u.Alg != alg || !bytes.Equal(mustB64(t, u.PlaintextKeyB64), s.key) {
						t.Errorf("envelope %d: unwrap answered kid %s alg %s (want %s %s), key equal %v",
							i, u.KID, u.Alg, s.kid, alg, bytes.Equal(mustB64(t, u.PlaintextKeyB64), s.key))
					}
					// The aad is bound: another one (or none) does not open.
					other := api.EncodeB64([]byte("other aad"))
					r := h.do(t, "POST", "/v1/kms/unwrap", unwrapTok, api.UnwrapRequest{WrappedB64: s.env, AADB64: other})
					if r.Status != http.StatusBadRequest {
						t.Errorf("envelope %d with another aad: %d %s", i, r.Status, r.Raw)
					}
				}
			}
			mk(kid1)
			check()
			// Two envelopes of the same key are never equal (fresh HPKE enc).
			if made[0].env == made[len(made)-1].env || made[0].env == made[1].env {
				t.Error("two wraps gave the same envelope")
			}

			kid2 := h.rotate(t, name)
			if kid2 != name+"#v2" {
				t.Fatalf("rotate answered %s", kid2)
			}
			// The old version no longer wraps; the old envelopes still open
			// and name v1.
			r := h.do(t, "POST", "/v1/kms/wrap", wrapTok, api.WrapRequest{KID: kid1, Size: 32})
			if r.Status != http.StatusConflict {
				t.Errorf("wrap with %s after rotation: %d %s", kid1, r.Status, r.Raw)
			}
			n := len(made)
			mk(kid2)
			check()
			// An envelope of v2 relabelled to v1 does not open with v1.
			env := relabel(mustB64(t, made[n].env), name, 1)
			r = h.do(t, "POST", "/v1/kms/unwrap", unwrapTok, api.UnwrapRequest{WrappedB64: api.EncodeB64(env), AADB64: made[n].aad})
			if r.Status != http.StatusBadRequest {
				t.Errorf("v2 envelope relabelled to v1: %d %s", r.Status, r.Raw)
			}
		})
	}

	t.Run("encrypt/aes-256-gcm", func(t *testing.T) {
		kid1 := h.createKey(t, "acme", "data", "aes-256-gcm")
		name := strings.TrimSuffix(kid1, "#v1")
		type sealed struct {
			ct, aad string
			pt      []byte
			kid     string
		}
		var made []sealed
		pts := [][]byte{[]byte("hello"), bytes.Repeat([]byte{0}, api.MaxPlaintext), {0xff}}
		mk := func(wantKID string) {
			for i, pt := range pts {
				a := aad
				if i == 1 {
					a = ""
				}
				for _, kid := range []string{name, wantKID} {
					e := h.encryptOK(t, encTok, api.EncryptRequest{KID: kid, PlaintextB64: api.EncodeB64(pt), AADB64: a})
					if e.KID != wantKID || e.CiphertextB64 == "" {
						t.Fatalf("encrypt answered kid %s, want %s", e.KID, wantKID)
					}
					made = append(made, sealed{e.CiphertextB64, a, pt, wantKID})
				}
			}
		}
		check := func() {
			t.Helper()
			for i, s := range made {
				d := h.decryptOK(t, decTok, api.DecryptRequest{CiphertextB64: s.ct, AADB64: s.aad})
				if d.KID != s.kid || !bytes.Equal(mustB64(t, d.PlaintextB64), s.pt) {
					t.Errorf("ciphertext %d: decrypt answered kid %s (want %s), plaintext equal %v", i, d.KID, s.kid, bytes.Equal(mustB64(t, d.PlaintextB64), s.pt))
				}
				r := h.do(t, "POST", "/v1/kms/decrypt", decTok, api.DecryptRequest{CiphertextB64: s.ct, AADB64: api.EncodeB64([]byte("x"))})
				if r.Status != http.StatusBadRequest {
					t.Errorf("ciphertext %d with another aad: %d %s", i, r.Status, r.Raw)
				}
			}
		}
		mk(kid1)
		check()
		if made[0].ct == made[1].ct {
			t.Error("two encryptions of the same plaintext gave the same ciphertext")
		}
		kid2 := h.rotate(t, name)
		r := h.do(t, "POST", "/v1/kms/encrypt", encTok, api.EncryptRequest{KID: kid1, PlaintextB64: "aGk="})
		if r.Status != http.StatusConflict {
			t.Errorf("encrypt with %s after rotation: %d %s", kid1, r.Status, r.Raw)
		}
		n := len(made)
		mk(kid2)
		check()
		ct := relabel(mustB64(t, made[n].ct), name, 1)
		r = h.do(t, "POST", "/v1/kms/decrypt", decTok, api.DecryptRequest{CiphertextB64: api.EncodeB64(ct), AADB64: made[n].aad})
		if r.Status != http.StatusBadRequest {
			t.Errorf("v2 ciphertext relabelled to v1: %d %s", r.Status, r.Raw)
		}
	})

	// A token of one data scope does not do another's work.
	t.Run("scopes", func(t *testing.T) {
		kidW := h.createKey(t, "acme", "scopes", "x25519")
		kidE := h.createKey(t, "acme", "scopes", "aes-256-gcm")
		w := h.wrapOK(t, wrapTok, api.WrapRequest{KID: kidW, Size: 16})
		e := h.encryptOK(t, encTok, api.EncryptRequest{KID: kidE, PlaintextB64: "aGk="})
		for _, c := range []struct {
			path, token string
			body        any
		}{
			{"/v1/kms/unwrap", wrapTok, api.UnwrapRequest{WrappedB64: w.WrappedB64}},
			{"/v1/kms/wrap", unwrapTok, api.WrapRequest{KID: kidW, Size: 16}},
			{"/v1/kms/decrypt", encTok, api.DecryptRequest{CiphertextB64: e.CiphertextB64}},
			{"/v1/kms/encrypt", decTok, api.EncryptRequest{KID: kidE, PlaintextB64: "aGk="}},
			{"/v1/kms/unwrap", decTok, api.UnwrapRequest{WrappedB64: w.WrappedB64}},
			{"/v1/kms/decrypt", unwrapTok, api.DecryptRequest{CiphertextB64: e.CiphertextB64}},
		} {
			r := h.do(t, "POST", c.path, c.token, c.body)
			if r.Status != http.StatusForbidden {
				t.Errorf("%s with a token of another scope: %d %s", c.path, r.Status, r.Raw)
			} else {
				checkEnvelope(t, r, api.CodeNoCapability)
			}
		}
		// Nothing secret in an error message.
		r := h.do(t, "POST", "/v1/kms/unwrap", unwrapTok, api.UnwrapRequest{WrappedB64: w.WrappedB64, AADB64: aad})
		var e2 api.Error
		if json.Unmarshal(r.Raw, &e2) != nil || r.Status != http.StatusBadRequest || strings.Contains(string(r.Raw), w.PlaintextKeyB64) {
			t.Errorf("unwrap with a wrong aad: %d %s", r.Status, r.Raw)
		}
	})
}

// withOptions serves the harness's keystore and token authority again, on a
// second listener, with other server options.
func (h *harness) withOptions(t testing.TB, opts Options) *harness {
	t.Helper()
	s, err := New(h.KS, h.Auth, metrics.New(), slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	h2 := *h
	h2.URL, h2.client = srv.URL, srv.Client()
	h2.client.Timeout = 30 * time.Second
	return &h2
}

// TestVerifyModeFloor: a request may ask for a mode at least as strict as
// the server's floor, never a looser one (SPEC §3.1).
func TestVerifyModeFloor(t *testing.T) {
	h := newHarness(t)
	for _, bad := range []string{"bogus", "AND", " and", "none"} {
		if _, err := New(h.KS, h.Auth, metrics.New(), slog.New(slog.DiscardHandler), Options{VerifyModeFloor: bad}); err == nil {
			t.Errorf("New accepted the floor %q", bad)
		}
	}
	kidC := h.createKey(t, "acme", "floor", "mldsa65-ed25519")
	kidE := h.createKey(t, "acme", "floor", "ed25519")
	kidM := h.createKey(t, "acme", "floor", "ml-dsa-44")
	payload := strings.Repeat("5c", 32)
	sigC := h.signPayload(t, kidC, payload).Sigs
	sigE := h.signPayload(t, kidE, payload).Sigs
	sigM := h.signPayload(t, kidM, payload).Sigs
	zeroPQ := api.Signature{Alg: sigC[0].Alg, SignatureB64: api.EncodeB64(make([]byte, 16))}
	onlyClassical := []api.Signature{zeroPQ, sigC[1]} // a broken ML-DSA part, a good Ed25519 one

	type tc struct {
		floor, mode string // mode "" sends no policy
		kid         string
		sigs        []api.Signature
		status      int
		code        api.Code
		ok          bool
		satisfied   string
	}
	cases := []tc{
		{"or", "or", kidC, onlyClassical, 200, "", true, "or"},
		{"or", "or", kidC, sigC, 200, "", true, "or"},
		{"or", "and", kidC, onlyClassical, 200, "", false, ""},
		{"or", "pq_only", kidC, onlyClassical, 200, "", false, ""},
		{"or", "pq_only", kidC, sigC, 200, "", true, "pq_only"},
		{"and", "or", kidC, sigC, 400, api.CodeUnsupported, false, ""},
		{"and", "", kidC, onlyClassical, 200, "", false, ""},
		{"and", "", kidC, sigC, 200, "", true, "and"},
		{"pq_only", "or", kidC, sigC, 400, api.CodeUnsupported, false, ""},
		{"pq_only", "and", kidC, sigC, 400, api.CodeUnsupported, false, ""},
		{"pq_only", "pq_only", kidC, sigC, 200, "", true, "pq_only"},
		{"pq_only", "", kidC, sigC, 200, "", true, "pq_only"},
		{"pq_only", "", kidC, sigC[1:], 200, "", false, ""},
		{"pq_only", "", kidM, sigM, 200, "", true, ""},
		// pq_only from the floor refuses an ed25519 key as a request would.
		{"pq_only", "", kidE, sigE, 400, api.CodeUnsupported, false, ""},
		{"or", "", kidE, sigE, 200, "", true, ""},
		{"or", "bogus", kidE, sigE, 400, api.CodeBadRequest, false, ""},
	}
	servers := map[string]*harness{}
	for _, c := range cases {
		srv := servers[c.floor]
		if srv == nil {
			srv = h.withOptions(t, Options{VerifyModeFloor: c.floor})
			servers[c.floor] = srv
		}
		req := api.VerifyRequest{KID: c.kid, PayloadB3: payload, Sigs: c.sigs}
		if c.mode != "" {
			req.Policy = &api.VerifyPolicy{Mode: c.mode}
		}
		name := fmt.Sprintf("floor %s, mode %q, %s, %d sigs", c.floor, c.mode, c.kid[strings.Index(c.kid, "/floor/")+7:strings.LastIndexByte(c.kid, '/')], len(c.sigs))
		r := srv.do(t, "POST", "/v1/kms/verify", srv.Admin, req)
		if r.Status != c.status {
			t.Errorf("%s: %d %s, want %d", name, r.Status, r.Raw, c.status)
			continue
		}
		if c.status != 200 {
			checkEnvelope(t, r, c.code)
			continue
		}
		var out api.VerifyResponse
		r.decodeInto(t, &out)
		if out.OK != c.ok || out.Details.SatisfiedMode != c.satisfied {
			t.Errorf("%s: ok %v satisfied_mode %q, want %v %q", name, out.OK, out.Details.SatisfiedMode, c.ok, c.satisfied)
		}
	}
}
