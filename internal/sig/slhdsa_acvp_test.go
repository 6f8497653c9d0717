package sig

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ron-kms/ron-kms/internal/testvectors"
)

// NIST ACVP vectors for SLH-DSA (FIPS 205), as shipped in circl's module
// (sign/slhdsa/testdata, from usnistgov/ACVP-Server v1.1.0.38), run through
// this package's Scheme, PrivateKey and PublicKey. Only the cases this
// package can express apply: parameter set SLH-DSA-SHA2-128s, and for
// sigGen and sigVer the external interface with pure signing. Pre-hash
// (HashSLH-DSA) and internal-interface cases, and other parameter sets, are
// counted and left out. The files hold every parameter set (40 MB
// compressed), so reading them is slow under the race detector: the tests
// run in parallel.

const slhdsaACVPParams = "SLH-DSA-SHA2-128s"

// acvpHeader is the envelope of every ACVP file.
type acvpHeader struct {
	VsID      int    `json:"vsId"`
	Algorithm string `json:"algorithm"`
	Mode      string `json:"mode"`
	Revision  string `json:"revision"`
	IsSample  bool   `json:"isSample"`
}

// acvpFile is a prompt or results file. The cases of a group stay raw until
// the group is known to apply: the files hold every parameter set, and
// decoding all of them is slow under the race detector.
type acvpFile struct {
	acvpHeader
	TestGroups []struct {
		TgID               int             `json:"tgId"`
		TestType           string          `json:"testType"`
		ParameterSet       string          `json:"parameterSet"`
		Deterministic      *bool           `json:"deterministic"`
		SignatureInterface string          `json:"signatureInterface"`
		PreHash            string          `json:"preHash"`
		Tests              json.RawMessage `json:"tests"`
	} `json:"testGroups"`
}

// acvpCase holds the fields of every prompt and result file; each file uses
// some of them.
type acvpCase struct {
	TcID int `json:"tcId"`
	// keyGen
	SkSeed string `json:"skSeed"`
	SkPrf  string `json:"skPrf"`
	PkSeed string `json:"pkSeed"`
	Sk     string `json:"sk"`
	Pk     string `json:"pk"`
	// sigGen, sigVer
	Message              string `json:"message"`
	Context              string `json:"context"`
	HashAlg              string `json:"hashAlg"`
	AdditionalRandomness string `json:"additionalRandomness"`
	Signature            string `json:"signature"`
	TestPassed           *bool  `json:"testPassed"`
}

// acvpCases reads a prompt and its results from circl's testdata and returns
// the applicable cases, each prompt case merged with its result, and the
// number of cases left out.
func acvpCases(t *testing.T, mode string) (cases []acvpCase, deterministic []bool, skipped int) {
	t.Helper()
	dir := filepath.Join(testvectors.ModuleDir(t, testvectors.Circl), "sign", "slhdsa", "testdata")
	prompt := readACVP(t, filepath.Join(dir, mode+"_prompt.json.gz"))
	results := readACVP(t, filepath.Join(dir, mode+"_results.json.gz"))
	if len(prompt.TestGroups) != len(results.TestGroups) {
		t.Fatalf("%s: %d prompt groups, %d result groups", mode, len(prompt.TestGroups), len(results.TestGroups))
	}
	for gi, g := range prompt.TestGroups {
		rg := results.TestGroups[gi]
		if rg.TgID != g.TgID {
			t.Fatalf("%s: group %d does not match its results", mode, g.TgID)
		}
		applies := g.ParameterSet == slhdsaACVPParams &&
			(mode == "keyGen" || g.SignatureInterface == "external" && g.PreHash == "pure")
		if !applies {
			var raw []json.RawMessage
			if err := json.Unmarshal(g.Tests, &raw); err != nil {
				t.Fatalf("%s: group %d: %v", mode, g.TgID, err)
			}
			skipped += len(raw)
			continue
		}
		if g.TestType != "AFT" {
			t.Fatalf("%s: group %d: unknown test type %q", mode, g.TgID, g.TestType)
		}
		tests, rtests := decodeACVPCases(t, g.Tests), decodeACVPCases(t, rg.Tests)
		if len(tests) != len(rtests) {
			t.Fatalf("%s: group %d: %d cases, %d results", mode, g.TgID, len(tests), len(rtests))
		}
		for ti, c := range tests {
			r := rtests[ti]
			if r.TcID != c.TcID {
				t.Fatalf("%s: tcId %d does not match its result", mode, c.TcID)
			}
			c.Sk, c.Pk, c.Signature, c.TestPassed = acvpFirst(c.Sk, r.Sk), acvpFirst(c.Pk, r.Pk), acvpFirst(c.Signature, r.Signature), r.TestPassed
			cases = append(cases, c)
			deterministic = append(deterministic, g.Deterministic != nil && *g.Deterministic)
		}
	}
	if len(cases) == 0 {
		t.Fatalf("%s: no %s cases in circl's ACVP vectors", mode, slhdsaACVPParams)
	}
	return cases, deterministic, skipped
}

// decodeACVPCases decodes the cases of one group strictly.
func decodeACVPCases(t *testing.T, raw json.RawMessage) []acvpCase {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var cases []acvpCase
	if err := dec.Decode(&cases); err != nil {
		t.Fatalf("ACVP cases: %v", err)
	}
	return cases
}

func acvpFirst(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func readACVP(t *testing.T, path string) *acvpFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("ACVP SLH-DSA vectors are required: %v", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	dec := json.NewDecoder(zr)
	dec.DisallowUnknownFields()
	v := new(acvpFile)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if v.Algorithm != "SLH-DSA" || v.Revision != "FIPS205" {
		t.Fatalf("%s: %s %s", path, v.Algorithm, v.Revision)
	}
	return v
}

// TestSLHDSAACVPKeyGen: the seed SK.seed ‖ SK.prf ‖ PK.seed gives the
// expected public key, and circl's key holds the expected private key.
func TestSLHDSAACVPKeyGen(t *testing.T) {
	t.Parallel()
	s := slhdsaFor(t)
	cases, _, skipped := acvpCases(t, "keyGen")
	for _, c := range cases {
		seed := mustHex(t, c.SkSeed+c.SkPrf+c.PkSeed)
		k, err := s.NewPrivateKey(seed)
		if err != nil {
			t.Fatalf("tcId %d: %v", c.TcID, err)
		}
		if !bytes.Equal(k.Public().Bytes(), mustHex(t, c.Pk)) {
			t.Errorf("tcId %d: public key differs", c.TcID)
		}
		if sk, err := k.(*slhdsaPrivateKey).priv.MarshalBinary(); err != nil || !bytes.Equal(sk, mustHex(t, c.Sk)) {
			t.Errorf("tcId %d: private key differs (%v)", c.TcID, err)
		}
	}
	t.Logf("%d keyGen cases, %d of other parameter sets left out", len(cases), skipped)
}

// TestSLHDSAACVPSigGen: signatures from the key loaded from the first 48
// bytes of sk, deterministic (opt_rand = PK.seed) or with the given
// additionalRandomness, equal the expected ones byte for byte.
func TestSLHDSAACVPSigGen(t *testing.T) {
	t.Parallel()
	s := slhdsaFor(t)
	cases, deterministic, skipped := acvpCases(t, "sigGen")
	for i, c := range cases {
		t.Run(fmt.Sprintf("tcId_%d", c.TcID), func(t *testing.T) {
			t.Parallel()
			sk := mustHex(t, c.Sk)
			k, err := s.NewPrivateKey(sk[:s.Alg().SeedSize])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.Public().Bytes(), sk[s.Alg().SeedSize-s.n:]) {
				t.Fatal("public key differs from the one in sk")
			}
			addRand := mustHex(t, c.AdditionalRandomness)
			if deterministic[i] {
				if len(addRand) != 0 {
					t.Fatal("deterministic case with additionalRandomness")
				}
				addRand = sk[2*s.n : 3*s.n] // PK.seed, FIPS 205 Algorithm 22
			}
			opts := &Options{Context: mustHex(t, c.Context)}
			sig, err := k.(*slhdsaPrivateKey).sign(mustHex(t, c.Message), opts, addRand)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sig, mustHex(t, c.Signature)) {
				t.Error("signature differs")
			}
		})
	}
	t.Logf("%d sigGen cases (%d deterministic), %d of other parameter sets or interfaces left out", len(cases), countTrue(deterministic), skipped)
}

// TestSLHDSAACVPSigVer: NewPublicKey and Verify give the expected verdict.
func TestSLHDSAACVPSigVer(t *testing.T) {
	t.Parallel()
	s := slhdsaFor(t)
	cases, _, skipped := acvpCases(t, "verify")
	var valid int
	for _, c := range cases {
		if c.TestPassed == nil {
			t.Fatalf("tcId %d: no verdict", c.TcID)
		}
		pk, err := s.NewPublicKey(mustHex(t, c.Pk))
		if err != nil {
			t.Fatalf("tcId %d: %v", c.TcID, err)
		}
		err = pk.Verify(mustHex(t, c.Message), mustHex(t, c.Signature), &Options{Context: mustHex(t, c.Context)})
		switch {
		case *c.TestPassed && err != nil:
			t.Errorf("tcId %d: %v, want valid", c.TcID, err)
		case !*c.TestPassed && !errors.Is(err, ErrInvalidSignature):
			t.Errorf("tcId %d: %v, want ErrInvalidSignature", c.TcID, err)
		case *c.TestPassed:
			valid++
		}
	}
	t.Logf("%d sigVer cases (%d valid), %d of other parameter sets or interfaces left out", len(cases), valid, skipped)
}

func countTrue(bs []bool) (n int) {
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
