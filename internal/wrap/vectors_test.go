package wrap

// Known-answer tests from external HPKE vectors, run through this package's
// key loading (Scheme.NewPrivateKey from the vector's skRm, and from the key
// crypto/hpke derives from ikmR) and its receiving context (privateKey.recipient,
// which PrivateKey.Open is built on):
//
//   - Go's own crypto/hpke/testdata/rfc9180.json and hpke-pq.json, from the
//     GOROOT of the toolchain the test runs with (`go env GOROOT`);
//   - the CFRG RFC 9180 test-vectors.json (every encryption spelled out), as
//     pinned in github.com/cloudflare/circl's hpke/testdata.
//
// Nothing here computes an expected value with the code under test.

import (
	"bytes"
	"compress/gzip"
	"crypto/hpke"
	"crypto/sha3"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/internal/alg"
	"github.com/ron-kms/ron-kms/internal/testvectors"
)

// hexBytes is a hex string in a vector file.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// hpkeVector is one test vector, in the layout shared by the three files.
// Every field any of them has is declared, so that decoding can refuse
// fields this test does not know.
type hpkeVector struct {
	Mode   uint8  `json:"mode"`
	KEMID  uint16 `json:"kem_id"`
	KDFID  uint16 `json:"kdf_id"`
	AEADID uint16 `json:"aead_id"`

	Info hexBytes `json:"info"`
	IkmR hexBytes `json:"ikmR"`
	SkRm hexBytes `json:"skRm"`
	PkRm hexBytes `json:"pkRm"`
	IkmE hexBytes `json:"ikmE"`
	SkEm hexBytes `json:"skEm"`
	PkEm hexBytes `json:"pkEm"`
	Enc  hexBytes `json:"enc"`

	Encryptions []struct {
		AAD   hexBytes `json:"aad"`
		CT    hexBytes `json:"ct"`
		Nonce hexBytes `json:"nonce"`
		PT    hexBytes `json:"pt"`
	} `json:"encryptions"`
	Exports []struct {
		Context hexBytes `json:"exporter_context"`
		L       int      `json:"L"`
		Value   hexBytes `json:"exported_value"`
	} `json:"exports"`
	// rfc9180.json replaces the lists by a SHAKE128 digest of 1,000
	// pseudo-random encryptions and exports.
	EncryptionsAccumulated hexBytes `json:"encryptions_accumulated"`
	ExportsAccumulated     hexBytes `json:"exports_accumulated"`

	// Intermediate values, not reachable through the API; other modes' keys.
	SharedSecret       hexBytes `json:"shared_secret"`
	KeyScheduleContext hexBytes `json:"key_schedule_context"`
	Secret             hexBytes `json:"secret"`
	Key                hexBytes `json:"key"`
	BaseNonce          hexBytes `json:"base_nonce"`
	ExporterSecret     hexBytes `json:"exporter_secret"`
	SuiteID            hexBytes `json:"suite_id"`
	PSK                hexBytes `json:"psk"`
	PSKID              hexBytes `json:"psk_id"`
	IkmS               hexBytes `json:"ikmS"`
	SkSm               hexBytes `json:"skSm"`
	PkSm               hexBytes `json:"pkSm"`
}

func (v *hpkeVector) String() string {
	return fmt.Sprintf("mode %d kem %04x kdf %04x aead %04x", v.Mode, v.KEMID, v.KDFID, v.AEADID)
}

// decodeVectors decodes the vectors of the KEMs this package implements
// (selected by kem_id first, which keeps the large CFRG file cheap under the
// race detector), refusing fields this test does not know.
func decodeVectors(tb testing.TB, r io.Reader, what string) []hpkeVector {
	tb.Helper()
	var raw []json.RawMessage
	if err := json.NewDecoder(r).Decode(&raw); err != nil {
		tb.Fatalf("%s: %v", what, err)
	}
	if len(raw) == 0 {
		tb.Fatalf("%s: no vectors", what)
	}
	var vs []hpkeVector
	for i, m := range raw {
		var id struct {
			KEMID uint16 `json:"kem_id"`
		}
		if err := json.Unmarshal(m, &id); err != nil {
			tb.Fatalf("%s: vector %d: %v", what, i, err)
		}
		if _, ours := byKEMID[id.KEMID]; !ours {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(m))
		dec.DisallowUnknownFields()
		var v hpkeVector
		if err := dec.Decode(&v); err != nil {
			tb.Fatalf("%s: vector %d: %v", what, i, err)
		}
		vs = append(vs, v)
	}
	return vs
}

// goVectors reads crypto/hpke/testdata/<file> from the GOROOT of the
// toolchain that built the test. A missing file fails the test.
func goVectors(tb testing.TB, file string) []hpkeVector {
	tb.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		tb.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	// The vectors must be those of the standard library linked in.
	if ver, err := os.ReadFile(filepath.Join(goroot, "VERSION")); err != nil ||
		strings.SplitN(string(ver), "\n", 2)[0] != runtime.Version() {
		tb.Fatalf("GOROOT %s is not the toolchain of this test (%s): %v", goroot, runtime.Version(), err)
	}
	path := filepath.Join(goroot, "src", "crypto", "hpke", "testdata", file)
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	return decodeVectors(tb, f, path)
}

// cfrgVectors reads the CFRG RFC 9180 test-vectors.json shipped in circl.
func cfrgVectors(tb testing.TB) []hpkeVector {
	tb.Helper()
	path := filepath.Join(testvectors.ModuleDir(tb, testvectors.Circl), "hpke", "testdata", "vectors_rfc9180_5f503c5.json.gz")
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return decodeVectors(tb, zr, path)
}

// unsupportedKDFs are KDFs of hpke-pq.json that crypto/hpke does not have.
var unsupportedKDFs = map[uint16]string{0x0012: "TurboSHAKE128", 0x0013: "TurboSHAKE256"}

// ourKEM returns the algorithm name of the vector's KEM, or "" for a KEM
// this package does not implement.
func ourKEM(v *hpkeVector) string {
	if s, ok := byKEMID[v.KEMID]; ok {
		return s.a.Name
	}
	return ""
}

// vectorSuite returns the vector's KDF and AEAD, or ok false (after logging
// why) if crypto/hpke does not implement the KDF. Any other gap fails t.
func vectorSuite(t *testing.T, v *hpkeVector) (hpke.KDF, hpke.AEAD, bool) {
	kdf, err := hpke.NewKDF(v.KDFID)
	if err != nil {
		if name, known := unsupportedKDFs[v.KDFID]; known {
			t.Logf("%v: KDF %s is not in crypto/hpke; skipped", v, name)
			return nil, nil, false
		}
		t.Fatalf("%v: %v", v, err)
	}
	aead, err := hpke.NewAEAD(v.AEADID)
	if err != nil {
		t.Fatalf("%v: %v", v, err)
	}
	return kdf, aead, true
}

// loadVectorKey loads the vector's recipient key through our scheme, from
// skRm and from ikmR, checks both against pkRm, and returns the first.
func loadVectorKey(t *testing.T, v *hpkeVector) *privateKey {
	t.Helper()
	name := ourKEM(v)
	s := mustScheme(t, name)
	k, err := s.NewPrivateKey(v.SkRm)
	if err != nil {
		t.Fatalf("%v: NewPrivateKey(skRm): %v", v, err)
	}
	if got := k.Public().Bytes(); !bytes.Equal(got, v.PkRm) {
		t.Fatalf("%v: public key from skRm %x, want pkRm %x", v, got, v.PkRm)
	}
	// DeriveKeyPair(ikmR) is crypto/hpke's; its serialization must be a seed
	// our scheme loads to the same key (and, but for X25519 clamping, skRm).
	dk, err := schemes[name].kem.DeriveKeyPair(v.IkmR)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := dk.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if name != alg.X25519 && !bytes.Equal(seed, v.SkRm) {
		t.Errorf("%v: DeriveKeyPair(ikmR) = %x, want skRm", v, seed)
	}
	k2, err := s.NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	if got := k2.Public().Bytes(); !bytes.Equal(got, v.PkRm) {
		t.Errorf("%v: public key from ikmR %x, want pkRm %x", v, got, v.PkRm)
	}
	pub, err := s.NewPublicKey(v.PkRm)
	if err != nil || !bytes.Equal(pub.Bytes(), v.PkRm) {
		t.Errorf("%v: NewPublicKey(pkRm): %v", v, err)
	}
	return k.(*privateKey)
}

// checkVector runs one base-mode vector through our recipient: every listed
// encryption is opened in order (sequence numbers 0, 1, ...) and every
// listed or accumulated export is compared. It returns the number of
// encryptions opened.
func checkVector(t *testing.T, v *hpkeVector, kdf hpke.KDF, aead hpke.AEAD) int {
	t.Helper()
	k := loadVectorKey(t, v)
	r, err := k.recipient(kdf, aead, v.Enc, v.Info)
	if err != nil {
		t.Fatalf("%v: recipient: %v", v, err)
	}
	for i, e := range v.Encryptions {
		pt, err := r.Open(e.AAD, e.CT)
		if err != nil {
			t.Fatalf("%v: encryption %d: %v", v, i, err)
		}
		if !bytes.Equal(pt, e.PT) {
			t.Fatalf("%v: encryption %d: plaintext %x, want %x", v, i, pt, e.PT)
		}
	}
	for i, e := range v.Exports {
		got, err := r.Export(string(e.Context), e.L)
		if err != nil || !bytes.Equal(got, e.Value) {
			t.Errorf("%v: export %d = %x, %v; want %x", v, i, got, err, e.Value)
		}
	}
	if len(v.ExportsAccumulated) != 0 {
		// 1,000 exports of lengths 0..999 with contexts drawn from SHAKE128
		// (a length byte, then that many bytes), all written to a second
		// SHAKE128 whose first 16 bytes are the expected value.
		src, sink := sha3.NewSHAKE128(), sha3.NewSHAKE128()
		for l := range 1000 {
			var n [1]byte
			src.Read(n[:])
			ctx := make([]byte, n[0])
			src.Read(ctx)
			val, err := r.Export(string(ctx), l)
			if err != nil {
				t.Fatal(err)
			}
			sink.Write(val)
		}
		got := make([]byte, 16)
		sink.Read(got)
		if !bytes.Equal(got, v.ExportsAccumulated) {
			t.Errorf("%v: accumulated exports %x, want %x", v, got, v.ExportsAccumulated)
		}
	}
	// The first encryption again through the exported one-shot Open, when
	// the vector's suite is ours.
	if kdf.ID() == suiteKDF.ID() && aead.ID() == suiteAEAD.ID() && len(v.Encryptions) > 0 {
		e := v.Encryptions[0]
		pt, err := k.Open(v.Enc, v.Info, e.AAD, e.CT)
		if err != nil || !bytes.Equal(pt, e.PT) {
			t.Errorf("%v: Open = %x, %v; want %x", v, pt, err, e.PT)
		}
		// And a wrong aad or info does not open.
		if pt, err := k.Open(v.Enc, v.Info, append(bytes.Clone(e.AAD), 0), e.CT); err != ErrOpen || pt != nil {
			t.Errorf("%v: Open with a wrong aad = %x, %v", v, pt, err)
		}
	}
	return len(v.Encryptions)
}

// runVectors checks every base-mode vector of our KEMs in vs and returns, by
// KEM name, the number of vectors and encryptions checked, and the number of
// vectors of our exact suite.
func runVectors(t *testing.T, vs []hpkeVector) (vectors, encryptions, ourSuite map[string]int) {
	vectors, encryptions, ourSuite = map[string]int{}, map[string]int{}, map[string]int{}
	for i := range vs {
		v := &vs[i]
		name := ourKEM(v)
		if name == "" || v.Mode != 0 {
			continue // other KEMs; PSK and auth modes, which wrap does not use
		}
		kdf, aead, ok := vectorSuite(t, v)
		if !ok {
			continue
		}
		t.Run(v.String(), func(t *testing.T) {
			encryptions[name] += checkVector(t, v, kdf, aead)
		})
		vectors[name]++
		if kdf.ID() == suiteKDF.ID() && aead.ID() == suiteAEAD.ID() {
			ourSuite[name]++
		}
	}
	t.Logf("vectors %v, encryptions opened %v, of the HKDF-SHA256/AES-256-GCM suite %v", vectors, encryptions, ourSuite)
	return vectors, encryptions, ourSuite
}

func TestGoRFC9180Vectors(t *testing.T) {
	vectors, _, ourSuite := runVectors(t, goVectors(t, "rfc9180.json"))
	// DHKEM(X25519) with HKDF-SHA256 and HKDF-SHA512, each with AES-128-GCM,
	// AES-256-GCM, ChaCha20Poly1305 and export-only. The file lists only
	// accumulated encryptions, which a recipient alone cannot recompute: it
	// checks the key schedule through the accumulated exports.
	if vectors[alg.X25519] != 8 || ourSuite[alg.X25519] != 1 {
		t.Errorf("x25519: %d vectors, %d of our suite; want 8 and 1", vectors[alg.X25519], ourSuite[alg.X25519])
	}
}

func TestGoPQVectors(t *testing.T) {
	vectors, encryptions, _ := runVectors(t, goVectors(t, "hpke-pq.json"))
	// ML-KEM-768 with HKDF-SHA256/AES-128-GCM; MLKEM768-X25519 with
	// HKDF-SHA256/ChaCha20Poly1305 and SHAKE256/ChaCha20Poly1305; none with
	// our exact suite. The X25519 vector uses TurboSHAKE and is skipped.
	if vectors[alg.MLKEM768] != 1 || vectors[alg.MLKEM768X25519] != 2 {
		t.Errorf("vectors %v; want 1 ml-kem-768 and 2 mlkem768-x25519", vectors)
	}
	if encryptions[alg.MLKEM768] != 10 || encryptions[alg.MLKEM768X25519] != 20 {
		t.Errorf("encryptions %v", encryptions)
	}
}

func TestCFRGVectors(t *testing.T) {
	vectors, encryptions, ourSuite := runVectors(t, cfrgVectors(t))
	// DHKEM(X25519) base mode: HKDF-SHA256 and HKDF-SHA512, each with three
	// AEADs and export-only; 257 encryptions per AEAD vector.
	if vectors[alg.X25519] != 8 || ourSuite[alg.X25519] != 1 || encryptions[alg.X25519] != 6*257 {
		t.Errorf("x25519: %d vectors, %d of our suite, %d encryptions", vectors[alg.X25519], ourSuite[alg.X25519], encryptions[alg.X25519])
	}
}
