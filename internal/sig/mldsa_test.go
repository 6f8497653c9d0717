package sig

import (
	"bytes"
	"crypto/fips140"
	"crypto/mldsa"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// mldsaNames are the ML-DSA parameter sets, in table order.
var mldsaNames = []string{alg.MLDSA44, alg.MLDSA65, alg.MLDSA87}

func mldsaFor(tb testing.TB, name string) *mldsaScheme {
	tb.Helper()
	s, err := For(name)
	if err != nil {
		tb.Fatal(err)
	}
	return s.(*mldsaScheme)
}

// mldsaBoth returns the two implementations of s, circl first.
func mldsaBoth(s *mldsaScheme) []mldsaImpl { return []mldsaImpl{s.impls.circl, s.impls.std} }

func TestMLDSAEntries(t *testing.T) {
	// FIPS 204 Table 2: public key and signature sizes; the seed ξ is 32 bytes.
	want := map[string][2]int{
		alg.MLDSA44: {1312, 2420},
		alg.MLDSA65: {1952, 3309},
		alg.MLDSA87: {2592, 4627},
	}
	params := map[string]mldsa.Parameters{alg.MLDSA44: mldsa.MLDSA44(), alg.MLDSA65: mldsa.MLDSA65(), alg.MLDSA87: mldsa.MLDSA87()}
	for _, name := range mldsaNames {
		a, ok := alg.Lookup(name)
		if !ok {
			t.Fatalf("%s missing from the table", name)
		}
		w := alg.Alg{Name: name, Kind: alg.KindSignature, SeedSize: 32, PublicKeySize: want[name][0], OutputSize: want[name][1], Ops: alg.OpSign | alg.OpVerify, PostQuantum: true}
		if !reflect.DeepEqual(*a, w) {
			t.Errorf("%s = %+v, want %+v", name, *a, w)
		}
		p := params[name]
		if p.PublicKeySize() != a.PublicKeySize || p.SignatureSize() != a.OutputSize || mldsa.PrivateKeySize != a.SeedSize {
			t.Errorf("%s: crypto/mldsa %v sizes differ from the table", name, p)
		}
		s := mldsaFor(t, name)
		for _, impl := range mldsaBoth(s) {
			if pub, sig := impl.sizes(); pub != a.PublicKeySize || sig != a.OutputSize {
				t.Errorf("%s: %s sizes %d, %d", name, impl.name(), pub, sig)
			}
		}
	}
}

// TestMLDSAImplSelection: keys use crypto/mldsa exactly when the process runs
// in FIPS 140-3 mode. TestMLDSAUnderFIPS140 runs it in that mode.
func TestMLDSAImplSelection(t *testing.T) {
	for _, name := range mldsaNames {
		s := mldsaFor(t, name)
		k, err := s.NewPrivateKey(s.GenerateSeed())
		if err != nil {
			t.Fatal(err)
		}
		pk, err := s.NewPublicKey(k.Public().Bytes())
		if err != nil {
			t.Fatal(err)
		}
		_, signerStd := k.(*mldsaPrivateKey).signer.(*stdMLDSASigner)
		_, verifierStd := pk.(*mldsaPublicKey).v.(stdMLDSAVerifier)
		_, ownStd := k.Public().(*mldsaPublicKey).v.(stdMLDSAVerifier)
		if fips := fips140.Enabled(); signerStd != fips || verifierStd != fips || ownStd != fips {
			t.Errorf("%s: FIPS 140-3 mode %v, crypto/mldsa used for signer %v, public key %v, own public key %v",
				name, fips, signerStd, verifierStd, ownStd)
		}
	}
	t.Logf("FIPS 140-3 mode: %v", fips140.Enabled())
}

// TestMLDSAUnderFIPS140 runs the ML-DSA tests again in a child process with
// GODEBUG=fips140=on, where every key uses crypto/mldsa.
func TestMLDSAUnderFIPS140(t *testing.T) {
	if fips140.Enabled() {
		t.Skip("already in FIPS 140-3 mode")
	}
	if testing.Short() {
		t.Skip("re-runs the ML-DSA tests; skipped with -short")
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMLDSA", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "GODEBUG=fips140=on")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ML-DSA tests with GODEBUG=fips140=on: %v\n%s", err, out)
	}
	for _, want := range []string{"FIPS 140-3 mode: true", "--- PASS: TestMLDSAImplSelection", "--- PASS: TestMLDSAWycheproofSign", "--- PASS: TestMLDSAWycheproofVerify", "\nPASS\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("child output lacks %q:\n%s", want, out)
		}
	}
}

func TestMLDSAKeySizes(t *testing.T) {
	for _, name := range mldsaNames {
		s := mldsaFor(t, name)
		a := s.Alg()
		for _, n := range []int{0, 1, 31, 33, 64, a.PublicKeySize} {
			in := bytes.Repeat([]byte{0xa5}, n)
			_, err := s.NewPrivateKey(in)
			if !errors.Is(err, ErrKeySize) {
				t.Errorf("%s: NewPrivateKey(%d bytes) = %v, want ErrKeySize", name, n, err)
			} else if strings.Contains(err.Error(), "a5a5") {
				t.Errorf("error leaks key bytes: %v", err)
			}
		}
		for _, n := range []int{0, 32, a.PublicKeySize - 1, a.PublicKeySize + 1, a.OutputSize} {
			if _, err := s.NewPublicKey(make([]byte, n)); !errors.Is(err, ErrKeySize) {
				t.Errorf("%s: NewPublicKey(%d bytes) = %v, want ErrKeySize", name, n, err)
			}
		}
	}
}

// TestMLDSASignVerify checks the verdicts of both implementations on their
// own signatures and on spoiled ones, hedged and deterministic.
func TestMLDSASignVerify(t *testing.T) {
	msg := []byte("message")
	for _, name := range mldsaNames {
		s := mldsaFor(t, name)
		seed := s.GenerateSeed()
		other := s.GenerateSeed()
		for _, impl := range mldsaBoth(s) {
			k, err := s.newPrivateKey(impl, seed)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := s.newPrivateKey(impl, other)
			if err != nil {
				t.Fatal(err)
			}
			pub := k.Public()
			for _, det := range []bool{false, true} {
				sig, err := k.sign(msg, nil, det)
				if err != nil {
					t.Fatalf("%s: sign: %v", impl.name(), err)
				}
				if len(sig) != s.Alg().OutputSize {
					t.Fatalf("%s: %d-byte signature", impl.name(), len(sig))
				}
				if err := pub.Verify(msg, sig, nil); err != nil {
					t.Errorf("%s (deterministic %v): own signature: %v", impl.name(), det, err)
				}
				flipped := bytes.Clone(sig)
				flipped[len(flipped)/2] ^= 0x10
				for what, err := range map[string]error{
					"another message": pub.Verify([]byte("massage"), sig, nil),
					"another key":     k2.Public().Verify(msg, sig, nil),
					"a flipped bit":   pub.Verify(msg, flipped, nil),
					"a short sig":     pub.Verify(msg, sig[:len(sig)-1], nil),
					"a long sig":      pub.Verify(msg, append(bytes.Clone(sig), 0), nil),
					"no sig":          pub.Verify(msg, nil, nil),
					"a context":       pub.Verify(msg, sig, &Options{Context: []byte("c")}),
				} {
					if !errors.Is(err, ErrInvalidSignature) {
						t.Errorf("%s: verify with %s = %v, want ErrInvalidSignature", impl.name(), what, err)
					}
				}
			}
		}
	}
}

func TestMLDSAContext(t *testing.T) {
	msg := []byte("message")
	longest := bytes.Repeat([]byte{'c'}, 255)
	for _, name := range mldsaNames {
		s := mldsaFor(t, name)
		seed := s.GenerateSeed()
		for _, impl := range mldsaBoth(s) {
			k, err := s.newPrivateKey(impl, seed)
			if err != nil {
				t.Fatal(err)
			}
			pub := k.Public()
			for _, ctx := range [][]byte{nil, {}, {0}, []byte("ctx"), longest} {
				opts := &Options{Context: ctx}
				sig, err := k.Sign(msg, opts)
				if err != nil {
					t.Fatalf("%s: Sign with %d-byte context: %v", impl.name(), len(ctx), err)
				}
				if err := pub.Verify(msg, sig, opts); err != nil {
					t.Errorf("%s: %d-byte context: %v", impl.name(), len(ctx), err)
				}
				other := append(bytes.Clone(ctx), 'x')
				if len(ctx) == len(longest) {
					other = bytes.Clone(ctx)
					other[0] ^= 1
				}
				if err := pub.Verify(msg, sig, &Options{Context: other}); !errors.Is(err, ErrInvalidSignature) {
					t.Errorf("%s: verified under another context: %v", impl.name(), err)
				}
				// nil options, nil context and empty context are the same.
				if len(ctx) == 0 {
					if err := pub.Verify(msg, sig, nil); err != nil {
						t.Errorf("%s: empty context vs nil options: %v", impl.name(), err)
					}
				}
			}
			long := &Options{Context: append(bytes.Clone(longest), 'c')}
			if _, err := k.Sign(msg, long); !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s: Sign with a 256-byte context = %v, want ErrUnsupported", impl.name(), err)
			}
			sig, _ := k.Sign(msg, nil)
			if err := pub.Verify(msg, sig, long); !errors.Is(err, ErrUnsupported) {
				t.Errorf("%s: Verify with a 256-byte context = %v, want ErrUnsupported", impl.name(), err)
			}
		}
	}
}

// TestMLDSAHedged: Sign is randomized, with its randomness from crypto/rand;
// the deterministic variant is not.
func TestMLDSAHedged(t *testing.T) {
	msg := []byte("message")
	s := mldsaFor(t, alg.MLDSA65)
	seed := s.GenerateSeed()
	for _, impl := range mldsaBoth(s) {
		k, err := s.newPrivateKey(impl, seed)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := k.Sign(msg, nil)
		b, _ := k.Sign(msg, nil)
		if bytes.Equal(a, b) {
			t.Errorf("%s: two hedged signatures are equal", impl.name())
		}
		c, _ := k.sign(msg, nil, true)
		d, _ := k.sign(msg, nil, true)
		if !bytes.Equal(c, d) || bytes.Equal(a, c) {
			t.Errorf("%s: deterministic signatures differ, or equal a hedged one", impl.name())
		}
		t.Run(impl.name(), func(t *testing.T) {
			cryptotest.SetGlobalRandom(t, 7)
			e, _ := k.Sign(msg, nil)
			cryptotest.SetGlobalRandom(t, 7)
			if f, _ := k.Sign(msg, nil); !bytes.Equal(e, f) {
				t.Error("Sign does not draw rnd from crypto/rand")
			}
		})
	}
}

func TestMLDSADestroy(t *testing.T) {
	msg := []byte("message")
	s := mldsaFor(t, alg.MLDSA65)
	seed := s.GenerateSeed()
	for _, impl := range mldsaBoth(s) {
		k, err := s.newPrivateKey(impl, seed)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := k.Sign(msg, nil)
		var cleared func() bool
		switch sg := k.signer.(type) {
		case *circlMLDSASigner[mldsa65.PublicKey, mldsa65.PrivateKey]:
			sk := sg.sk
			cleared = func() bool { return *sk == mldsa65.PrivateKey{} }
		case *stdMLDSASigner:
			sk := sg.k
			cleared = func() bool { return *sk == mldsa.PrivateKey{} }
		default:
			t.Fatalf("unexpected signer %T", sg)
		}
		if cleared() {
			t.Fatal("key is zero before Destroy")
		}
		k.Destroy()
		k.Destroy()
		if !cleared() {
			t.Errorf("%s: Destroy left the expanded key", impl.name())
		}
		if _, err := k.Sign(msg, nil); !errors.Is(err, ErrKeyDestroyed) {
			t.Errorf("%s: Sign after Destroy = %v", impl.name(), err)
		}
		// circl's public key shares Â with the private key: Public must not.
		if err := k.Public().Verify(msg, sig, nil); err != nil {
			t.Errorf("%s: Public after Destroy: %v", impl.name(), err)
		}
	}
}

func TestMLDSAKeysOwnTheirBytes(t *testing.T) {
	msg := []byte("message")
	s := mldsaFor(t, alg.MLDSA44)
	for _, impl := range mldsaBoth(s) {
		seed := s.GenerateSeed()
		k, err := s.newPrivateKey(impl, seed)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := k.sign(msg, nil, true)
		pubBytes := k.Public().Bytes()
		pk, err := s.newPublicKey(impl, pubBytes)
		if err != nil {
			t.Fatal(err)
		}
		clear(seed)
		clear(pubBytes)
		if got, err := k.sign(msg, nil, true); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: sign after clearing the caller's seed changed: %v", impl.name(), err)
		}
		b := pk.Bytes()
		if !bytes.Equal(b, k.Public().Bytes()) {
			t.Errorf("%s: Bytes changed when the caller's copy was cleared", impl.name())
		}
		clear(b)
		if err := pk.Verify(msg, want, nil); err != nil {
			t.Errorf("%s: Bytes returned the key's own array: %v", impl.name(), err)
		}
	}
}

// TestMLDSAIndependentVerify: Go's crypto/mldsa.Verify, given nothing but
// PublicKey().Bytes(), accepts the signatures of every key the scheme makes
// (with the default implementation: circl, unless in FIPS mode).
func TestMLDSAIndependentVerify(t *testing.T) {
	params := map[string]mldsa.Parameters{alg.MLDSA44: mldsa.MLDSA44(), alg.MLDSA65: mldsa.MLDSA65(), alg.MLDSA87: mldsa.MLDSA87()}
	for _, name := range mldsaNames {
		s := mldsaFor(t, name)
		for i := range 8 {
			k, err := s.NewPrivateKey(s.GenerateSeed())
			if err != nil {
				t.Fatal(err)
			}
			pub, err := mldsa.NewPublicKey(params[name], k.Public().Bytes())
			if err != nil {
				t.Fatalf("%s: crypto/mldsa refuses our public key: %v", name, err)
			}
			msg := bytes.Repeat([]byte{byte(i)}, 100*i)
			ctx := bytes.Repeat([]byte{'x'}, 30*i)
			sig, err := k.Sign(msg, &Options{Context: ctx})
			if err != nil {
				t.Fatal(err)
			}
			if err := mldsa.Verify(pub, msg, sig, &mldsa.Options{Context: string(ctx)}); err != nil {
				t.Errorf("%s: crypto/mldsa.Verify: %v", name, err)
			}
			if err := mldsa.Verify(pub, msg, sig, &mldsa.Options{Context: string(ctx) + "x"}); err == nil {
				t.Errorf("%s: crypto/mldsa.Verify accepts another context", name)
			}
		}
	}
}

// TestMLDSAConcurrentUse runs under -race: one key of each implementation
// signs and verifies from many goroutines, then Destroy races with Sign.
func TestMLDSAConcurrentUse(t *testing.T) {
	msg := []byte("message")
	s := mldsaFor(t, alg.MLDSA44)
	seed := s.GenerateSeed()
	for _, impl := range mldsaBoth(s) {
		k, err := s.newPrivateKey(impl, seed)
		if err != nil {
			t.Fatal(err)
		}
		pub := k.Public()
		want, _ := k.sign(msg, nil, true)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 5 {
					if got, err := k.sign(msg, nil, true); err != nil || !bytes.Equal(got, want) {
						t.Errorf("%s: sign = %v", impl.name(), err)
					}
					sig, err := k.Sign(msg, nil)
					if err != nil {
						t.Error(err)
					}
					if err := pub.Verify(msg, sig, nil); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		for range 4 {
			wg.Go(func() {
				for range 10 {
					if got, err := k.sign(msg, nil, true); err == nil && !bytes.Equal(got, want) {
						t.Errorf("%s: sign racing Destroy gave a wrong signature", impl.name())
					} else if err != nil && !errors.Is(err, ErrKeyDestroyed) {
						t.Error(err)
					}
				}
			})
		}
		wg.Go(k.Destroy)
		wg.Wait()
	}
}
