package audit

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	zeebo "github.com/zeebo/blake3"
	luke "lukechampine.com/blake3"
)

// blake3Input is the input of the official BLAKE3 test vectors: n bytes
// counting 0 to 250 over and over.
func blake3Input(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// TestBLAKE3Vectors holds the BLAKE3 the log hashes with
// (github.com/zeebo/blake3) to the official test vectors of the BLAKE3
// team (test_vectors.json, as lukechampine.com/blake3 carries it in its
// module): the first 32 bytes of each "hash" are BLAKE3-256 of the input.
// Changing the library must not change a single hash of a log already
// written.
func TestBLAKE3Vectors(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "lukechampine.com/blake3").Output()
	if err != nil {
		t.Fatalf("locating the module with the vectors: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "testdata", "vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors struct {
		Cases []struct {
			InputLen int    `json:"input_len"`
			Hash     string `json:"hash"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors.Cases) < 20 { // 22 in the official file
		t.Fatalf("only %d vectors", len(vectors.Cases))
	}
	for _, c := range vectors.Cases {
		got := zeebo.Sum256(blake3Input(c.InputLen))
		if hex.EncodeToString(got[:]) != c.Hash[:64] {
			t.Errorf("input_len %d: BLAKE3-256 %x, want %s", c.InputLen, got, c.Hash[:64])
		}
	}
}

// TestBLAKE3SameAsBefore: the log's BLAKE3 and the one it used before
// (lukechampine.com/blake3) agree on every length up to 70,000 bytes in
// steps that cross every chunk (1024) and block (64) boundary pattern, so a
// log written by either verifies with the other.
func TestBLAKE3SameAsBefore(t *testing.T) {
	in := blake3Input(70000)
	for n := 0; n <= len(in); n += 61 {
		if a, b := zeebo.Sum256(in[:n]), luke.Sum256(in[:n]); a != b {
			t.Fatalf("%d bytes: %x and %x", n, a, b)
		}
	}
}
