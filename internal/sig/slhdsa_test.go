package sig

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// SLH-DSA-SHA2-128s signs slowly (hundreds of milliseconds, more under
// -race), so these tests sign as few times as they can.

func slhdsaFor(tb testing.TB) *slhdsaScheme {
	tb.Helper()
	s, err := For(alg.SLHDSASHA2128s)
	if err != nil {
		tb.Fatal(err)
	}
	return s.(*slhdsaScheme)
}

func TestSLHDSAEntry(t *testing.T) {
	a, ok := alg.Lookup(alg.SLHDSASHA2128s)
	if !ok {
		t.Fatal("slh-dsa-sha2-128s missing")
	}
	// FIPS 205 Table 2 (n = 16): 3n-byte key-generation seed, 2n-byte public
	// key, 7856-byte signature.
	want := alg.Alg{Name: "slh-dsa-sha2-128s", Kind: alg.KindSignature, SeedSize: 48, PublicKeySize: 32, OutputSize: 7856, Ops: alg.OpSign | alg.OpVerify, PostQuantum: true}
	if !reflect.DeepEqual(*a, want) {
		t.Errorf("slh-dsa-sha2-128s = %+v, want %+v", *a, want)
	}
	if s := slhdsaFor(t); s.n != 16 {
		t.Errorf("n = %d", s.n)
	}
}

func TestSLHDSAKeySizes(t *testing.T) {
	s := slhdsaFor(t)
	for _, n := range []int{0, 16, 32, 47, 49, 64} {
		in := bytes.Repeat([]byte{0xa5}, n)
		_, err := s.NewPrivateKey(in)
		if !errors.Is(err, ErrKeySize) {
			t.Errorf("NewPrivateKey(%d bytes) = %v, want ErrKeySize", n, err)
		} else if strings.Contains(err.Error(), "a5a5") {
			t.Errorf("error leaks key bytes: %v", err)
		}
	}
	for _, n := range []int{0, 16, 31, 33, 48, 64} {
		if _, err := s.NewPublicKey(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("NewPublicKey(%d bytes) = %v, want ErrKeySize", n, err)
		}
	}
}

// TestSLHDSASignVerify signs twice (hedged, with a context) and checks the
// verdicts on the signatures and on spoiled ones, the context limits, the
// use of crypto/rand, and that keys own their bytes.
func TestSLHDSASignVerify(t *testing.T) {
	s := slhdsaFor(t)
	seed := s.GenerateSeed()
	k, err := s.NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	clear(seed) // the key keeps its own copy
	pub := k.Public()
	msg := []byte("message")
	opts := &Options{Context: bytes.Repeat([]byte{'c'}, 255)}

	cryptotest.SetGlobalRandom(t, 3)
	sig, err := k.Sign(msg, opts)
	if err != nil {
		t.Fatal(err)
	}
	cryptotest.SetGlobalRandom(t, 3)
	again, err := k.Sign(msg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sig, again) {
		t.Error("Sign does not draw opt_rand from crypto/rand")
	}
	if len(sig) != s.Alg().OutputSize {
		t.Fatalf("%d-byte signature", len(sig))
	}
	if err := pub.Verify(msg, sig, opts); err != nil {
		t.Errorf("own signature: %v", err)
	}
	pk, err := s.NewPublicKey(pub.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := pk.Verify(msg, sig, opts); err != nil {
		t.Errorf("own signature, parsed public key: %v", err)
	}
	b := pk.Bytes()
	clear(b)
	if err := pk.Verify(msg, sig, opts); err != nil {
		t.Errorf("Bytes returned the key's own array: %v", err)
	}

	other, err := s.NewPrivateKey(s.GenerateSeed())
	if err != nil {
		t.Fatal(err)
	}
	otherCtx := bytes.Clone(opts.Context)
	otherCtx[0] ^= 1
	flipped := bytes.Clone(sig)
	flipped[len(flipped)/2] ^= 0x10
	for what, err := range map[string]error{
		"another message": pub.Verify([]byte("massage"), sig, opts),
		"another key":     other.Public().Verify(msg, sig, opts),
		"another context": pub.Verify(msg, sig, &Options{Context: otherCtx}),
		"no context":      pub.Verify(msg, sig, nil),
		"a flipped bit":   pub.Verify(msg, flipped, opts),
		"a short sig":     pub.Verify(msg, sig[:len(sig)-1], opts),
		"a long sig":      pub.Verify(msg, append(bytes.Clone(sig), 0), opts),
		"no sig":          pub.Verify(msg, nil, opts),
	} {
		if !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("verify with %s = %v, want ErrInvalidSignature", what, err)
		}
	}
	long := &Options{Context: make([]byte, 256)}
	if _, err := k.Sign(msg, long); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Sign with a 256-byte context = %v, want ErrUnsupported", err)
	}
	if err := pub.Verify(msg, sig, long); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Verify with a 256-byte context = %v, want ErrUnsupported", err)
	}
}

func TestSLHDSADestroy(t *testing.T) {
	s := slhdsaFor(t)
	seed := bytes.Repeat([]byte{0x5a}, s.Alg().SeedSize)
	k, err := s.NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	circlKey := *k.(*slhdsaPrivateKey).priv // shares circl's buffers
	enc, err := circlKey.MarshalBinary()    // SK.seed ‖ SK.prf ‖ PK.seed ‖ PK.root
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc[:48], seed) {
		t.Fatalf("circl's key does not hold the seed as given")
	}
	pubBefore := k.Public().Bytes()
	k.Destroy()
	k.Destroy()
	if enc, _ = circlKey.MarshalBinary(); !bytes.Equal(enc[:48], make([]byte, 48)) {
		t.Error("Destroy left SK.seed, SK.prf or PK.seed in circl's key")
	}
	if _, err := k.Sign(nil, nil); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("Sign after Destroy = %v", err)
	}
	if !bytes.Equal(k.Public().Bytes(), pubBefore) {
		t.Error("Public changed by Destroy")
	}
}

// TestSLHDSAConcurrentUse runs under -race: Verify from many goroutines
// while Destroy races with Sign.
func TestSLHDSAConcurrentUse(t *testing.T) {
	s := slhdsaFor(t)
	k, err := s.NewPrivateKey(s.GenerateSeed())
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("message")
	sig, err := k.Sign(msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := pub.Verify(msg, sig, nil); err != nil {
				t.Error(err)
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			if got, err := k.Sign(msg, nil); err == nil {
				if err := pub.Verify(msg, got, nil); err != nil {
					t.Errorf("Sign racing Destroy gave an invalid signature: %v", err)
				}
			} else if !errors.Is(err, ErrKeyDestroyed) {
				t.Error(err)
			}
		})
	}
	wg.Go(k.Destroy)
	wg.Wait()
}
