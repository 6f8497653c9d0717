package sig

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/ron-kms/ron-kms/internal/alg"
	"github.com/ron-kms/ron-kms/internal/testvectors"
)

// TestCheckPublicKeyEd25519: every public key of the CCTV vectors flagged
// LowOrderA (8 points, 14 encodings) is refused with ErrWeakPublicKey, and
// is still accepted by NewPublicKey, under which each verifies at least one
// of the vectors' crafted signatures (the forgery the check prevents); every
// other key of the file, mixed-order points included, passes; so do
// generated keys. 32 bytes that are no point are refused too.
func TestCheckPublicKeyEd25519(t *testing.T) {
	s := ed25519For(t)
	c := Scheme(s).(PublicKeyChecker)
	weak := testvectors.SmallOrderEd25519Keys(t)
	if len(weak) != 14 {
		t.Fatalf("%d small-order encodings in the CCTV vectors, want 8 points in 14 encodings", len(weak))
	}
	forged := map[string]bool{}
	for _, v := range testvectors.CCTVEd25519(t) {
		pub := mustHex(t, v.A)
		err := c.CheckPublicKey(pub)
		if !slices.Contains(weak, v.A) {
			if err != nil {
				t.Errorf("A %s (%v): %v, want accepted", v.A, v.Flags, err)
			}
			continue
		}
		if !errors.Is(err, ErrWeakPublicKey) {
			t.Errorf("A %s: CheckPublicKey = %v, want ErrWeakPublicKey", v.A, err)
		}
		k, err := s.NewPublicKey(pub)
		if err != nil {
			t.Fatalf("NewPublicKey(%s) = %v: a key on record must keep loading", v.A, err)
		}
		if k.Verify([]byte(v.M), mustHex(t, v.R+v.S), nil) == nil {
			forged[v.A] = true
		}
	}
	for _, a := range weak {
		if !forged[a] {
			t.Errorf("no vector verifies under the small-order key %s", a)
		}
	}

	// The speccheck cases 0 to 2 use one of them.
	if err := c.CheckPublicKey(mustHex(t, speccheckCases(t)[0].PubKey)); !errors.Is(err, ErrWeakPublicKey) {
		t.Errorf("speccheck case 0 key: %v, want ErrWeakPublicKey", err)
	}
	// y = 2 is not on the curve: no point at all.
	notPoint := make([]byte, 32)
	notPoint[0] = 2
	if _, err := s.NewPublicKey(notPoint); err != nil {
		t.Fatalf("NewPublicKey(y = 2): %v", err)
	}
	if err := c.CheckPublicKey(notPoint); !errors.Is(err, ErrWeakPublicKey) {
		t.Errorf("y = 2: %v, want ErrWeakPublicKey", err)
	}
	if err := c.CheckPublicKey(make([]byte, 31)); !errors.Is(err, ErrKeySize) {
		t.Errorf("31 bytes: %v, want ErrKeySize", err)
	}
}

// TestCheckPublicKeyMLDSA: the all-zero key and any key with t1 = 0 are
// refused; NewPublicKey still loads them; generated keys pass.
func TestCheckPublicKeyMLDSA(t *testing.T) {
	for _, name := range []string{alg.MLDSA44, alg.MLDSA65, alg.MLDSA87} {
		t.Run(name, func(t *testing.T) {
			s, err := For(name)
			if err != nil {
				t.Fatal(err)
			}
			c := s.(PublicKeyChecker)
			n := s.Alg().PublicKeySize
			rhoOnly := bytes.Repeat([]byte{0x5c}, mldsaRhoSize)
			for what, pub := range map[string][]byte{
				"all zero":  make([]byte, n),
				"t1 = 0":    append(rhoOnly, make([]byte, n-mldsaRhoSize)...),
				"last byte": append(make([]byte, n-1), 1), // t1 ≠ 0: passes
			} {
				if _, err := s.NewPublicKey(pub); err != nil {
					t.Fatalf("%s: NewPublicKey = %v: a key on record must keep loading", what, err)
				}
				err := c.CheckPublicKey(pub)
				if what == "last byte" {
					if err != nil {
						t.Errorf("%s: %v, want accepted", what, err)
					}
				} else if !errors.Is(err, ErrWeakPublicKey) {
					t.Errorf("%s: %v, want ErrWeakPublicKey", what, err)
				}
			}
			if err := c.CheckPublicKey(make([]byte, n-1)); !errors.Is(err, ErrKeySize) {
				t.Errorf("short key: %v, want ErrKeySize", err)
			}
		})
	}
}

// TestCheckPublicKeyGenerated: keys derived from seeds pass the check of
// every scheme that has one, composite included; a composite key with a
// small-order Ed25519 component or a zero ML-DSA t1 is refused.
func TestCheckPublicKeyGenerated(t *testing.T) {
	for name, s := range schemes {
		c, ok := s.(PublicKeyChecker)
		if !ok {
			continue
		}
		for range 8 {
			k, err := s.NewPrivateKey(s.GenerateSeed())
			if err != nil {
				t.Fatal(err)
			}
			if err := c.CheckPublicKey(k.Public().Bytes()); err != nil {
				t.Errorf("%s: generated key refused: %v", name, err)
			}
		}
	}
	s, err := For(alg.MLDSA65Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.NewPrivateKey(s.GenerateSeed())
	if err != nil {
		t.Fatal(err)
	}
	good := k.Public().Bytes()
	n := len(good) - 32
	smallEd := slices.Concat(good[:n], mustHex(t, testvectors.SmallOrderEd25519Keys(t)[0]))
	zeroPQ := slices.Concat(good[:mldsaRhoSize], make([]byte, n-mldsaRhoSize), good[n:])
	for what, pub := range map[string][]byte{"small-order ed25519": smallEd, "zero ML-DSA t1": zeroPQ} {
		if err := s.(PublicKeyChecker).CheckPublicKey(pub); !errors.Is(err, ErrWeakPublicKey) {
			t.Errorf("composite with a %s component: %v, want ErrWeakPublicKey", what, err)
		}
	}
}
