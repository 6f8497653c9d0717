package sig

// Loaders for the external test vectors shared by the tests, the fuzz target
// and the benchmarks. Nothing here generates expectations: every valid
// signature comes from RFC 8032, SUPERCOP's sign.input (as shipped in
// github.com/cloudflare/circl) or the ed25519-speccheck suite.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ron-kms/ron-kms/internal/testvectors"
)

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

// supercopVector is one line of SUPERCOP's sign.input:
// secret key (seed ‖ A) : A : message : signature ‖ message :
type supercopVector struct {
	line                    int
	seed, pub, message, sig []byte
}

var supercop struct {
	once    sync.Once
	vectors []supercopVector
	err     error
}

// supercopVectors returns the 1024 lines of SUPERCOP's Ed25519 sign.input
// (messages of 0 to 1023 bytes, line n has n-1), from circl's testdata.
func supercopVectors(tb testing.TB) []supercopVector {
	tb.Helper()
	supercop.once.Do(func() {
		dir := testvectors.ModuleDir(tb, testvectors.Circl)
		path := filepath.Join(dir, "sign", "ed25519", "testdata", "sign.input.txt.gz")
		supercop.vectors, supercop.err = readSupercop(path)
	})
	if supercop.err != nil {
		tb.Fatalf("SUPERCOP vectors: %v", supercop.err)
	}
	return supercop.vectors
}

func readSupercop(path string) ([]supercopVector, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var vs []supercopVector
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) != 5 || fields[4] != "" {
			return nil, fmt.Errorf("%s:%d: malformed line", path, n)
		}
		var raw [4][]byte
		for i := range raw {
			if raw[i], err = hex.DecodeString(fields[i]); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
		}
		sk, pub, msg, sm := raw[0], raw[1], raw[2], raw[3]
		if len(sk) != 64 || len(pub) != 32 || len(sm) != 64+len(msg) ||
			!bytes.Equal(sk[32:], pub) || !bytes.Equal(sm[64:], msg) {
			return nil, fmt.Errorf("%s:%d: inconsistent fields", path, n)
		}
		vs = append(vs, supercopVector{line: n, seed: sk[:32], pub: pub, message: msg, sig: sm[:64]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(vs) != 1024 {
		return nil, fmt.Errorf("%s: %d lines, want 1024", path, len(vs))
	}
	return vs, nil
}

// speccheckCase is one of the twelve ed25519-speccheck cases.
type speccheckCase struct {
	Message   string `json:"message"`
	PubKey    string `json:"pub_key"`
	Signature string `json:"signature"`
}

// speccheckZIP215 is the expected ZIP-215 verdict of each case, by index
// (testdata/README.md): 0–5, 9, 10 and 11 verify; 6, 7 and 8 do not.
var speccheckZIP215 = [12]bool{true, true, true, true, true, true, false, false, false, true, true, true}

// speccheckCases reads testdata/ed25519-speccheck-cases.json. A missing or
// malformed file fails the test: these cases pin the verification rules
// (SPEC §3).
func speccheckCases(tb testing.TB) []speccheckCase {
	tb.Helper()
	path := filepath.Join("testdata", "ed25519-speccheck-cases.json")
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("speccheck cases: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var cases []speccheckCase
	if err := dec.Decode(&cases); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	if len(cases) != len(speccheckZIP215) {
		tb.Fatalf("%s: %d cases, want %d", path, len(cases), len(speccheckZIP215))
	}
	return cases
}
