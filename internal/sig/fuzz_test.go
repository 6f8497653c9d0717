package sig

import (
	"errors"
	"testing"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// FuzzVerify: any public key, message and signature bytes never panic;
// single verification, a batch of one and voi's plain ZIP-215 VerifyWithOptions
// (no precomputation) agree, and the batch equation alone agrees with them.
func FuzzVerify(f *testing.F) {
	for _, c := range speccheckCases(f) {
		f.Add(mustHex(f, c.PubKey), mustHex(f, c.Message), mustHex(f, c.Signature))
	}
	for _, v := range rfc8032Vectors {
		f.Add(mustHex(f, v.pub), mustHex(f, v.message), mustHex(f, v.sig))
	}
	f.Add([]byte{}, []byte{}, []byte{})
	s := ed25519For(f)
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		k, err := s.NewPublicKey(pub)
		if len(pub) != 32 {
			if !errors.Is(err, ErrKeySize) {
				t.Fatalf("NewPublicKey(%d bytes) = %v", len(pub), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("NewPublicKey: %v", err)
		}
		single := k.Verify(msg, sig, nil)
		if single != nil && !errors.Is(single, ErrInvalidSignature) {
			t.Fatalf("Verify: unexpected error %v", single)
		}
		if ref := voi.VerifyWithOptions(pub, msg, sig, zip215); ref != (single == nil) {
			t.Fatalf("Verify = %v, voi ZIP-215 = %v", single, ref)
		}
		var st batchStats
		ok, errs := verifyBatch([]BatchItem{{Key: k, Message: msg, Signature: sig}}, &st)
		if ok != (single == nil) || (errs[0] == nil) != (single == nil) {
			t.Fatalf("single %v, batch of one %v %v", single, ok, errs[0])
		}
		if equationOK := st.singles == 0; equationOK != (single == nil) {
			t.Fatalf("single %v, batch equation %v", single, equationOK)
		}
	})
}
