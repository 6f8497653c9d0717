package httpapi

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"

	"lukechampine.com/blake3"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/audit"
)

// recordingAuditor keeps every record the API appends, in order.
type recordingAuditor struct {
	mu sync.Mutex
	rs []audit.Record
}

func (a *recordingAuditor) AppendAll(_ context.Context, rs []audit.Record) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range rs {
		r.InputB3 = bytes.Clone(r.InputB3)
		a.rs = append(a.rs, r)
	}
	return nil
}

// last returns the newest record of op; the test fails if there is none.
func (a *recordingAuditor) last(t testing.TB, op string) audit.Record {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.rs) - 1; i >= 0; i-- {
		if a.rs[i].Op == op {
			return a.rs[i]
		}
	}
	t.Fatalf("no %s record", op)
	return audit.Record{}
}

func b3(b []byte) []byte {
	h := blake3.Sum256(b)
	return h[:]
}

// TestAuditInputIsCiphertext (SPEC §9): the input_b3 of encrypt, decrypt,
// wrap, unwrap and server-made data keys is BLAKE3-256 of the ciphertext or
// envelope the route returned or was sent, never of a plaintext or a key: a
// 4-digit plaintext or a 1-byte key would fall to a brute force of the
// audit log. A failed encrypt or wrap, which made no ciphertext, records no
// input_b3 at all.
func TestAuditInputIsCiphertext(t *testing.T) {
	rec := &recordingAuditor{}
	h := newHarnessAudited(t, nil, rec)
	aes := h.createKey(t, "acme", "data", "aes-256-gcm")
	kem := h.createKey(t, "acme", "data", "mlkem768-x25519")

	check := func(t *testing.T, op string, sealed, secret []byte) {
		t.Helper()
		r := rec.last(t, op)
		if r.Result != audit.ResultOK {
			t.Fatalf("%s record: result %q", op, r.Result)
		}
		if !bytes.Equal(r.InputB3, b3(sealed)) {
			t.Errorf("%s record: input_b3 %x, want BLAKE3 of the %d-byte ciphertext %x", op, r.InputB3, len(sealed), b3(sealed))
		}
		if bytes.Equal(r.InputB3, b3(secret)) {
			t.Errorf("%s record: input_b3 is BLAKE3 of the plaintext", op)
		}
	}

	t.Run("encrypt and decrypt", func(t *testing.T) {
		pt := []byte("4821") // a PIN: 10,000 guesses
		enc := h.encryptOK(t, h.Admin, api.EncryptRequest{KID: aes, PlaintextB64: api.EncodeB64(pt)})
		ct := mustB64(t, enc.CiphertextB64)
		check(t, "encrypt", ct, pt)
		h.decryptOK(t, h.Admin, api.DecryptRequest{CiphertextB64: enc.CiphertextB64})
		check(t, "decrypt", ct, pt)
	})
	t.Run("wrap and unwrap", func(t *testing.T) {
		key := []byte{0x5a} // a 1-byte key: 256 guesses
		w := h.wrapOK(t, h.Admin, api.WrapRequest{KID: kem, PlaintextKeyB64: api.EncodeB64(key)})
		env := mustB64(t, w.WrappedB64)
		check(t, "wrap", env, key)
		h.unwrapOK(t, h.Admin, api.UnwrapRequest{WrappedB64: w.WrappedB64})
		check(t, "unwrap", env, key)
	})
	t.Run("data key", func(t *testing.T) {
		w := h.wrapOK(t, h.Admin, api.WrapRequest{KID: kem, Size: 32})
		env := mustB64(t, w.WrappedB64)
		check(t, "wrap", env, mustB64(t, w.PlaintextKeyB64))
		h.unwrapOK(t, h.Admin, api.UnwrapRequest{WrappedB64: w.WrappedB64})
		check(t, "unwrap", env, mustB64(t, w.PlaintextKeyB64))
	})
	t.Run("failures record no plaintext hash", func(t *testing.T) {
		// A wrap key cannot encrypt, an aes key cannot wrap: both fail
		// after the plaintext was read.
		r := h.do(t, "POST", "/v1/kms/encrypt", h.Admin, api.EncryptRequest{KID: kem, PlaintextB64: api.EncodeB64([]byte("4821"))})
		checkEnvelope(t, r, api.CodeUnsupported)
		if got := rec.last(t, "encrypt"); got.Result != audit.ResultError || got.InputB3 != nil {
			t.Errorf("failed encrypt record: result %q, input_b3 %x; want error and none", got.Result, got.InputB3)
		}
		r = h.do(t, "POST", "/v1/kms/wrap", h.Admin, api.WrapRequest{KID: aes, PlaintextKeyB64: api.EncodeB64([]byte{0x5a})})
		if r.Status == http.StatusOK {
			t.Fatalf("wrap with an aes key answered %s", r.Raw)
		}
		if got := rec.last(t, "wrap"); got.Result != audit.ResultError || got.InputB3 != nil {
			t.Errorf("failed wrap record: result %q, input_b3 %x; want error and none", got.Result, got.InputB3)
		}
	})
}
