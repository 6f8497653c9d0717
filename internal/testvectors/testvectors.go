// Package testvectors finds external known-answer vectors for tests. Vector
// sets are fetched as pinned module versions through the Go module proxy
// with `go mod download -json`, as Go's own crypto tests do, rather than
// imported (some embed hundreds of megabytes). A failed fetch fails the
// test: vectors are never silently skipped.
package testvectors

import (
	"encoding/json"
	"os/exec"
	"sync"
	"testing"
)

// Pinned vector modules.
const (
	// Circl carries NIST ACVP files for ML-DSA, ML-KEM and SLH-DSA and the
	// SUPERCOP Ed25519 sign.input lines.
	Circl = "github.com/cloudflare/circl@v1.6.5"
	// Wycheproof is the C2SP Wycheproof test vectors.
	Wycheproof = "github.com/c2sp/wycheproof@v0.0.0-20260902155932-3fa63dd0344a"
	// Ed25519Vectors is the edge-case Ed25519 vector set of C2SP's CCTV
	// (ed25519vectors.json: small-order and non-canonical A and R, with
	// flags), at the version Go's crypto/ed25519 tests pin.
	Ed25519Vectors = "filippo.io/mostly-harmless/ed25519vectors@v0.0.0-20210322192420-30a2d7243a94"
)

var (
	mu   sync.Mutex
	dirs = map[string]string{}
)

// ModuleDir returns the module cache directory of module@version,
// downloading it if needed. It fails tb if the module cannot be had.
func ModuleDir(tb testing.TB, modVersion string) string {
	tb.Helper()
	mu.Lock()
	defer mu.Unlock()
	if d, ok := dirs[modVersion]; ok {
		return d
	}
	cmd := exec.Command("go", "mod", "download", "-json", modVersion)
	out, err := cmd.Output()
	var m struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &m); jerr != nil || m.Dir == "" || err != nil {
		tb.Fatalf("testvectors: go mod download %s: %v %s (%s)", modVersion, err, m.Error, out)
	}
	dirs[modVersion] = m.Dir
	return m.Dir
}
