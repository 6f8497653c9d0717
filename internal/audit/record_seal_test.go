package audit

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

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
			Code: pick(), RequestID: pick(), Actor: pick(), Seq: rng.Uint64(), TS: time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9))}
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
