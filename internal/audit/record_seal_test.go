package audit

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"testing"
	"time"

	"lukechampine.com/blake3"
)

// recordFields lists r's JSON members for the generic encoder
// (appendCanonical), the oracle for Record's direct encoders; "hash" is
// included when withHash is set.
func recordFields(r *Record, withHash bool) []field {
	fs := []field{
		strField("actor", r.Actor),
		strField("alg", r.Alg),
		strField("input_b3", hex.EncodeToString(r.InputB3)),
		strField("kid", r.Kid),
		strField("op", r.Op),
		strField("prev", hex.EncodeToString(r.Prev[:])),
		strField("request_id", r.RequestID),
		strField("result", r.Result),
		numField("seq", r.Seq),
		strField("tenant", r.Tenant),
		strField("ts", formatTime(r.TS)),
	}
	if r.Code != "" {
		fs = append(fs, strField("code", r.Code))
	}
	if r.Count != 0 {
		fs = append(fs, numField("count", r.Count))
	}
	if r.Detail != "" {
		fs = append(fs, strField("detail", r.Detail))
	}
	if r.Node != "" {
		fs = append(fs, strField("node", r.Node))
	}
	if len(r.Items) != 0 {
		objs := make([][]field, len(r.Items))
		for i, it := range r.Items {
			objs[i] = []field{strField("kid", it.Kid), strField("input_b3", hex.EncodeToString(it.InputB3)), strField("result", it.Result)}
			if it.Code != "" {
				objs[i] = append(objs[i], strField("code", it.Code))
			}
		}
		fs = append(fs, objsField("items", objs))
	}
	if withHash {
		fs = append(fs, strField("hash", hex.EncodeToString(r.Hash[:])))
	}
	return fs // appendCanonical sorts them
}

// TestSealMatchesComputeHashAndAppendLine: the writer's one-pass seal gives
// exactly the hash and line of ComputeHash and appendLine, which Verify
// uses, for records with and without code, input, odd strings.
func TestSealMatchesComputeHashAndAppendLine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	strs := []string{"", "acme", `quo"te`, "back\\slash", "ctl\x01\n", "é ü 漢", "input_b3", `,"input_b3":`}
	pick := func() string { return strs[rng.IntN(len(strs))] }
	var scratch []byte
	for i := range 500 {
		r := Record{Op: "sign" + pick(), Tenant: pick(), Kid: pick(), Alg: pick(), Result: ResultOK + pick(),
			Code: pick(), RequestID: pick(), Actor: pick(), Seq: rng.Uint64(), TS: time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)),
			Detail: pick()}
		if rng.IntN(2) == 0 {
			r.Count = rng.Uint64N(1 << 40)
		}
		if rng.IntN(3) == 0 {
			for range 1 + rng.IntN(4) {
				it := Item{Kid: pick(), Result: ResultOK + pick(), Code: pick()}
				if rng.IntN(2) == 0 {
					it.InputB3 = make([]byte, HashSize)
					for j := range it.InputB3 {
						it.InputB3[j] = byte(rng.UintN(256))
					}
				}
				r.Items = append(r.Items, it)
			}
		}
		if rng.IntN(2) == 0 {
			r.InputB3 = make([]byte, HashSize)
			for j := range r.InputB3 {
				r.InputB3[j] = byte(rng.UintN(256))
			}
		}
		for j := range r.Prev {
			r.Prev[j] = byte(rng.UintN(256))
		}
		if err := r.normalize(time.Now()); err != nil {
			t.Fatal(err)
		}
		want := r
		want.Hash = want.ComputeHash()
		wantLine := want.appendLine([]byte("prefix"))
		// The direct encoders against the generic canonical encoder (itself
		// held to encoding/json by TestAppendCanonicalMatchesJSON).
		if got, gen := want.appendLine(nil), appendCanonical(nil, recordFields(&want, true)); !bytes.Equal(got, append(gen, '\n')) {
			t.Fatalf("record %d: appendLine\n%s\nappendCanonical\n%s", i, got, gen)
		}
		if h := blake3.Sum256(appendCanonical(append([]byte(nil), r.Prev[:]...), recordFields(&r, false))); h != want.Hash {
			t.Fatalf("record %d: ComputeHash %x, generic %x", i, want.Hash, h)
		}
		var line []byte
		line, scratch = r.seal([]byte("prefix"), scratch)
		if r.Hash != want.Hash {
			t.Fatalf("record %d: seal hash %x, ComputeHash %x", i, r.Hash, want.Hash)
		}
		if !bytes.Equal(line, wantLine) {
			t.Fatalf("record %d: seal line\n%s\nappendLine\n%s", i, line, wantLine)
		}
	}
}
