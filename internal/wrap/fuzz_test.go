package wrap

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzKeys holds one private key per KEM, from fixed seeds so that a
// crash found by the fuzzer reproduces.
func fuzzKeys(tb testing.TB) map[uint16]PrivateKey {
	keys := map[uint16]PrivateKey{}
	for i, name := range kemNames {
		s := mustScheme(tb, name)
		k, err := s.NewPrivateKey(bytes.Repeat([]byte{byte(0x40 + i)}, s.Alg().SeedSize))
		if err != nil {
			tb.Fatal(err)
		}
		keys[schemes[name].kem.ID()] = k
	}
	return keys
}

// fuzzEnvelopes returns real envelopes of every KEM, wrapped to keys with
// aad "seed-aad": FuzzUnwrap opens with another aad, so none of them opens.
func fuzzEnvelopes(tb testing.TB, keys map[uint16]PrivateKey) [][]byte {
	var envs [][]byte
	for _, k := range keys {
		for _, pt := range [][]byte{nil, bytes.Repeat([]byte{0x42}, 32)} {
			envs = append(envs, mustWrap(tb, k.Public(), testKeyName, 1, []byte("seed-aad"), pt))
			envs = append(envs, mustWrap(tb, k.Public(), "é", 1<<32-1, []byte("seed-aad"), pt))
		}
	}
	return envs
}

func FuzzParseEnvelope(f *testing.F) {
	for _, b := range fuzzEnvelopes(f, fuzzKeys(f)) {
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte("RKW\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if got := e.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("Marshal(Parse(b)) = %x, want %x", got, b)
		}
	})
}

func FuzzUnwrap(f *testing.F) {
	keys := fuzzKeys(f)
	for _, b := range fuzzEnvelopes(f, keys) {
		f.Add(b)
	}
	f.Add([]byte("RKW\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			return // FuzzParseEnvelope covers this
		}
		pt, err := Unwrap(keys[e.KEMID], e, []byte("fuzz-aad"))
		if err == nil || pt != nil {
			t.Fatalf("random envelope opened to %x", pt)
		}
		if !errors.Is(err, ErrOpen) {
			t.Fatalf("error %v is not ErrOpen", err)
		}
		// The key of another KEM refuses it too.
		for id, k := range keys {
			if id != e.KEMID {
				if pt, err := Unwrap(k, e, []byte("seed-aad")); !errors.Is(err, ErrOpen) || pt != nil {
					t.Fatalf("key of KEM %#04x: %x, %v", id, pt, err)
				}
			}
		}
	})
}
