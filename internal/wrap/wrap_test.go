package wrap

import (
	"bytes"
	"crypto/hpke"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ron-kms/ron-kms/internal/alg"
)

var kemNames = []string{alg.X25519, alg.MLKEM768, alg.MLKEM768X25519}

const testKeyName = "acme/payments/mlkem768-x25519/0190b3a2-6c1e-7cc1-9f3e-2a4b5c6d7e8f"

func mustScheme(tb testing.TB, name string) Scheme {
	tb.Helper()
	s, err := For(name)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func newKey(tb testing.TB, name string) PrivateKey {
	tb.Helper()
	s := mustScheme(tb, name)
	k, err := s.NewPrivateKey(s.GenerateSeed())
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustWrap(tb testing.TB, pub PublicKey, name string, version uint32, aad, pt []byte) []byte {
	tb.Helper()
	b, err := Wrap(pub, name, version, aad, pt)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// parseUnwrap is what the keystore does with envelope bytes.
func parseUnwrap(priv PrivateKey, b, aad []byte) ([]byte, error) {
	env, err := Parse(b)
	if err != nil {
		return nil, err
	}
	return Unwrap(priv, env, aad)
}

func TestKEMIDs(t *testing.T) {
	// HPKE KEM ids of RFC 9180 §7.1 and draft-ietf-hpke-pq, as crypto/hpke
	// defines them.
	for name, id := range map[string]uint16{alg.X25519: 0x0020, alg.MLKEM768: 0x0041, alg.MLKEM768X25519: 0x647a} {
		s := schemes[name]
		if s == nil || s.kem.ID() != id {
			t.Errorf("%s: KEM id %#04x, want %#04x", name, s.kem.ID(), id)
		}
		kem, err := hpke.NewKEM(id)
		if err != nil || kem != s.kem {
			t.Errorf("%s: hpke.NewKEM(%#04x) = %v, %v", name, id, kem, err)
		}
	}
	if len(schemes) != len(kemNames) || len(byKEMID) != len(kemNames) {
		t.Errorf("%d schemes, %d ids, want %d", len(schemes), len(byKEMID), len(kemNames))
	}
}

// TestSizes checks the table sizes against what the library actually
// produces, beyond the constants that newKEMScheme compares.
func TestSizes(t *testing.T) {
	for _, name := range kemNames {
		t.Run(name, func(t *testing.T) {
			s := mustScheme(t, name)
			a := s.Alg()
			if a.Name != name || a.Kind != alg.KindKEM || a.Ops != alg.OpWrap|alg.OpUnwrap {
				t.Fatalf("table entry %+v", *a)
			}
			seed := s.GenerateSeed()
			if len(seed) != a.SeedSize {
				t.Fatalf("seed is %d bytes", len(seed))
			}
			hk, err := schemes[name].kem.NewPrivateKey(seed)
			if err != nil {
				t.Fatal(err)
			}
			// The seed is the library's own serialization of the key
			// (up to X25519 clamping, RFC 9180 §7.1.2).
			ser, err := hk.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if len(ser) != a.SeedSize {
				t.Errorf("hpke PrivateKey.Bytes is %d bytes, seed %d", len(ser), a.SeedSize)
			}
			if name != alg.X25519 && !bytes.Equal(ser, seed) {
				t.Error("hpke PrivateKey.Bytes differs from the seed")
			}
			k, err := s.NewPrivateKey(seed)
			if err != nil {
				t.Fatal(err)
			}
			if got := k.Public().Bytes(); len(got) != a.PublicKeySize || !bytes.Equal(got, hk.PublicKey().Bytes()) {
				t.Errorf("public key %d bytes, differs from hpke's", len(got))
			}
			enc, ct, err := k.Public().Seal(nil, nil, make([]byte, 32))
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) != a.OutputSize || len(ct) != 32+TagSize {
				t.Errorf("enc %d bytes, ct %d bytes", len(enc), len(ct))
			}
		})
	}
}

func TestForRefuses(t *testing.T) {
	for _, name := range []string{"", "ed25519", "X25519", "ml-kem-1024", "aes-256-gcm", "mlkem768-p256"} {
		if s, err := For(name); !errors.Is(err, ErrUnsupported) || s != nil {
			t.Errorf("For(%q) = %v, %v", name, s, err)
		}
	}
}

func TestKeySizes(t *testing.T) {
	for _, name := range kemNames {
		s := mustScheme(t, name)
		a := s.Alg()
		for _, n := range []int{0, a.SeedSize - 1, a.SeedSize + 1} {
			if _, err := s.NewPrivateKey(make([]byte, n)); !errors.Is(err, ErrKeySize) {
				t.Errorf("%s: NewPrivateKey(%d bytes) = %v", name, n, err)
			}
		}
		for _, n := range []int{0, a.PublicKeySize - 1, a.PublicKeySize + 1} {
			if _, err := s.NewPublicKey(make([]byte, n)); !errors.Is(err, ErrKeySize) {
				t.Errorf("%s: NewPublicKey(%d bytes) = %v", name, n, err)
			}
		}
	}
	// An ML-KEM encapsulation key with every coefficient 0xfff ≥ q.
	for _, name := range []string{alg.MLKEM768, alg.MLKEM768X25519} {
		s := mustScheme(t, name)
		if _, err := s.NewPublicKey(bytes.Repeat([]byte{0xff}, s.Alg().PublicKeySize)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: NewPublicKey(0xff...) = %v", name, err)
		}
	}
}

func TestSeedDeterminism(t *testing.T) {
	for _, name := range kemNames {
		s := mustScheme(t, name)
		seed := s.GenerateSeed()
		k1, _ := s.NewPrivateKey(seed)
		k2, _ := s.NewPrivateKey(seed)
		if !bytes.Equal(k1.Public().Bytes(), k2.Public().Bytes()) {
			t.Errorf("%s: same seed, different public keys", name)
		}
		clear(seed) // the key keeps nothing of the caller's slice
		env := mustWrap(t, k1.Public(), testKeyName, 1, nil, []byte("k"))
		if _, err := parseUnwrap(k1, env, nil); err != nil {
			t.Errorf("%s: after clearing the seed: %v", name, err)
		}
		p, err := s.NewPublicKey(k1.Public().Bytes())
		if err != nil || !bytes.Equal(p.Bytes(), k1.Public().Bytes()) || p.Alg() != s.Alg() {
			t.Errorf("%s: NewPublicKey(Bytes()) round trip: %v", name, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, name := range kemNames {
		t.Run(name, func(t *testing.T) {
			k := newKey(t, name)
			pub, err := mustScheme(t, name).NewPublicKey(k.Public().Bytes())
			if err != nil {
				t.Fatal(err)
			}
			for _, pt := range [][]byte{nil, {0}, bytes.Repeat([]byte{0xa5}, 32), bytes.Repeat([]byte{7}, 4096)} {
				for _, aad := range [][]byte{nil, []byte("tenant=acme")} {
					b := mustWrap(t, pub, testKeyName, 7, aad, pt)
					env, err := Parse(b)
					if err != nil {
						t.Fatal(err)
					}
					if env.KeyName != testKeyName || env.Version != 7 || env.KEMID != schemes[name].kem.ID() {
						t.Fatalf("parsed header %q v%d %#04x", env.KeyName, env.Version, env.KEMID)
					}
					if len(env.Ciphertext) != len(pt)+TagSize {
						t.Fatalf("ciphertext %d bytes for %d", len(env.Ciphertext), len(pt))
					}
					got, err := Unwrap(k, env, aad)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, pt) {
						t.Fatalf("unwrapped %x, want %x", got, pt)
					}
				}
			}
			// Wrapping is randomized.
			a := mustWrap(t, pub, testKeyName, 1, nil, []byte("k"))
			b := mustWrap(t, pub, testKeyName, 1, nil, []byte("k"))
			if bytes.Equal(a, b) {
				t.Error("two envelopes of the same data key are equal")
			}
		})
	}
}

// checkNoOpen fails t unless err is ErrOpen or ErrFormat and pt is nil.
func checkNoOpen(t *testing.T, what string, pt []byte, err error) {
	t.Helper()
	if err == nil || pt != nil {
		t.Fatalf("%s: opened to %x (err %v)", what, pt, err)
	}
	if !errors.Is(err, ErrOpen) && !errors.Is(err, ErrFormat) {
		t.Fatalf("%s: error %v is neither ErrOpen nor ErrFormat", what, err)
	}
}

func TestTamper(t *testing.T) {
	aad := []byte("aad")
	for _, name := range kemNames {
		t.Run(name, func(t *testing.T) {
			k := newKey(t, name)
			b := mustWrap(t, k.Public(), testKeyName, 3, aad, bytes.Repeat([]byte{1}, 32))
			if _, err := parseUnwrap(k, b, aad); err != nil {
				t.Fatal(err)
			}
			mod := make([]byte, len(b))
			for i := range b {
				for _, mask := range []byte{0xff, 0x01, 0x80} {
					if mask != 0xff && i%7 != 0 && i < len(b)-32 {
						continue // single bits at a sample of positions and all of the tail
					}
					copy(mod, b)
					mod[i] ^= mask
					pt, err := parseUnwrap(k, mod, aad)
					checkNoOpen(t, fmt.Sprintf("byte %d ^ %#02x", i, mask), pt, err)
				}
			}
			for n := range len(b) {
				pt, err := parseUnwrap(k, b[:n], aad)
				checkNoOpen(t, fmt.Sprintf("truncated to %d", n), pt, err)
			}
			pt, err := parseUnwrap(k, append(append([]byte(nil), b...), 0), aad)
			checkNoOpen(t, "extended", pt, err)
		})
	}
}

func TestWrongAADAndKey(t *testing.T) {
	for _, name := range kemNames {
		t.Run(name, func(t *testing.T) {
			k, other := newKey(t, name), newKey(t, name)
			b := mustWrap(t, k.Public(), testKeyName, 1, []byte("aad"), []byte("data key"))
			for _, aad := range [][]byte{nil, []byte("aae"), []byte("aad\x00"), []byte("aa")} {
				pt, err := parseUnwrap(k, b, aad)
				checkNoOpen(t, fmt.Sprintf("aad %q", aad), pt, err)
			}
			pt, err := parseUnwrap(other, b, []byte("aad"))
			checkNoOpen(t, "other key", pt, err)
			for _, o := range kemNames {
				if o != name {
					pt, err := parseUnwrap(newKey(t, o), b, []byte("aad"))
					checkNoOpen(t, "key of "+o, pt, err)
				}
			}
		})
	}
}

func TestRelabel(t *testing.T) {
	aad := []byte("aad")
	for _, name := range kemNames {
		t.Run(name, func(t *testing.T) {
			k := newKey(t, name)
			env, err := Parse(mustWrap(t, k.Public(), testKeyName, 5, aad, []byte("data key")))
			if err != nil {
				t.Fatal(err)
			}
			for what, relabel := range map[string]func(*Envelope){
				"name":         func(e *Envelope) { e.KeyName = testKeyName[:len(testKeyName)-1] + "0" },
				"name prefix":  func(e *Envelope) { e.KeyName = testKeyName[:10] },
				"version up":   func(e *Envelope) { e.Version = 6 },
				"version down": func(e *Envelope) { e.Version = 4 },
				"version 1<<31": func(e *Envelope) {
					e.Version |= 1 << 31
				},
			} {
				e := env
				relabel(&e)
				// Through the struct, as a keystore would after lookup...
				pt, err := Unwrap(k, e, aad)
				checkNoOpen(t, what, pt, err)
				// ...and through the wire form.
				pt, err = parseUnwrap(k, e.Marshal(), aad)
				checkNoOpen(t, what+" (wire)", pt, err)
			}
			for _, o := range kemNames {
				if o == name {
					continue
				}
				e := env
				e.KEMID = schemes[o].kem.ID()
				pt, err := Unwrap(k, e, aad) // enc size no longer matches: ErrFormat
				checkNoOpen(t, "KEM id "+o, pt, err)
				// A well-formed envelope for another KEM, given to this key.
				other := newKey(t, o)
				oe, _ := Parse(mustWrap(t, other.Public(), testKeyName, 5, aad, []byte("data key")))
				pt, err = Unwrap(k, oe, aad)
				checkNoOpen(t, "envelope of "+o, pt, err)
				if !errors.Is(err, ErrOpen) {
					t.Errorf("envelope of %s: %v, want ErrOpen", o, err)
				}
			}
		})
	}
}

func TestWrapRefuses(t *testing.T) {
	k := newKey(t, alg.X25519)
	for _, c := range []struct {
		name    string
		version uint32
	}{
		{"", 1},
		{string(bytes.Repeat([]byte{'a'}, MaxNameLen+1)), 1},
		{"a\xffb", 1},
		{"a", 0},
	} {
		if b, err := Wrap(k.Public(), c.name, c.version, nil, []byte("k")); !errors.Is(err, ErrFormat) || b != nil {
			t.Errorf("Wrap(%.10q, %d) = %x, %v", c.name, c.version, b, err)
		}
	}
	long := string(bytes.Repeat([]byte{'a'}, MaxNameLen))
	if _, err := parseUnwrap(k, mustWrap(t, k.Public(), long, 1<<32-1, nil, nil), nil); err != nil {
		t.Errorf("longest name, largest version: %v", err)
	}
}

func TestUnwrapInvalidEnvelope(t *testing.T) {
	k := newKey(t, alg.X25519)
	env, _ := Parse(mustWrap(t, k.Public(), testKeyName, 1, nil, []byte("k")))
	for what, spoil := range map[string]func(*Envelope){
		"empty name":  func(e *Envelope) { e.KeyName = "" },
		"version 0":   func(e *Envelope) { e.Version = 0 },
		"unknown KEM": func(e *Envelope) { e.KEMID = 0x0010 },
		"short enc":   func(e *Envelope) { e.Enc = e.Enc[:31] },
		"short ct":    func(e *Envelope) { e.Ciphertext = e.Ciphertext[:TagSize-1] },
	} {
		e := env
		spoil(&e)
		if pt, err := Unwrap(k, e, nil); !errors.Is(err, ErrFormat) || pt != nil {
			t.Errorf("%s: %x, %v", what, pt, err)
		}
	}
}

func TestOpen(t *testing.T) {
	for _, name := range kemNames {
		k := newKey(t, name)
		enc, ct, err := k.Public().Seal([]byte("info"), []byte("aad"), []byte("pt"))
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := k.Open(enc, []byte("info"), []byte("aad"), ct); err != nil || string(pt) != "pt" {
			t.Fatalf("%s: Open = %q, %v", name, pt, err)
		}
		for what, args := range map[string][4][]byte{
			"info":      {enc, []byte("infp"), []byte("aad"), ct},
			"aad":       {enc, []byte("info"), []byte("aae"), ct},
			"enc short": {enc[:len(enc)-1], []byte("info"), []byte("aad"), ct},
			"enc long":  {append(append([]byte(nil), enc...), 0), []byte("info"), []byte("aad"), ct},
			"ct":        {enc, []byte("info"), []byte("aad"), ct[1:]},
			"empty":     {nil, nil, nil, nil},
		} {
			if pt, err := k.Open(args[0], args[1], args[2], args[3]); err != ErrOpen || pt != nil {
				t.Errorf("%s: Open with wrong %s = %x, %v", name, what, pt, err)
			}
		}
	}
	// An X25519 enc that is a low-order point.
	k := newKey(t, alg.X25519)
	if pt, err := k.Open(make([]byte, 32), nil, nil, make([]byte, 16)); err != ErrOpen || pt != nil {
		t.Errorf("low-order enc: %x, %v", pt, err)
	}
	// Sealing to a low-order X25519 public key fails without panicking.
	lo, err := mustScheme(t, alg.X25519).NewPublicKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := lo.Seal(nil, nil, []byte("k")); err == nil {
		t.Error("Seal to the zero X25519 point succeeded")
	}
}

// TestRawInterop: our Seal opens with crypto/hpke and the other way round,
// with the documented suite.
func TestRawInterop(t *testing.T) {
	for _, name := range kemNames {
		k := newKey(t, name)
		kem := schemes[name].kem
		hpub, err := kem.NewPublicKey(k.Public().Bytes())
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := hpke.Seal(hpub, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("info"), []byte("pt"))
		if err != nil {
			t.Fatal(err)
		}
		n := k.Public().Alg().OutputSize
		if pt, err := k.Open(sealed[:n], []byte("info"), nil, sealed[n:]); err != nil || string(pt) != "pt" {
			t.Errorf("%s: Open(hpke.Seal) = %q, %v", name, pt, err)
		}
	}
}

func TestImport(t *testing.T) {
	k := newKey(t, alg.MLKEM768X25519)
	seed := bytes.Repeat([]byte{0x5e}, 32)
	sealed, err := SealImport(k.Public(), seed)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenImport(k, sealed); err != nil || !bytes.Equal(got, seed) {
		t.Fatalf("OpenImport(SealImport) = %x, %v", got, err)
	}
	// SPEC §4: what hpke.Seal returns for this suite and info opens, and
	// what SealImport returns opens with hpke.Open.
	hk, err := hpke.MLKEM768X25519().NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := mustScheme(t, alg.MLKEM768X25519).NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := SealImport(k2.Public(), []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := hpke.Open(hk, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("ron-kms/import/v1"), s2); err != nil || string(got) != "secret" {
		t.Fatalf("hpke.Open(SealImport) = %q, %v", got, err)
	}
	hpub, _ := hpke.MLKEM768X25519().NewPublicKey(k.Public().Bytes())
	raw, err := hpke.Seal(hpub, hpke.HKDFSHA256(), hpke.AES256GCM(), []byte("ron-kms/import/v1"), seed)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenImport(k, raw); err != nil || !bytes.Equal(got, seed) {
		t.Fatalf("OpenImport(hpke.Seal) = %x, %v", got, err)
	}
	for i := range sealed {
		mod := append([]byte(nil), sealed...)
		mod[i] ^= 0x20
		if pt, err := OpenImport(k, mod); err != ErrOpen || pt != nil {
			t.Fatalf("byte %d flipped: %x, %v", i, pt, err)
		}
	}
	for _, n := range []int{0, 1, 1120, 1120 + TagSize - 1} {
		if pt, err := OpenImport(k, sealed[:n]); err != ErrOpen || pt != nil {
			t.Fatalf("truncated to %d: %x, %v", n, pt, err)
		}
	}
	// An import blob is not an envelope: the info differs.
	if pt, err := OpenImport(k, mustWrap(t, k.Public(), testKeyName, 1, nil, seed)[fixedSize+len(testKeyName):]); err != ErrOpen || pt != nil {
		t.Fatalf("envelope body opened as import: %x, %v", pt, err)
	}
	x := newKey(t, alg.X25519)
	if _, err := SealImport(x.Public(), seed); !errors.Is(err, ErrUnsupported) {
		t.Errorf("SealImport to x25519: %v", err)
	}
	if _, err := OpenImport(x, sealed); !errors.Is(err, ErrUnsupported) {
		t.Errorf("OpenImport with x25519: %v", err)
	}
}

func TestDestroy(t *testing.T) {
	for _, name := range kemNames {
		k := newKey(t, name)
		b := mustWrap(t, k.Public(), testKeyName, 1, nil, []byte("k"))
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 5 {
					pt, err := parseUnwrap(k, b, nil)
					if err != nil && err != ErrKeyDestroyed || err == nil && string(pt) != "k" {
						t.Errorf("%s: concurrent Unwrap = %q, %v", name, pt, err)
					}
				}
			})
		}
		k.Destroy()
		wg.Wait()
		k.Destroy()
		if pt, err := parseUnwrap(k, b, nil); err != ErrKeyDestroyed || pt != nil {
			t.Errorf("%s: Unwrap after Destroy = %x, %v", name, pt, err)
		}
		// The public key stays usable.
		if _, err := Wrap(k.Public(), testKeyName, 2, nil, []byte("k")); err != nil {
			t.Errorf("%s: Wrap to the public key of a destroyed key: %v", name, err)
		}
	}
}
