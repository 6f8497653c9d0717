package sig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ron-kms/ron-kms/internal/testvectors"
)

// The Wycheproof ML-DSA vectors (testvectors_v1/mldsa_{44,65,87}_*.json, see
// doc/mldsa.md there), run through this package's own Scheme, PrivateKey and
// PublicKey with each of the two implementations. The *_sign_noseed files
// are not used: they give semi-expanded private keys, which this package
// never loads (keys are seeds).

// mldsaWycheproofFiles maps each parameter set to its file prefix.
var mldsaWycheproofFiles = map[string]string{
	"ml-dsa-44": "mldsa_44",
	"ml-dsa-65": "mldsa_65",
	"ml-dsa-87": "mldsa_87",
}

// mldsaWycheproofFile is the part of a Wycheproof file common to every schema.
type mldsaWycheproofFile[G any] struct {
	Algorithm     string                     `json:"algorithm"`
	Schema        string                     `json:"schema"`
	NumberOfTests int                        `json:"numberOfTests"`
	Header        []string                   `json:"header"`
	Notes         map[string]json.RawMessage `json:"notes"`
	TestGroups    []G                        `json:"testGroups"`
}

// mldsaSignGroup is a group of mldsa_sign_seed_schema.json.
type mldsaSignGroup struct {
	Type            string          `json:"type"`
	PrivateSeed     string          `json:"privateSeed"`
	PrivateKeyPkcs8 string          `json:"privateKeyPkcs8"`
	PublicKey       *string         `json:"publicKey"` // null if the seed is invalid
	Source          json.RawMessage `json:"source"`
	Tests           []mldsaSignCase `json:"tests"`
}

type mldsaSignCase struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Msg     *string  `json:"msg"` // absent for external-μ cases
	Mu      *string  `json:"mu"`
	Ctx     *string  `json:"ctx"`
	Rnd     *string  `json:"rnd"` // present for hedged cases
	Sig     string   `json:"sig"`
	Result  string   `json:"result"`
}

// mldsaVerifyGroup is a group of mldsa_verify_schema.json.
type mldsaVerifyGroup struct {
	Type         string            `json:"type"`
	PublicKey    string            `json:"publicKey"`
	PublicKeyDer string            `json:"publicKeyDer"`
	Source       json.RawMessage   `json:"source"`
	Tests        []mldsaVerifyCase `json:"tests"`
}

type mldsaVerifyCase struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Msg     string   `json:"msg"`
	Ctx     *string  `json:"ctx"`
	Sig     string   `json:"sig"`
	Result  string   `json:"result"`
}

// Every flag the tests know. A flag not listed here fails the test: it may
// ask for a check the tests do not make.
var (
	mldsaSignFlags = map[string]bool{
		"ValidSignature":            true,
		"ManySteps":                 true, // informative: many rejection-loop iterations
		"BoundaryCondition":         true, // informative
		"Randomized":                true, // hedged with the vector's rnd: checked by verification
		"Internal":                  true, // external μ only: not applicable (pure ML-DSA)
		"IncorrectPrivateKeyLength": true, // must fail with ErrKeySize
		"InvalidContext":            true, // must fail with ErrUnsupported
	}
	mldsaVerifyFlags = map[string]bool{
		"ValidSignature":           true,
		"ManySteps":                true,
		"BoundaryCondition":        true,
		"ZeroPublicKey":            true,
		"InvalidPrivateKey":        true,
		"InvalidSignature":         true,
		"ModifiedSignature":        true,
		"InfinityNormViolation":    true,
		"InvalidHintsEncoding":     true,
		"MissingReduction":         true,
		"IncorrectSignatureLength": true,
		"IncorrectPublicKeyLength": true, // must fail with ErrKeySize
		"InvalidContext":           true, // must fail with ErrUnsupported
	}
)

// readMLDSAWycheproof decodes one file of the pinned Wycheproof module strictly:
// a field the types above do not declare fails the test.
func readMLDSAWycheproof[G any](tb testing.TB, name, schema string) *mldsaWycheproofFile[G] {
	tb.Helper()
	dir := testvectors.ModuleDir(tb, testvectors.Wycheproof)
	path := filepath.Join(dir, "testvectors_v1", name)
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("Wycheproof ML-DSA vectors are required: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	f := new(mldsaWycheproofFile[G])
	if err := dec.Decode(f); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	if f.Schema != schema || len(f.TestGroups) == 0 {
		tb.Fatalf("%s: schema %q with %d groups, want %q", name, f.Schema, len(f.TestGroups), schema)
	}
	return f
}

// mldsaCheckFlags fails the test for a flag the tests do not know and for a
// result other than valid or invalid.
func mldsaCheckFlags(t *testing.T, known map[string]bool, tcID int, flags []string, result string) bool {
	t.Helper()
	ok := result == "valid" || result == "invalid"
	if !ok {
		t.Errorf("tcId %d: unknown result %q", tcID, result)
	}
	for _, f := range flags {
		if !known[f] {
			t.Errorf("tcId %d: unknown flag %q", tcID, f)
			ok = false
		}
	}
	return ok
}

// TestMLDSAWycheproofSign: key generation from the seed (the public key is
// compared) and deterministic signing (the signature is compared byte for
// byte), through NewPrivateKey and the sign hook; hedged cases, whose rnd
// cannot be given to either library, check that the vector's signature and
// a fresh hedged one verify.
func TestMLDSAWycheproofSign(t *testing.T) {
	for _, name := range mldsaNames {
		file := mldsaWycheproofFiles[name] + "_sign_seed_test.json"
		f := readMLDSAWycheproof[mldsaSignGroup](t, file, "mldsa_sign_seed_schema.json")
		s := mldsaFor(t, name)
		for _, impl := range mldsaBoth(s) {
			t.Run(file+"/"+impl.name(), func(t *testing.T) {
				var n struct{ total, det, hedged, invalid, mu int }
				for _, g := range f.TestGroups {
					for _, c := range g.Tests {
						n.total++
						if !mldsaCheckFlags(t, mldsaSignFlags, c.TcID, c.Flags, c.Result) {
							continue
						}
						switch err := mldsaWycheproofSignCase(t, s, impl, &g, &c); {
						case errors.Is(err, errMLDSANotApplicable):
							n.mu++
						case err != nil:
							t.Errorf("tcId %d (%s, %v): %v", c.TcID, c.Comment, c.Flags, err)
						case c.Result == "invalid":
							n.invalid++
						case c.Rnd != nil:
							n.hedged++
						default:
							n.det++
						}
					}
				}
				if n.total != f.NumberOfTests {
					t.Errorf("%d cases, the file says %d", n.total, f.NumberOfTests)
				}
				t.Logf("%d cases: %d deterministic signatures compared, %d hedged verified, %d invalid refused, %d external-μ not applicable",
					n.total, n.det, n.hedged, n.invalid, n.mu)
			})
		}
	}
}

var errMLDSANotApplicable = errors.New("not applicable")

func mldsaWycheproofSignCase(t *testing.T, s *mldsaScheme, impl mldsaImpl, g *mldsaSignGroup, c *mldsaSignCase) error {
	valid := c.Result == "valid"
	k, err := s.newPrivateKey(impl, mustHex(t, g.PrivateSeed))
	if err != nil {
		if !valid && slices.Contains(c.Flags, "IncorrectPrivateKeyLength") && errors.Is(err, ErrKeySize) {
			return nil
		}
		return fmt.Errorf("NewPrivateKey: %w", err)
	}
	if g.PublicKey == nil {
		return errors.New("no public key given for a seed that loads")
	}
	if !bytes.Equal(k.Public().Bytes(), mustHex(t, *g.PublicKey)) {
		return errors.New("public key differs")
	}
	if c.Msg == nil {
		if !slices.Contains(c.Flags, "Internal") {
			return errors.New("no message and not an Internal case")
		}
		return errMLDSANotApplicable
	}
	msg, want := mustHex(t, *c.Msg), mustHex(t, c.Sig)
	opts := &Options{}
	if c.Ctx != nil {
		opts.Context = mustHex(t, *c.Ctx)
	}
	if c.Rnd != nil {
		if !valid || !slices.Contains(c.Flags, "Randomized") {
			return errors.New("rnd given: only valid Randomized cases are expected")
		}
		if err := k.Public().Verify(msg, want, opts); err != nil {
			return fmt.Errorf("the vector's hedged signature: %w", err)
		}
		sig, err := k.Sign(msg, opts)
		if err != nil {
			return err
		}
		return k.Public().Verify(msg, sig, opts)
	}
	sig, err := k.sign(msg, opts, true)
	if !valid {
		if slices.Contains(c.Flags, "InvalidContext") && errors.Is(err, ErrUnsupported) {
			return nil
		}
		return fmt.Errorf("sign = %v, want an error for an invalid case", err)
	}
	if err != nil {
		return err
	}
	if !bytes.Equal(sig, want) {
		return errors.New("deterministic signature differs")
	}
	return k.Public().Verify(msg, sig, opts)
}

// TestMLDSAWycheproofVerify: every verify case through NewPublicKey and
// PublicKey.Verify.
func TestMLDSAWycheproofVerify(t *testing.T) {
	for _, name := range mldsaNames {
		file := mldsaWycheproofFiles[name] + "_verify_test.json"
		f := readMLDSAWycheproof[mldsaVerifyGroup](t, file, "mldsa_verify_schema.json")
		s := mldsaFor(t, name)
		for _, impl := range mldsaBoth(s) {
			t.Run(file+"/"+impl.name(), func(t *testing.T) {
				var total, valid, invalid int
				for _, g := range f.TestGroups {
					for _, c := range g.Tests {
						total++
						if !mldsaCheckFlags(t, mldsaVerifyFlags, c.TcID, c.Flags, c.Result) {
							continue
						}
						if err := mldsaWycheproofVerifyCase(t, s, impl, &g, &c); err != nil {
							t.Errorf("tcId %d (%s, %v): %v", c.TcID, c.Comment, c.Flags, err)
						} else if c.Result == "valid" {
							valid++
						} else {
							invalid++
						}
					}
				}
				if total != f.NumberOfTests {
					t.Errorf("%d cases, the file says %d", total, f.NumberOfTests)
				}
				t.Logf("%d cases: %d valid accepted, %d invalid refused", total, valid, invalid)
			})
		}
	}
}

func mldsaWycheproofVerifyCase(t *testing.T, s *mldsaScheme, impl mldsaImpl, g *mldsaVerifyGroup, c *mldsaVerifyCase) error {
	valid := c.Result == "valid"
	pk, err := s.newPublicKey(impl, mustHex(t, g.PublicKey))
	if err != nil {
		if !valid && slices.Contains(c.Flags, "IncorrectPublicKeyLength") && errors.Is(err, ErrKeySize) {
			return nil
		}
		return fmt.Errorf("NewPublicKey: %w", err)
	}
	if !bytes.Equal(pk.Bytes(), mustHex(t, g.PublicKey)) {
		return errors.New("public key does not round-trip")
	}
	opts := &Options{}
	if c.Ctx != nil {
		opts.Context = mustHex(t, *c.Ctx)
	}
	err = pk.Verify(mustHex(t, c.Msg), mustHex(t, c.Sig), opts)
	switch {
	case valid && err != nil:
		return fmt.Errorf("Verify = %w, want valid", err)
	case valid:
		return nil
	case errors.Is(err, ErrInvalidSignature):
		return nil
	case slices.Contains(c.Flags, "InvalidContext") && errors.Is(err, ErrUnsupported):
		return nil
	default:
		return fmt.Errorf("Verify = %v, want ErrInvalidSignature", err)
	}
}
