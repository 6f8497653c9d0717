package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var testBinding = Binding{Name: "acme/payments/ed25519/0b8e2a4c-5d1e-4f7a-9c3b-2e6f8a1d4b7c", Version: 3, Alg: "ed25519"}

func testKEK(fill byte) []byte { return bytes.Repeat([]byte{fill}, KEKSize) }

func newTestSealer(t testing.TB, fill byte) *AESGCM {
	t.Helper()
	s, err := NewAESGCM(testKEK(fill))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustSeal(t testing.TB, s Sealer, b Binding, pt []byte) []byte {
	t.Helper()
	rec, err := s.Seal(b, pt)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := newTestSealer(t, 1)
	for _, pt := range [][]byte{nil, {0}, bytes.Repeat([]byte("seed"), 8), make([]byte, 4096)} {
		rec := mustSeal(t, s, testBinding, pt)
		if len(rec) != Overhead+len(pt) {
			t.Errorf("record length %d, want %d", len(rec), Overhead+len(pt))
		}
		got, err := s.Open(testBinding, rec)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("Open = %x, want %x", got, pt)
		}
	}
}

func TestSealRandomNonce(t *testing.T) {
	s := newTestSealer(t, 1)
	pt := []byte("same plaintext")
	a, b := mustSeal(t, s, testBinding, pt), mustSeal(t, s, testBinding, pt)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal")
	}
	ra, _ := ParseRecord(a)
	rb, _ := ParseRecord(b)
	if ra.Nonce == rb.Nonce {
		t.Fatal("nonce reused")
	}
}

func TestSealDoesNotAliasPlaintext(t *testing.T) {
	s := newTestSealer(t, 1)
	pt := []byte("0123456789abcdef0123456789abcdef")
	keep := bytes.Clone(pt)
	rec := mustSeal(t, s, testBinding, pt)
	clear(pt)
	got, err := s.Open(testBinding, rec)
	if err != nil || !bytes.Equal(got, keep) {
		t.Fatalf("Open after clearing plaintext = %x, %v", got, err)
	}
}

func TestOpenOtherBinding(t *testing.T) {
	s := newTestSealer(t, 1)
	rec := mustSeal(t, s, testBinding, []byte("secret seed"))
	others := map[string]Binding{
		"name":     {Name: "acme/payments/ed25519/other", Version: testBinding.Version, Alg: testBinding.Alg},
		"version":  {Name: testBinding.Name, Version: testBinding.Version + 1, Alg: testBinding.Alg},
		"version0": {Name: testBinding.Name, Version: 0, Alg: testBinding.Alg},
		"alg":      {Name: testBinding.Name, Version: testBinding.Version, Alg: "ml-dsa-65"},
		"no alg":   {Name: testBinding.Name, Version: testBinding.Version},
		// Length prefixes keep the name/alg boundary unambiguous.
		"shifted": {Name: testBinding.Name + "e", Version: testBinding.Version, Alg: "d25519"},
	}
	for what, b := range others {
		pt, err := s.Open(b, rec)
		if !errors.Is(err, ErrOpen) || errors.Is(err, ErrWrongKEK) || pt != nil {
			t.Errorf("open with other %s = %q, %v; want ErrOpen (not ErrWrongKEK)", what, pt, err)
		}
	}
}

func TestOpenOtherKEK(t *testing.T) {
	s1, s2 := newTestSealer(t, 1), newTestSealer(t, 2)
	if s1.KEKID() == s2.KEKID() {
		t.Fatal("different KEKs have the same id")
	}
	rec := mustSeal(t, s1, testBinding, []byte("secret seed"))
	r, err := ParseRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if r.KEKID != s1.KEKID() || r.KEKID == s2.KEKID() {
		t.Fatal("record KEK id does not identify the sealing KEK")
	}
	pt, err := s2.Open(testBinding, rec)
	if !errors.Is(err, ErrWrongKEK) || !errors.Is(err, ErrOpen) || pt != nil {
		t.Fatalf("open under other KEK = %q, %v; want ErrWrongKEK", pt, err)
	}
	// A record relabelled with the other KEK's id still must not open.
	r.KEKID = s2.KEKID()
	pt, err = s2.Open(testBinding, r.Marshal())
	if !errors.Is(err, ErrOpen) || errors.Is(err, ErrWrongKEK) || pt != nil {
		t.Fatalf("open of relabelled record = %q, %v; want ErrOpen", pt, err)
	}
}

func TestKEKIDPinned(t *testing.T) {
	// The id is stored in every record, so its derivation must never change.
	// Expected value computed independently (Python hmac/hashlib, RFC 5869):
	// HKDF-SHA256(IKM = 32 zero bytes, no salt, info "ron-kms/seal/v1 kek-id")[:8].
	s := newTestSealer(t, 0)
	id := s.KEKID()
	if got, want := hex.EncodeToString(id[:]), "75e299f7972009be"; got != want {
		t.Fatalf("KEKID = %s, want %s", got, want)
	}
	rec := mustSeal(t, s, testBinding, []byte("k"))
	if !bytes.Equal(rec[len(magic)+1:HeaderSize], id[:]) {
		t.Fatal("record does not carry the KEK id")
	}
}

func TestTamperedRecord(t *testing.T) {
	s := newTestSealer(t, 1)
	pt := []byte("0123456789abcdef0123456789abcdef")
	rec := mustSeal(t, s, testBinding, pt)

	// Invert every byte, then flip each single bit of a few bytes in every
	// region: magic, version, KEK id, nonce, ciphertext, tag.
	check := func(what string, bad []byte, region int) {
		t.Helper()
		got, err := s.Open(testBinding, bad)
		if err == nil || got != nil {
			t.Fatalf("%s: opened to %q", what, got)
		}
		var want error
		switch {
		case region < len(magic)+1:
			want = ErrFormat
		case region < HeaderSize:
			want = ErrWrongKEK
		default:
			want = ErrOpen
		}
		if !errors.Is(err, want) {
			t.Fatalf("%s: error %v, want %v", what, err, want)
		}
	}
	for i := range rec {
		bad := bytes.Clone(rec)
		bad[i] ^= 0xff
		check("byte "+strconv.Itoa(i), bad, i)
	}
	for _, i := range []int{0, 3, 4, HeaderSize - 1, HeaderSize, HeaderSize + NonceSize, len(rec) - TagSize - 1, len(rec) - 1} {
		for bit := range 8 {
			bad := bytes.Clone(rec)
			bad[i] ^= 1 << bit
			check("byte "+strconv.Itoa(i)+" bit "+strconv.Itoa(bit), bad, i)
		}
	}
	// Appended bytes are taken as ciphertext and fail authentication.
	if got, err := s.Open(testBinding, append(bytes.Clone(rec), 0)); !errors.Is(err, ErrOpen) || got != nil {
		t.Fatalf("extended record: %q, %v", got, err)
	}
}

func TestTruncatedRecord(t *testing.T) {
	s := newTestSealer(t, 1)
	rec := mustSeal(t, s, testBinding, []byte("0123456789abcdef0123456789abcdef"))
	for n := range len(rec) {
		got, err := s.Open(testBinding, rec[:n])
		if got != nil || err == nil {
			t.Fatalf("truncated to %d: opened", n)
		}
		// Below the minimum length the record is malformed; above it, the
		// missing bytes look like a shorter ciphertext and fail to open.
		want := ErrOpen
		if n < Overhead {
			want = ErrFormat
		}
		if !errors.Is(err, want) {
			t.Fatalf("truncated to %d: %v, want %v", n, err, want)
		}
		if _, err := ParseRecord(rec[:n]); (n < Overhead) != errors.Is(err, ErrFormat) {
			t.Fatalf("ParseRecord truncated to %d: %v", n, err)
		}
	}
}

func TestBindingLimits(t *testing.T) {
	s := newTestSealer(t, 1)
	ok := []Binding{
		{Name: "x"},
		{Name: strings.Repeat("n", MaxNameLen), Alg: strings.Repeat("a", MaxAlgLen), Version: ^uint32(0)},
	}
	for _, b := range ok {
		rec := mustSeal(t, s, b, []byte("k"))
		if _, err := s.Open(b, rec); err != nil {
			t.Errorf("binding name %d bytes alg %d bytes: %v", len(b.Name), len(b.Alg), err)
		}
	}
	rec := mustSeal(t, s, testBinding, []byte("k"))
	bad := []Binding{
		{},
		{Alg: "ed25519", Version: 1},
		{Name: strings.Repeat("n", MaxNameLen+1)},
		{Name: strings.Repeat("n", 1<<16)},
		{Name: "x", Alg: strings.Repeat("a", MaxAlgLen+1)},
		{Name: "x", Alg: strings.Repeat("a", 1<<16+1)},
	}
	for _, b := range bad {
		if _, err := s.Seal(b, []byte("k")); !errors.Is(err, ErrBinding) {
			t.Errorf("Seal with name %d bytes alg %d bytes: %v, want ErrBinding", len(b.Name), len(b.Alg), err)
		}
		if _, err := s.Open(b, rec); !errors.Is(err, ErrBinding) {
			t.Errorf("Open with name %d bytes alg %d bytes: %v, want ErrBinding", len(b.Name), len(b.Alg), err)
		}
	}
}

func TestNewAESGCMKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := NewAESGCM(make([]byte, n)); !errors.Is(err, ErrKeyLength) {
			t.Errorf("NewAESGCM(%d bytes) = %v, want ErrKeyLength", n, err)
		}
	}
}

func TestNewAESGCMCopiesKEK(t *testing.T) {
	kek := testKEK(7)
	s, err := NewAESGCM(kek)
	if err != nil {
		t.Fatal(err)
	}
	rec := mustSeal(t, s, testBinding, []byte("k"))
	clear(kek)
	if _, err := s.Open(testBinding, rec); err != nil {
		t.Fatalf("sealer depends on caller's KEK slice: %v", err)
	}
	if _, err := newTestSealer(t, 7).Open(testBinding, rec); err != nil {
		t.Fatalf("same KEK in a new sealer: %v", err)
	}
}

func TestDestroy(t *testing.T) {
	s := newTestSealer(t, 1)
	rec := mustSeal(t, s, testBinding, []byte("k"))
	s.Destroy()
	if _, err := s.Seal(testBinding, []byte("k")); !errors.Is(err, ErrDestroyed) {
		t.Errorf("Seal after Destroy: %v", err)
	}
	if pt, err := s.Open(testBinding, rec); !errors.Is(err, ErrDestroyed) || pt != nil {
		t.Errorf("Open after Destroy: %q, %v", pt, err)
	}
	s.Destroy() // idempotent
}

func TestConcurrentUse(t *testing.T) {
	s := newTestSealer(t, 1)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			b := Binding{Name: "t/p/ed25519/" + strconv.Itoa(g), Version: uint32(g), Alg: "ed25519"}
			for i := range 50 {
				pt := []byte(strconv.Itoa(g*1000 + i))
				rec, err := s.Seal(b, pt)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.Open(b, rec)
				if err != nil || !bytes.Equal(got, pt) {
					t.Errorf("goroutine %d: %q, %v", g, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestErrorsCarryNoSecrets collects every kind of error the sealer returns
// and checks that neither the KEK nor the plaintext appears in any encoding.
func TestErrorsCarryNoSecrets(t *testing.T) {
	kek := []byte("KEK-KEK-KEK-KEK-KEK-KEK-KEK-KEK!")
	pt := []byte("PLAINTEXT-SEED-PLAINTEXT-SEED!!!")
	s, err := NewAESGCM(kek)
	if err != nil {
		t.Fatal(err)
	}
	other := newTestSealer(t, 9)
	rec := mustSeal(t, s, testBinding, pt)
	var errs []error
	add := func(_ []byte, err error) { errs = append(errs, err) }
	add(other.Open(testBinding, rec))
	add(s.Open(Binding{Name: "x"}, rec))
	add(s.Open(testBinding, rec[:Overhead-1]))
	add(s.Open(testBinding, append([]byte("XXXX"), rec[4:]...)))
	add(s.Open(Binding{}, rec))
	add(s.Seal(Binding{}, pt))
	_, err = NewAESGCM(kek[:31])
	errs = append(errs, err)
	for _, secret := range [][]byte{kek, pt, kek[:31], pt[:16]} {
		forms := []string{string(secret), hex.EncodeToString(secret), base64.StdEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret)}
		for _, err := range errs {
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, f := range forms {
				if strings.Contains(err.Error(), f) || strings.Contains(strings.ToLower(err.Error()), strings.ToLower(f)) {
					t.Errorf("error %q contains a secret", err)
				}
			}
		}
	}
}
