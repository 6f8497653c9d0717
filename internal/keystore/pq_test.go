package keystore

import (
	"context"
	"crypto/ed25519"
	"crypto/mldsa"
	"errors"
	"fmt"
	"testing"
)

// TestPostQuantumSignatures signs with every signature algorithm, checks
// the result with the keystore and, where the standard library has the
// algorithm, independently of it.
func TestPostQuantumSignatures(t *testing.T) {
	ctx := context.Background()
	ks := newMemKS(t)
	params := map[string]mldsa.Parameters{"ml-dsa-44": mldsa.MLDSA44(), "ml-dsa-65": mldsa.MLDSA65(), "ml-dsa-87": mldsa.MLDSA87()}
	for _, alg := range []string{"ed25519", "ml-dsa-44", "ml-dsa-65", "ml-dsa-87", "slh-dsa-sha2-128s", "mldsa65-ed25519"} {
		t.Run(alg, func(t *testing.T) {
			k := createAlg(t, ks, alg)
			msg := []byte("message for " + alg)
			s, err := ks.Sign(ctx, Ref{Name: k.Name}, msg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ks.Verify(ctx, Ref{Name: k.Name, Version: 1}, msg, s.Parts, Options{}); err != nil {
				t.Fatalf("verify: %v", err)
			}
			if _, err := ks.Verify(ctx, Ref{Name: k.Name}, []byte("other"), s.Parts, Options{}); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("other message: %v", err)
			}
			if p, ok := params[alg]; ok {
				pub, err := mldsa.NewPublicKey(p, k.Versions[0].PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				if err := mldsa.Verify(pub, msg, s.Parts[0].Sig, nil); err != nil {
					t.Fatalf("crypto/mldsa rejects our signature: %v", err)
				}
				// With a context, the standard library needs the same context.
				cs, err := ks.Sign(ctx, Ref{Name: k.Name}, msg, Options{Context: []byte("ctx")})
				if err != nil {
					t.Fatal(err)
				}
				if err := mldsa.Verify(pub, msg, cs.Parts[0].Sig, &mldsa.Options{Context: "ctx"}); err != nil {
					t.Fatalf("crypto/mldsa with context: %v", err)
				}
				if mldsa.Verify(pub, msg, cs.Parts[0].Sig, nil) == nil {
					t.Fatal("a context signature verifies without its context")
				}
				if _, err := ks.Verify(ctx, Ref{Name: k.Name}, msg, cs.Parts, Options{}); !errors.Is(err, ErrInvalidSignature) {
					t.Fatalf("context signature verified without context: %v", err)
				}
				if _, err := ks.Sign(ctx, Ref{Name: k.Name}, msg, Options{Context: make([]byte, 256)}); err == nil {
					t.Fatal("a 256-byte context was accepted")
				}
			}
			if alg == "ed25519" && !ed25519.Verify(k.Versions[0].PublicKey, msg, s.Parts[0].Sig) {
				t.Fatal("crypto/ed25519 rejects our signature")
			}
		})
	}
}

// TestCompositeModes: the three verify modes accept and reject the right
// combinations of component signatures.
func TestCompositeModes(t *testing.T) {
	ctx := context.Background()
	ks := newMemKS(t)
	k := createAlg(t, ks, "mldsa65-ed25519")
	msg := []byte("hybrid")
	s, err := ks.Sign(ctx, Ref{Name: k.Name}, msg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Parts) != 2 || s.Parts[0].Alg != "ml-dsa-65" || s.Parts[1].Alg != "ed25519" {
		t.Fatalf("composite parts: %+v", s.Parts)
	}
	pq, classical := s.Parts[0], s.Parts[1]
	bad := func(p Part) Part {
		b := append([]byte(nil), p.Sig...)
		b[len(b)/2] ^= 1
		return Part{Alg: p.Alg, Sig: b}
	}
	cases := []struct {
		name    string
		parts   []Part
		ok      map[Mode]bool
		checked map[Mode]string
	}{
		{"both valid", []Part{pq, classical},
			map[Mode]bool{ModeAnd: true, ModeOr: true, ModePQOnly: true},
			map[Mode]string{ModeAnd: "[ml-dsa-65 ed25519]", ModeOr: "[ml-dsa-65 ed25519]", ModePQOnly: "[ml-dsa-65]"}},
		{"classical bad", []Part{pq, bad(classical)},
			map[Mode]bool{ModeAnd: false, ModeOr: true, ModePQOnly: true}, nil},
		{"pq bad", []Part{bad(pq), classical},
			map[Mode]bool{ModeAnd: false, ModeOr: true, ModePQOnly: false}, nil},
		{"both bad", []Part{bad(pq), bad(classical)},
			map[Mode]bool{ModeAnd: false, ModeOr: false, ModePQOnly: false}, nil},
		{"pq only given", []Part{pq},
			map[Mode]bool{ModeAnd: false, ModeOr: true, ModePQOnly: true}, nil},
		{"classical only given", []Part{classical},
			map[Mode]bool{ModeAnd: false, ModeOr: true, ModePQOnly: false},
			map[Mode]string{ModePQOnly: "[]"}},
	}
	for _, c := range cases {
		for _, m := range []Mode{ModeAnd, ModeOr, ModePQOnly} {
			res, err := ks.Verify(ctx, Ref{Name: k.Name}, msg, c.parts, Options{Mode: m})
			switch {
			case c.ok[m] && err != nil:
				t.Errorf("%s, mode %s: %v, want valid", c.name, m, err)
			case !c.ok[m] && !errors.Is(err, ErrInvalidSignature):
				t.Errorf("%s, mode %s: %v, want invalid", c.name, m, err)
			case c.ok[m] && res.SatisfiedMode != m.String():
				t.Errorf("%s, mode %s: satisfied %q", c.name, m, res.SatisfiedMode)
			}
			if want, ok := c.checked[m]; ok && fmt.Sprint(res.Checked) != want {
				t.Errorf("%s, mode %s: checked %v, want %s", c.name, m, res.Checked, want)
			}
		}
	}
	// Malformed part lists are errors, not invalid signatures.
	for _, parts := range [][]Part{{pq, pq}, {{Alg: "ml-dsa-44", Sig: pq.Sig}}} {
		if _, err := ks.Verify(ctx, Ref{Name: k.Name}, msg, parts, Options{}); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("parts %v: %v", []string{parts[0].Alg}, err)
		}
	}
	// pq_only on a classical key cannot hold.
	ek := createAlg(t, ks, "ed25519")
	es, _ := ks.Sign(ctx, Ref{Name: ek.Name}, msg, Options{})
	if _, err := ks.Verify(ctx, Ref{Name: ek.Name}, msg, es.Parts, Options{Mode: ModePQOnly}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("pq_only on ed25519: %v", err)
	}
}
