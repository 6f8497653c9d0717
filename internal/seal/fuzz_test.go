package seal

import (
	"bytes"
	"errors"
	"testing"
)

func sealedSeeds(t testing.TB, s Sealer, b Binding) [][]byte {
	var seeds [][]byte
	for _, pt := range [][]byte{nil, []byte("k"), bytes.Repeat([]byte{0x42}, 32), bytes.Repeat([]byte{7}, 100)} {
		seeds = append(seeds, mustSeal(t, s, b, pt))
	}
	return seeds
}

func FuzzParseRecord(f *testing.F) {
	for _, rec := range sealedSeeds(f, newTestSealer(f, 1), testBinding) {
		f.Add(rec)
		f.Add(rec[:Overhead])
		f.Add(rec[:Overhead-1])
	}
	f.Add([]byte("RKS\x01"))
	f.Add([]byte("RKS\x02" + string(make([]byte, 40))))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRecord(b)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if got := r.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("Marshal(ParseRecord(b)) = %x, want %x", got, b)
		}
	})
}

func FuzzOpen(f *testing.F) {
	s := newTestSealer(f, 1)
	// Seeds are real records for other bindings and KEKs: close to valid,
	// but none of them may open under testBinding.
	other := testBinding
	other.Version++
	for _, rec := range sealedSeeds(f, s, other) {
		f.Add(rec)
	}
	for _, rec := range sealedSeeds(f, newTestSealer(f, 2), testBinding) {
		f.Add(rec)
	}
	f.Add([]byte("RKS\x01"))
	f.Add(make([]byte, Overhead))
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := s.Open(testBinding, b)
		if err == nil || pt != nil {
			t.Fatalf("random record opened to %x", pt)
		}
		if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrOpen) {
			t.Fatalf("error %v is neither ErrFormat nor ErrOpen", err)
		}
	})
}

func FuzzParsePassphraseParams(f *testing.F) {
	p, err := NewPassphraseParams(1, 64, 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p.Marshal())
	f.Add(DefaultPassphraseParams().Marshal())
	f.Add([]byte(`{"kdf":"argon2id","salt_b64":"AAAAAAAAAAAAAAAAAAAAAA==","time":1,"memory_kib":8,"threads":1,"x":1}`))
	f.Add([]byte(`{"kdf":"argon2id","salt_b64":"AAAAAAAAAAAAAAAAAAAAAA==","time":1e0,"memory_kib":8,"threads":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePassphraseParams(b)
		if err != nil {
			if !errors.Is(err, ErrParams) {
				t.Fatalf("error %v does not wrap ErrParams", err)
			}
			return
		}
		enc := p.Marshal()
		q, err := ParsePassphraseParams(enc)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", enc, err)
		}
		if !bytes.Equal(q.Salt, p.Salt) || q.Time != p.Time || q.MemoryKiB != p.MemoryKiB || q.Threads != p.Threads {
			t.Fatalf("round trip %+v != %+v", q, p)
		}
		if !bytes.Equal(q.Marshal(), enc) {
			t.Fatalf("Marshal not stable")
		}
	})
}
