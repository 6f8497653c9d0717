package keystore

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestBatches(t *testing.T) {
	ctx := context.Background()
	ks := newMemKS(t)
	a, b := create(t, ks, ""), create(t, ks, "")
	var sitems []SignItem
	for i := 0; i < 10; i++ {
		k := a
		if i%2 == 1 {
			k = b
		}
		sitems = append(sitems, SignItem{Ref: Ref{Name: k.Name}, Message: []byte(fmt.Sprint("msg", i))})
	}
	sitems[4].Ref.Version = 7 // no such version
	sres := ks.SignBatch(ctx, sitems)
	var vitems []VerifyItem
	for i, r := range sres {
		if i == 4 {
			if !errors.Is(r.Err, ErrNotFound) {
				t.Fatalf("item 4: %v", r.Err)
			}
			continue
		}
		if r.Err != nil {
			t.Fatalf("item %d: %v", i, r.Err)
		}
		vitems = append(vitems, VerifyItem{Ref: Ref{Name: sitems[i].Ref.Name, Version: r.Signature.Version}, Message: sitems[i].Message, Parts: r.Signature.Parts})
	}
	if errs, _ := ks.VerifyBatch(ctx, vitems); fmt.Sprint(errs) != fmt.Sprint(make([]error, len(vitems))) {
		t.Fatalf("valid batch: %v", errs)
	}
	// Corrupt item 2's message, point item 5 at an unknown key, give item 7
	// the wrong key's signature.
	vitems[2].Message = []byte("tampered")
	vitems[5].Ref.Name = "acme/billing/ed25519/0190b8a4-4f7c-7b7e-8a1d-1234567890ab"
	vitems[7].Parts = vitems[6].Parts
	errs, _ := ks.VerifyBatch(ctx, vitems)
	for i, err := range errs {
		switch i {
		case 2, 7:
			if !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("item %d: %v, want invalid signature", i, err)
			}
		case 5:
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("item 5: %v, want not found", err)
			}
		default:
			if err != nil {
				t.Errorf("item %d: %v", i, err)
			}
		}
	}
}
