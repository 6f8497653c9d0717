package sig

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
)

// speccheckGo is what Go's crypto/ed25519.Verify says of each case
// (testdata/README.md: it accepts only 0, 1, 2, 3 and 11). It shows that the
// ZIP-215 rules are really in force: cases 4, 5, 9 and 10 separate them from
// Go's.
var speccheckGo = [12]bool{true, true, true, true, false, false, false, false, false, false, false, true}

// TestSpeccheck pins the verification rules: for every case, single
// verification, a batch of one and a batch mixing the case among 15 valid
// SUPERCOP signatures all give the ZIP-215 verdict, and the batch equation
// itself (not only the fallback) gives it.
func TestSpeccheck(t *testing.T) {
	s := ed25519For(t)
	cases := speccheckCases(t)
	valid := supercopVectors(t)
	for i, c := range cases {
		want := speccheckZIP215[i]
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			pub, msg, sig := mustHex(t, c.PubKey), mustHex(t, c.Message), mustHex(t, c.Signature)
			if got := ed25519.Verify(pub, msg, sig); got != speccheckGo[i] {
				t.Errorf("crypto/ed25519.Verify = %v, README says %v", got, speccheckGo[i])
			}
			k, err := s.NewPublicKey(pub)
			if err != nil {
				t.Fatalf("NewPublicKey: %v", err)
			}
			if k.(*ed25519PublicKey).exp() == nil {
				t.Errorf("public key cannot be precomputed")
			}
			check := func(what string, err error) {
				t.Helper()
				switch {
				case want && err != nil:
					t.Errorf("%s: %v, want valid", what, err)
				case !want && !errors.Is(err, ErrInvalidSignature):
					t.Errorf("%s: %v, want ErrInvalidSignature", what, err)
				}
			}
			check("Verify", k.Verify(msg, sig, nil))

			// A batch of one: the equation alone decides a valid case; an
			// invalid one fails the equation and then the single check.
			var st batchStats
			ok, errs := verifyBatch([]BatchItem{{Key: k, Message: msg, Signature: sig}}, &st)
			if ok != want || len(errs) != 1 {
				t.Errorf("batch of one: allOK = %v, %d errs", ok, len(errs))
			}
			check("batch of one", errs[0])
			wantStats := batchStats{equations: 1}
			if !want {
				wantStats.singles = 1
			}
			if st != wantStats {
				t.Errorf("batch of one: stats %+v, want %+v", st, wantStats)
			}

			// The case at position i among 15 valid signatures.
			items := make([]BatchItem, 0, 16)
			for j := range 15 {
				v := valid[64*j+i]
				vk, err := s.NewPublicKey(v.pub)
				if err != nil {
					t.Fatal(err)
				}
				items = append(items, BatchItem{Key: vk, Message: v.message, Signature: v.sig})
			}
			items = append(items[:i], append([]BatchItem{{Key: k, Message: msg, Signature: sig}}, items[i:]...)...)
			st = batchStats{}
			ok, errs = verifyBatch(items, &st)
			if ok != want || len(errs) != len(items) {
				t.Errorf("mixed batch: allOK = %v, %d errs", ok, len(errs))
			}
			for j, err := range errs {
				if j == i {
					check("mixed batch", err)
				} else if err != nil {
					t.Errorf("mixed batch: valid item %d: %v", j, err)
				}
			}
			if want && st != (batchStats{equations: 1}) {
				t.Errorf("mixed batch: stats %+v, want one passing equation", st)
			}
		})
	}
}
