package sig

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"

	"github.com/ron-kms/ron-kms/internal/alg"
)

func TestForCoversTheTable(t *testing.T) {
	for _, a := range alg.All() {
		s, err := For(a.Name)
		if a.Kind != alg.KindSignature {
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("For(%q) (kind %v) = %v, want ErrUnsupported", a.Name, a.Kind, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("signature algorithm %q has no scheme: %v", a.Name, err)
			continue
		}
		if s.Alg() != a {
			t.Errorf("For(%q).Alg() is not the table entry", a.Name)
		}
		if got := len(s.GenerateSeed()); got != a.SeedSize {
			t.Errorf("%q: GenerateSeed gives %d bytes, want %d", a.Name, got, a.SeedSize)
		}
	}
	for name := range schemes {
		if _, ok := alg.Lookup(name); !ok {
			t.Errorf("scheme %q is not in the algorithm table", name)
		}
	}
}

func TestForUnknown(t *testing.T) {
	for _, name := range []string{"", "Ed25519", "ed448", "ed25519ph", "ML-DSA-44"} {
		if s, err := For(name); !errors.Is(err, ErrUnsupported) || s != nil {
			t.Errorf("For(%q) = %v, %v; want ErrUnsupported", name, s, err)
		}
	}
}

func TestKeySizes(t *testing.T) {
	s := ed25519For(t)
	for _, n := range []int{0, 1, 31, 33, 64} {
		in := bytes.Repeat([]byte{0xa5}, n)
		_, err := s.NewPrivateKey(in)
		if !errors.Is(err, ErrKeySize) {
			t.Errorf("NewPrivateKey(%d bytes) = %v, want ErrKeySize", n, err)
		} else if strings.Contains(err.Error(), "a5a5") {
			t.Errorf("error leaks key bytes: %v", err)
		}
		if _, err := s.NewPublicKey(in); !errors.Is(err, ErrKeySize) {
			t.Errorf("NewPublicKey(%d bytes) = %v, want ErrKeySize", n, err)
		}
	}
}

func TestContextRefused(t *testing.T) {
	s := ed25519For(t)
	v := rfc8032Vectors[1]
	priv, err := s.NewPrivateKey(mustHex(t, v.seed))
	if err != nil {
		t.Fatal(err)
	}
	msg, sig := mustHex(t, v.message), mustHex(t, v.sig)
	ctx := &Options{Context: []byte("ctx")}
	if _, err := priv.Sign(msg, ctx); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Sign with context = %v, want ErrUnsupported", err)
	}
	if err := priv.Public().Verify(msg, sig, ctx); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Verify with context = %v, want ErrUnsupported", err)
	}
	if got, err := priv.Sign(msg, &Options{Context: []byte{}}); err != nil || !bytes.Equal(got, sig) {
		t.Errorf("Sign with empty context = %x, %v", got, err)
	}
}

func TestKeysOwnTheirBytes(t *testing.T) {
	s := ed25519For(t)
	v := rfc8032Vectors[2]
	seed, pub := mustHex(t, v.seed), mustHex(t, v.pub)
	priv, err := s.NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := s.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	clear(seed)
	clear(pub)
	got, err := priv.Sign(mustHex(t, v.message), nil)
	if err != nil || !bytes.Equal(got, mustHex(t, v.sig)) {
		t.Errorf("Sign after clearing the caller's seed = %x, %v", got, err)
	}
	b := pk.Bytes()
	if !bytes.Equal(b, mustHex(t, v.pub)) {
		t.Errorf("Bytes after clearing the caller's copy = %x", b)
	}
	clear(b)
	if err := pk.Verify(mustHex(t, v.message), mustHex(t, v.sig), nil); err != nil {
		t.Errorf("Bytes returned the key's own array: %v", err)
	}
}

func TestDestroy(t *testing.T) {
	s := ed25519For(t)
	v := rfc8032Vectors[0]
	k, err := s.NewPrivateKey(mustHex(t, v.seed))
	if err != nil {
		t.Fatal(err)
	}
	priv := k.(*ed25519PrivateKey).priv
	k.Destroy()
	k.Destroy()
	if !bytes.Equal(priv, make([]byte, len(priv))) {
		t.Error("Destroy left secret bytes")
	}
	if _, err := k.Sign(nil, nil); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("Sign after Destroy = %v", err)
	}
	if err := k.Public().Verify(nil, mustHex(t, v.sig), nil); err != nil {
		t.Errorf("Public after Destroy: %v", err)
	}
}

func TestGenerateSeed(t *testing.T) {
	s := ed25519For(t)
	a, b := s.GenerateSeed(), s.GenerateSeed()
	if len(a) != 32 || bytes.Equal(a, b) {
		t.Errorf("GenerateSeed: %d bytes, repeated: %v", len(a), bytes.Equal(a, b))
	}
	cryptotest.SetGlobalRandom(t, 1)
	c := s.GenerateSeed()
	cryptotest.SetGlobalRandom(t, 1)
	if d := s.GenerateSeed(); !bytes.Equal(c, d) {
		t.Error("GenerateSeed does not use crypto/rand")
	}
}

// TestConcurrentUse runs under -race: one key signs and verifies from many
// goroutines, and a batch verifies concurrently, while Destroy races with Sign.
func TestConcurrentUse(t *testing.T) {
	s := ed25519For(t)
	v := rfc8032Vectors[1]
	msg, sig := mustHex(t, v.message), mustHex(t, v.sig)
	priv, err := s.NewPrivateKey(mustHex(t, v.seed))
	if err != nil {
		t.Fatal(err)
	}
	pub := priv.Public()
	items := []BatchItem{{pub, msg, sig}, {pub, msg, sig}}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := priv.Sign(msg, nil)
				if err != nil || !bytes.Equal(got, sig) {
					t.Errorf("Sign = %x, %v", got, err)
				}
				if err := pub.Verify(msg, sig, nil); err != nil {
					t.Error(err)
				}
				if ok, _ := VerifyBatch(items); !ok {
					t.Error("VerifyBatch failed")
				}
			}
		})
	}
	wg.Wait()

	var wg2 sync.WaitGroup
	for range 4 {
		wg2.Go(func() {
			for range 50 {
				if got, err := priv.Sign(msg, nil); err == nil && !bytes.Equal(got, sig) {
					t.Errorf("Sign racing Destroy gave a wrong signature %x", got)
				} else if err != nil && !errors.Is(err, ErrKeyDestroyed) {
					t.Error(err)
				}
			}
		})
	}
	wg2.Go(priv.Destroy)
	wg2.Wait()
}
