package sig

import (
	"bytes"
	"crypto/ed25519"
	"crypto/mldsa"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// Sizes of the MLDSA65-Ed25519-SHA512 parts (FIPS 204 Table 2, RFC 8032).
const (
	tMLDSAPub, tMLDSASig = 1952, 3309
	tEdPub, tEdSig       = 32, 64
)

// compositeVector is the id-MLDSA65-Ed25519-SHA512 entry of the draft's
// test vectors (testdata/README.md).
type compositeVector struct {
	TCID string `json:"tcId"`
	M    []byte `json:"m"`
	PK   []byte `json:"pk"`
	SK   []byte `json:"sk"`
	S    []byte `json:"s"`
}

func loadCompositeVector(tb testing.TB) compositeVector {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "composite-mldsa65-ed25519.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var v compositeVector // []byte fields are standard base64 in JSON
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("composite vector: %v", err)
	}
	if v.TCID != "id-MLDSA65-Ed25519-SHA512" || len(v.PK) != tMLDSAPub+tEdPub || len(v.SK) != 64 || len(v.S) != tMLDSASig+tEdSig {
		tb.Fatalf("composite vector %q has unexpected sizes", v.TCID)
	}
	return v
}

func compositeFor(tb testing.TB) Scheme {
	tb.Helper()
	s, err := For(alg.MLDSA65Ed25519)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// draftRepresentative computes M' from the draft's definition, independently
// of composite.go: Prefix ‖ Label ‖ len(ctx) ‖ ctx ‖ SHA-512(M).
func draftRepresentative(tb testing.TB, msg, ctx []byte) []byte {
	tb.Helper()
	prefix := mustHex(tb, "436f6d706f73697465416c676f726974686d5369676e61747572657332303235")
	h := sha512.Sum512(msg)
	var mp []byte
	mp = append(mp, prefix...)
	mp = append(mp, "COMPSIG-MLDSA65-Ed25519-SHA512"...)
	mp = append(mp, byte(len(ctx)))
	mp = append(mp, ctx...)
	return append(mp, h[:]...)
}

const draftLabel = "COMPSIG-MLDSA65-Ed25519-SHA512"

// checkWithStdlib verifies the two components of sig over M' with Go's
// crypto/mldsa (context = Label) and crypto/ed25519, and checks that neither is
// a valid plain signature of msg.
func checkWithStdlib(t *testing.T, pub, msg, ctx, sig []byte) {
	t.Helper()
	mpk, err := mldsa.NewPublicKey(mldsa.MLDSA65(), pub[:tMLDSAPub])
	if err != nil {
		t.Fatal(err)
	}
	epk := ed25519.PublicKey(pub[tMLDSAPub:])
	pqSig, edSig := sig[:tMLDSASig], sig[tMLDSASig:]
	mp := draftRepresentative(t, msg, ctx)
	if err := mldsa.Verify(mpk, mp, pqSig, &mldsa.Options{Context: draftLabel}); err != nil {
		t.Errorf("crypto/mldsa: ML-DSA component does not verify over M' with ctx=Label: %v", err)
	}
	if !ed25519.Verify(epk, mp, edSig) {
		t.Error("crypto/ed25519: Ed25519 component does not verify over M'")
	}
	// Stripping: neither is a plain signature of the original message.
	if mldsa.Verify(mpk, msg, pqSig, nil) == nil {
		t.Error("crypto/mldsa: ML-DSA component verifies as a plain signature of M")
	}
	if mldsa.Verify(mpk, mp, pqSig, nil) == nil {
		t.Error("crypto/mldsa: ML-DSA component verifies over M' with an empty context")
	}
	if ed25519.Verify(epk, msg, edSig) {
		t.Error("crypto/ed25519: Ed25519 component verifies as a plain signature of M")
	}
}

func TestCompositeEntry(t *testing.T) {
	a, ok := alg.Lookup("mldsa65-ed25519")
	if !ok {
		t.Fatal("mldsa65-ed25519 missing from the table")
	}
	if a.Kind != alg.KindSignature || a.SeedSize != 32+32 || a.PublicKeySize != tMLDSAPub+tEdPub ||
		a.OutputSize != tMLDSASig+tEdSig || a.Ops != alg.OpSign|alg.OpVerify {
		t.Errorf("entry = %+v", *a)
	}
	// The table's component list and the scheme's must agree, in wire order.
	if p := mldsa65Ed25519; !slices.Equal(a.Components, []string{p.pq, p.trad}) {
		t.Errorf("table components %q, scheme components %q, %q", a.Components, p.pq, p.trad)
	}
	if compositeFor(t).Alg() != a {
		t.Error("scheme is not bound to the table entry")
	}
	if CompositeDraft != "draft-ietf-lamps-pq-composite-sigs-19" {
		t.Errorf("CompositeDraft = %q", CompositeDraft)
	}
}

// TestCompositeDraftVector runs the draft's MLDSA65-Ed25519-SHA512 vector
// through our keys: the seeds derive the vector's public key, the vector's
// signature verifies, and signing reproduces its (deterministic) Ed25519 part.
func TestCompositeDraftVector(t *testing.T) {
	v := loadCompositeVector(t)
	s := compositeFor(t)
	priv, err := s.NewPrivateKey(v.SK)
	if err != nil {
		t.Fatal(err)
	}
	if got := priv.Public().Bytes(); !bytes.Equal(got, v.PK) {
		t.Fatal("public key derived from the vector's seeds differs from the vector's pk")
	}
	pub, err := s.NewPublicKey(v.PK)
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range []*Options{nil, {}, {Context: []byte{}}} {
		if err := pub.Verify(v.M, v.S, opts); err != nil {
			t.Errorf("vector signature (opts %+v): %v", opts, err)
		}
	}
	checkWithStdlib(t, v.PK, v.M, nil, v.S)

	sig, err := priv.Sign(v.M, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Verify(v.M, sig, nil); err != nil {
		t.Errorf("our signature with the vector key: %v", err)
	}
	if !bytes.Equal(sig[tMLDSASig:], v.S[tMLDSASig:]) {
		t.Error("Ed25519 component differs from the vector's")
	}
	// The vector's ML-DSA component is hedged, so it cannot be reproduced; a
	// deterministic ML-DSA scheme must at least repeat itself.
	again, err := priv.Sign(v.M, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again[:tMLDSASig], sig[:tMLDSASig]) {
		t.Log("ML-DSA component is deterministic")
	} else {
		t.Log("ML-DSA component is hedged")
	}

	for i, bad := range spoilComposite(v.S) {
		if err := pub.Verify(v.M, bad, nil); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("spoiled signature %d: %v", i, err)
		}
	}
	if err := pub.Verify(append(slices.Clone(v.M), 0), v.S, nil); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("other message: %v", err)
	}
}

// spoilComposite returns variants of a valid composite signature that must not
// verify: a bit flipped in each component, truncated, extended, the
// components swapped, each half alone.
func spoilComposite(sig []byte) [][]byte {
	flip := func(i int) []byte { b := slices.Clone(sig); b[i] ^= 0x01; return b }
	return [][]byte{
		flip(0), flip(tMLDSASig - 1), flip(tMLDSASig), flip(len(sig) - 1),
		sig[:len(sig)-1],
		append(slices.Clone(sig), 0),
		slices.Concat(sig[tMLDSASig:], sig[:tMLDSASig]),
		sig[:tMLDSASig],
		sig[tMLDSASig:],
		nil,
	}
}

// TestCompositeRepresentativeSample pins the layout of M' against the draft's
// published example (src/messageFormatSample_noctx.md and _ctx.md of
// lamps-wg/draft-composite-sigs), which uses another composite's label.
func TestCompositeRepresentativeSample(t *testing.T) {
	s := &compositeScheme{p: &compositeParams{label: "COMPSIG-MLDSA65-P256-SHA512", prehash: mldsa65Ed25519.prehash}}
	msg := mustHex(t, "00010203040506070809")
	for _, c := range []struct{ ctx, want string }{
		{"", "436f6d706f73697465416c676f726974686d5369676e6174757265733230323" +
			"5434f4d505349472d4d4c44534136352d503235362d534841353132000f89ee1fcb" +
			"7b0a4f7809d1267a029719004c5a5e5ec323a7c3523a20974f9a3f202f56fadba4c" +
			"d9e8d654ab9f2e96dc5c795ea176fa20ede8d854c342f903533"},
		{"0813061205162623", "436f6d706f73697465416c676f726974686d5369676e6174757265733230323" +
			"5434f4d505349472d4d4c44534136352d503235362d534841353132080813061205" +
			"1626230f89ee1fcb7b0a4f7809d1267a029719004c5a5e5ec323a7c3523a20974f9" +
			"a3f202f56fadba4cd9e8d654ab9f2e96dc5c795ea176fa20ede8d854c342f903533"},
	} {
		got, err := s.representative(msg, &Options{Context: mustHex(t, c.ctx)})
		if err != nil || !bytes.Equal(got, mustHex(t, c.want)) {
			t.Errorf("ctx %q: M' = %x, %v", c.ctx, got, err)
		}
	}
	// And ours matches the independent computation for this algorithm.
	ours := compositeFor(t).(*compositeScheme)
	got, err := ours.representative(msg, &Options{Context: []byte("app")})
	if err != nil || !bytes.Equal(got, draftRepresentative(t, msg, []byte("app"))) {
		t.Errorf("representative = %x, %v", got, err)
	}
}

func newCompositeKey(t testing.TB) (PrivateKey, PublicKey) {
	t.Helper()
	s := compositeFor(t)
	priv, err := s.NewPrivateKey(s.GenerateSeed())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := s.NewPublicKey(priv.Public().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// TestCompositeStripping: neither component of a composite signature is a
// plain signature of the original message, under our own schemes and under
// the standard library, and both are valid over M' (checked with the standard
// library against an independently computed M').
func TestCompositeStripping(t *testing.T) {
	priv, pub := newCompositeKey(t)
	msg := []byte("transfer 100 to alice")
	mlScheme, edScheme := mustFor(alg.MLDSA65), mustFor(alg.Ed25519)
	raw := pub.Bytes()
	mlPub, err := mlScheme.NewPublicKey(raw[:tMLDSAPub])
	if err != nil {
		t.Fatal(err)
	}
	edPub, err := edScheme.NewPublicKey(raw[tMLDSAPub:])
	if err != nil {
		t.Fatal(err)
	}
	vec := loadCompositeVector(t)
	vecML, _ := mlScheme.NewPublicKey(vec.PK[:tMLDSAPub])
	vecEd, _ := edScheme.NewPublicKey(vec.PK[tMLDSAPub:])
	for _, ctx := range [][]byte{nil, []byte("app ctx")} {
		sig, err := priv.Sign(msg, &Options{Context: ctx})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Verify(msg, sig, &Options{Context: ctx}); err != nil {
			t.Fatalf("ctx %q: %v", ctx, err)
		}
		checkWithStdlib(t, raw, msg, ctx, sig)
		if mlPub.Verify(msg, sig[:tMLDSASig], nil) == nil {
			t.Errorf("ctx %q: ML-DSA component verifies as plain ml-dsa-65", ctx)
		}
		if edPub.Verify(msg, sig[tMLDSASig:], nil) == nil {
			t.Errorf("ctx %q: Ed25519 component verifies as plain ed25519", ctx)
		}
	}
	if vecML.Verify(vec.M, vec.S[:tMLDSASig], nil) == nil || vecEd.Verify(vec.M, vec.S[tMLDSASig:], nil) == nil {
		t.Error("a component of the draft's vector verifies as a plain signature of m")
	}
}

func TestCompositeSignComponents(t *testing.T) {
	priv, pub := newCompositeKey(t)
	msg := []byte("hello")
	comps, err := priv.(ComponentSigner).SignComponents(msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(comps) != 2 || comps[0].Alg != alg.MLDSA65 || comps[1].Alg != alg.Ed25519 ||
		len(comps[0].Sig) != tMLDSASig || len(comps[1].Sig) != tEdSig {
		t.Fatalf("components = %d %+v", len(comps), comps)
	}
	if err := pub.Verify(msg, slices.Concat(comps[0].Sig, comps[1].Sig), nil); err != nil {
		t.Errorf("concatenated components: %v", err)
	}
}

// TestCompositeVerifyComponents covers the per-component verdicts that the
// verify modes (and, or, pq_only) are built from.
func TestCompositeVerifyComponents(t *testing.T) {
	priv, pub := newCompositeKey(t)
	msg := []byte("hello")
	comps, err := priv.(ComponentSigner).SignComponents(msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ml, ed := comps[0], comps[1]
	bad := func(c Component) Component {
		c.Sig = slices.Clone(c.Sig)
		c.Sig[len(c.Sig)/2] ^= 0x80
		return c
	}
	inv := ErrInvalidSignature
	cv := pub.(ComponentVerifier)
	for _, c := range []struct {
		name  string
		comps []Component
		want  map[string]error
	}{
		{"both valid", []Component{ml, ed}, map[string]error{alg.MLDSA65: nil, alg.Ed25519: nil}},
		{"any order", []Component{ed, ml}, map[string]error{alg.MLDSA65: nil, alg.Ed25519: nil}},
		{"ml-dsa bad", []Component{bad(ml), ed}, map[string]error{alg.MLDSA65: inv, alg.Ed25519: nil}},
		{"ed25519 bad", []Component{ml, bad(ed)}, map[string]error{alg.MLDSA65: nil, alg.Ed25519: inv}},
		{"both bad", []Component{bad(ml), bad(ed)}, map[string]error{alg.MLDSA65: inv, alg.Ed25519: inv}},
		{"ml-dsa only", []Component{ml}, map[string]error{alg.MLDSA65: nil}},
		{"ed25519 only", []Component{ed}, map[string]error{alg.Ed25519: nil}},
		{"bad ed25519 only", []Component{bad(ed)}, map[string]error{alg.Ed25519: inv}},
		{"none", nil, map[string]error{}},
		{"swapped sigs", []Component{{alg.MLDSA65, ed.Sig}, {alg.Ed25519, ml.Sig}}, map[string]error{alg.MLDSA65: inv, alg.Ed25519: inv}},
		{"duplicate", []Component{ml, ml, ed}, map[string]error{alg.MLDSA65: inv, alg.Ed25519: nil}},
		{"empty sigs", []Component{{alg.MLDSA65, nil}, {alg.Ed25519, nil}}, map[string]error{alg.MLDSA65: inv, alg.Ed25519: inv}},
	} {
		got := cv.VerifyComponents(msg, c.comps, nil)
		if len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
			continue
		}
		for k, w := range c.want {
			g, ok := got[k]
			if !ok || (w == nil) != (g == nil) || (w != nil && !errors.Is(g, w)) {
				t.Errorf("%s: %s = %v (present %v), want %v", c.name, k, g, ok, w)
			}
		}
	}
	got := cv.VerifyComponents(msg, []Component{ml, {"slh-dsa-sha2-128s", []byte{1}}}, nil)
	if got[alg.MLDSA65] != nil || !errors.Is(got["slh-dsa-sha2-128s"], ErrUnsupported) {
		t.Errorf("foreign component: %v", got)
	}
	got = cv.VerifyComponents([]byte("other"), []Component{ml, ed}, nil)
	if !errors.Is(got[alg.MLDSA65], inv) || !errors.Is(got[alg.Ed25519], inv) {
		t.Errorf("other message: %v", got)
	}
	got = cv.VerifyComponents(msg, []Component{ml, ed}, &Options{Context: []byte("x")})
	if !errors.Is(got[alg.MLDSA65], inv) || !errors.Is(got[alg.Ed25519], inv) {
		t.Errorf("other context: %v", got)
	}
}

func TestCompositeContext(t *testing.T) {
	priv, pub := newCompositeKey(t)
	msg := []byte("hello")
	ctxA := []byte("ctx-a")
	sig, err := priv.Sign(msg, &Options{Context: ctxA})
	if err != nil {
		t.Fatal(err)
	}
	for _, ctx := range [][]byte{ctxA, []byte("ctx-b"), nil, []byte("ctx-a\x00"), []byte("ctx-")} {
		err := pub.Verify(msg, sig, &Options{Context: ctx})
		if want := bytes.Equal(ctx, ctxA); (err == nil) != want || (err != nil && !errors.Is(err, ErrInvalidSignature)) {
			t.Errorf("verify with ctx %q: %v", ctx, err)
		}
	}
	maxCtx := bytes.Repeat([]byte{0xc7}, 255)
	sig, err = priv.Sign(msg, &Options{Context: maxCtx})
	if err != nil {
		t.Fatalf("255-byte context: %v", err)
	}
	if err := pub.Verify(msg, sig, &Options{Context: maxCtx}); err != nil {
		t.Errorf("255-byte context: %v", err)
	}
	long := &Options{Context: make([]byte, 256)}
	if _, err := priv.Sign(msg, long); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Sign with 256-byte context = %v", err)
	}
	if _, err := priv.(ComponentSigner).SignComponents(msg, long); !errors.Is(err, ErrUnsupported) {
		t.Errorf("SignComponents with 256-byte context = %v", err)
	}
	if err := pub.Verify(msg, sig, long); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Verify with 256-byte context = %v", err)
	}
	got := pub.(ComponentVerifier).VerifyComponents(msg, []Component{{alg.Ed25519, sig[tMLDSASig:]}}, long)
	if len(got) != 1 || !errors.Is(got[alg.Ed25519], ErrUnsupported) {
		t.Errorf("VerifyComponents with 256-byte context = %v", got)
	}
}

func TestCompositeKeys(t *testing.T) {
	s := compositeFor(t)
	for _, n := range []int{0, 32, 63, 65} {
		if _, err := s.NewPrivateKey(bytes.Repeat([]byte{0xa5}, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("NewPrivateKey(%d bytes) = %v", n, err)
		}
	}
	for _, n := range []int{0, tMLDSAPub, tMLDSAPub + tEdPub - 1, tMLDSAPub + tEdPub + 1} {
		if _, err := s.NewPublicKey(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("NewPublicKey(%d bytes) = %v", n, err)
		}
	}
	v := loadCompositeVector(t)
	seed := slices.Clone(v.SK)
	priv, err := s.NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	clear(seed)
	pk := priv.Public().Bytes()
	clear(pk)
	if !bytes.Equal(priv.Public().Bytes(), v.PK) {
		t.Error("key shares bytes with its caller")
	}
	sig, err := priv.Sign(v.M, nil)
	if err != nil || priv.Public().Verify(v.M, sig, nil) != nil {
		t.Errorf("Sign after clearing the caller's seed: %v", err)
	}
	priv.Destroy()
	priv.Destroy()
	if _, err := priv.Sign(v.M, nil); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("Sign after Destroy = %v", err)
	}
	if _, err := priv.(ComponentSigner).SignComponents(v.M, nil); !errors.Is(err, ErrKeyDestroyed) {
		t.Errorf("SignComponents after Destroy = %v", err)
	}
	if err := priv.Public().Verify(v.M, v.S, nil); err != nil {
		t.Errorf("Public after Destroy: %v", err)
	}
}

// TestCompositeConcurrentUse runs under -race.
func TestCompositeConcurrentUse(t *testing.T) {
	priv, pub := newCompositeKey(t)
	msg := []byte("concurrent")
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 5 {
				sig, err := priv.Sign(msg, nil)
				if err != nil {
					t.Error(err)
					return
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
			for range 5 {
				sig, err := priv.Sign(msg, nil)
				if err == nil {
					if pub.Verify(msg, sig, nil) != nil {
						t.Error("Sign racing Destroy returned a bad signature")
					}
				} else if !errors.Is(err, ErrKeyDestroyed) {
					t.Error(err)
				}
			}
		})
	}
	wg.Go(priv.Destroy)
	wg.Wait()
}

// FuzzCompositeVerify: any public key, message, context and signature bytes
// never panic; Verify returns nil, ErrInvalidSignature or (context too long)
// ErrUnsupported; it agrees with the per-component verdicts; and any
// signature that verifies has components valid under the standard library.
// Inputs are kilobytes long, so run it with -fuzzminimizetime=0: minimizing
// each new input otherwise takes most of the fuzzing time.
func FuzzCompositeVerify(f *testing.F) {
	v := loadCompositeVector(f)
	f.Add(v.PK, v.M, []byte(nil), v.S)
	f.Add(v.PK, v.M, []byte("c"), v.S)
	f.Add(v.PK, []byte{}, []byte{}, v.S[:100])
	f.Add(bytes.Repeat([]byte{0xff}, len(v.PK)), v.M, []byte(nil), v.S)
	f.Add([]byte{}, []byte{}, []byte{}, []byte{})
	s := compositeFor(f)
	f.Fuzz(func(t *testing.T, pkb, msg, ctx, sig []byte) {
		if len(pkb) != s.Alg().PublicKeySize {
			if _, err := s.NewPublicKey(pkb); !errors.Is(err, ErrKeySize) {
				t.Fatalf("NewPublicKey(%d bytes) = %v", len(pkb), err)
			}
			// Keep exploring verification: overlay the bytes on the
			// vector's key instead of stopping at the size check.
			pk := slices.Clone(v.PK)
			for i, b := range pkb {
				pk[i%len(pk)] ^= b
			}
			pkb = pk
		}
		pub, err := s.NewPublicKey(pkb)
		if err != nil {
			return // a component refused its key; a typed error, no panic
		}
		opts := &Options{Context: ctx}
		verr := pub.Verify(msg, sig, opts)
		if len(ctx) > 255 {
			if !errors.Is(verr, ErrUnsupported) {
				t.Fatalf("Verify with %d-byte context = %v", len(ctx), verr)
			}
			return
		}
		if verr != nil && !errors.Is(verr, ErrInvalidSignature) {
			t.Fatalf("Verify: unexpected error %v", verr)
		}
		n := min(len(sig), tMLDSASig)
		comps := []Component{{alg.MLDSA65, sig[:n]}, {alg.Ed25519, sig[n:]}}
		res := pub.(ComponentVerifier).VerifyComponents(msg, comps, opts)
		both := res[alg.MLDSA65] == nil && res[alg.Ed25519] == nil
		if lenOK := len(sig) == s.Alg().OutputSize; (verr == nil) != (both && lenOK) {
			t.Fatalf("Verify = %v, components = %v (length ok %v)", verr, res, lenOK)
		}
		if verr == nil {
			checkWithStdlib(t, pkb, msg, ctx, sig)
		}
	})
}
