package api

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
)

// TestAppendJSONMatchesMarshal: every JSONAppender writes the bytes
// json.Marshal writes, for random answers with awkward strings, empty and
// nil slices, and errors in batch slots.
func TestAppendJSONMatchesMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	strs := []string{"", "ed25519", "acme/pay/ed25519/0190b1d6-3f3c-7c3e-9a4e-1f2a3b4c5d6e#v2",
		"q+/=AAAA", `quo"te`, `back\slash`, "<tag>", "a<b", "a>b", "&amp;", "ctl\x01\x1f\n\t\b\f\r", "é ü 漢", "\u2028\u2029",
		"bad\xffutf8", "\x7f"}
	str := func() string { return strs[rng.IntN(len(strs))] }
	sigs := func() []Signature {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []Signature{}
		}
		out := make([]Signature, 1+rng.IntN(2))
		for i := range out {
			out[i] = Signature{Alg: str(), SignatureB64: str()}
		}
		return out
	}
	itemErr := func() *ItemError {
		if rng.IntN(3) != 0 {
			return nil
		}
		return &ItemError{Code: Code(str()), Message: str()}
	}
	var values []JSONAppender
	for range 300 {
		values = append(values, SignResponse{KID: str(), Sigs: sigs()})
		var sb SignBatchResponse
		var vb VerifyBatchResponse
		if n := rng.IntN(4); n > 0 {
			sb.Results = make([]SignBatchResult, n-1)
			vb.Results = make([]VerifyBatchResult, n-1)
		}
		for i := range sb.Results {
			sb.Results[i] = SignBatchResult{KID: str(), Sigs: sigs(), Error: itemErr()}
			vb.Results[i] = VerifyBatchResult{OK: rng.IntN(2) == 0, Error: itemErr()}
		}
		vb.AllOK = rng.IntN(2) == 0
		if rng.IntN(2) == 0 {
			age := []int64{0, 1, 299_999, 1 << 40}[rng.IntN(4)]
			vb.CacheAgeMS = &age
		}
		values = append(values, sb, vb)
	}
	for _, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.AppendJSON([]byte("x")); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Fatalf("%T %+v:\nAppendJSON %s\njson       %s", v, v, got[1:], want)
		}
	}
}

func BenchmarkSignBatchAnswer(b *testing.B) {
	r := SignBatchResponse{Results: make([]SignBatchResult, 64)}
	for i := range r.Results {
		r.Results[i] = SignBatchResult{KID: "acme/pay/ed25519/0190b1d6-3f3c-7c3e-9a4e-1f2a3b4c5d6e#v1",
			Sigs: []Signature{{Alg: "ed25519", SignatureB64: EncodeB64(make([]byte, 64))}}}
	}
	b.Run("marshal", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(r)
		}
	})
	var buf []byte
	b.Run("append", func(b *testing.B) {
		for b.Loop() {
			buf = r.AppendJSON(buf[:0])
		}
	})
}

// FuzzAppendJSON: for any strings, the appenders write json.Marshal's bytes.
func FuzzAppendJSON(f *testing.F) {
	f.Add("acme/pay/ed25519/0190b1d6-3f3c-7c3e-9a4e-1f2a3b4c5d6e#v1", "ed25519", "AAAA==", "NotFound", "no such key <x> & \u2028", true, int64(-1))
	f.Add("", "", "", "", "\xff\x00", false, int64(1234))
	f.Fuzz(func(t *testing.T, kid, alg, sig, code, msg string, ok bool, age int64) {
		var cacheAge *int64 // a negative age stands for none
		if age >= 0 {
			cacheAge = &age
		}
		sigs := []Signature{{Alg: alg, SignatureB64: sig}}
		e := &ItemError{Code: Code(code), Message: msg}
		for _, v := range []JSONAppender{
			SignResponse{KID: kid, Sigs: sigs},
			SignBatchResponse{Results: []SignBatchResult{{KID: kid, Sigs: sigs}, {Error: e}, {KID: kid, Error: e}}},
			VerifyBatchResponse{AllOK: ok, Results: []VerifyBatchResult{{OK: ok}, {Error: e}}, CacheAgeMS: cacheAge},
			VerifyBatchResponse{AllOK: ok, CacheAgeMS: cacheAge},
		} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.AppendJSON(nil); !bytes.Equal(got, want) {
				t.Fatalf("%T:\nAppendJSON %q\njson       %q", v, got, want)
			}
		}
	})
}
