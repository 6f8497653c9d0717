package testvectors

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// CCTVEd25519Vector is one entry of CCTV's ed25519vectors.json: public key
// A, signature R ‖ S (hex), message M (text) and the edge cases it
// exercises.
type CCTVEd25519Vector struct {
	A, R, S, M string
	Flags      []string
}

// cctvEd25519Flags are the flags the file uses (its README explains them).
var cctvEd25519Flags = []string{"LowOrderA", "LowOrderR", "LowOrderComponentA", "LowOrderComponentR",
	"LowOrderResidue", "NonCanonicalA", "NonCanonicalR"}

// CCTVEd25519 reads the pinned Ed25519Vectors file strictly. It fails tb
// if the module cannot be had, the file does not decode, or a vector
// carries a flag not in cctvEd25519Flags.
func CCTVEd25519(tb testing.TB) []CCTVEd25519Vector {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(ModuleDir(tb, Ed25519Vectors), "ed25519vectors.json"))
	if err != nil {
		tb.Fatalf("testvectors: CCTV ed25519 vectors are required: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var vs []CCTVEd25519Vector
	if err := dec.Decode(&vs); err != nil {
		tb.Fatalf("testvectors: ed25519vectors.json: %v", err)
	}
	for i, v := range vs {
		for _, f := range v.Flags {
			if !slices.Contains(cctvEd25519Flags, f) {
				tb.Fatalf("testvectors: ed25519vectors.json vector %d: unknown flag %q", i, f)
			}
		}
	}
	return vs
}

// SmallOrderEd25519Keys returns, sorted, the distinct public keys that the
// CCTV vectors flag LowOrderA (hex): the eight points of small order in
// every encoding that decodes to one, canonical or not (14 in all).
func SmallOrderEd25519Keys(tb testing.TB) []string {
	tb.Helper()
	var keys []string
	for _, v := range CCTVEd25519(tb) {
		if slices.Contains(v.Flags, "LowOrderA") && !slices.Contains(keys, v.A) {
			keys = append(keys, v.A)
		}
	}
	slices.Sort(keys)
	return keys
}
