package alg_test

import (
	"reflect"
	"regexp"
	"slices"
	"testing"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// nameSyntax is the alg segment of a kid (SPEC §2 allows only table names;
// this keeps every name usable as a path segment).
var nameSyntax = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func TestTableInvariants(t *testing.T) {
	all := alg.All()
	if len(all) == 0 {
		t.Fatal("empty table")
	}
	names := alg.Names()
	if len(names) != len(all) {
		t.Fatalf("Names() has %d entries, All() %d", len(names), len(all))
	}
	allowed := map[alg.Kind]alg.Ops{
		alg.KindSignature: alg.OpSign | alg.OpVerify,
		alg.KindKEM:       alg.OpWrap | alg.OpUnwrap,
		alg.KindSymmetric: alg.OpEncrypt | alg.OpDecrypt,
	}
	seen := map[string]bool{}
	for i, a := range all {
		if names[i] != a.Name {
			t.Errorf("Names()[%d] = %q, All()[%d].Name = %q", i, names[i], i, a.Name)
		}
		if seen[a.Name] {
			t.Errorf("duplicate name %q", a.Name)
		}
		seen[a.Name] = true
		if !nameSyntax.MatchString(a.Name) {
			t.Errorf("%q: bad name syntax", a.Name)
		}
		got, ok := alg.Lookup(a.Name)
		if !ok || got != a {
			t.Errorf("Lookup(%q) = %v, %v; want the table entry", a.Name, got, ok)
		}
		ops, known := allowed[a.Kind]
		if !known {
			t.Errorf("%q: unknown kind %v", a.Name, a.Kind)
			continue
		}
		if a.Ops == 0 || !ops.Has(a.Ops) {
			t.Errorf("%q: ops %v do not fit kind %v (allowed %v)", a.Name, a.Ops, a.Kind, ops)
		}
		if a.SeedSize <= 0 {
			t.Errorf("%q: seed size %d", a.Name, a.SeedSize)
		}
		if a.Kind != alg.KindSymmetric && (a.PublicKeySize <= 0 || a.OutputSize <= 0) {
			t.Errorf("%q: public key size %d, output size %d", a.Name, a.PublicKeySize, a.OutputSize)
		}
	}
}

func TestEd25519Entry(t *testing.T) {
	a, ok := alg.Lookup("ed25519")
	if !ok {
		t.Fatal("ed25519 missing")
	}
	// RFC 8032 §5.1: 32-byte secret key, 32-byte public key, 64-byte signature.
	want := alg.Alg{Name: "ed25519", Kind: alg.KindSignature, SeedSize: 32, PublicKeySize: 32, OutputSize: 64, Ops: alg.OpSign | alg.OpVerify}
	if !reflect.DeepEqual(*a, want) {
		t.Errorf("ed25519 = %+v, want %+v", *a, want)
	}
	if a.Ops.Has(alg.OpWrap) || !a.Ops.Has(alg.OpSign|alg.OpVerify) {
		t.Errorf("ed25519 ops = %v", a.Ops)
	}
}

func TestLookupUnknown(t *testing.T) {
	for _, name := range []string{"", "ED25519", "ed25519 ", "ed448", "rsa"} {
		if a, ok := alg.Lookup(name); ok || a != nil {
			t.Errorf("Lookup(%q) = %v, %v", name, a, ok)
		}
	}
}

func TestAllIsACopy(t *testing.T) {
	all := alg.All()
	all[0] = nil
	if alg.All()[0] == nil {
		t.Error("All() exposes the table's slice")
	}
	if !slices.Equal(alg.Names(), alg.Names()) {
		t.Error("Names() not stable")
	}
}

func TestStrings(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{alg.KindSignature.String(), "signature"},
		{alg.KindKEM.String(), "kem"},
		{alg.KindSymmetric.String(), "symmetric"},
		{alg.Kind(0).String(), "Kind(0)"},
		{alg.Kind(9).String(), "Kind(9)"},
		{(alg.OpSign | alg.OpVerify).String(), "sign|verify"},
		{alg.Ops(0).String(), "none"},
		{(alg.OpDecrypt | 1<<12).String(), "decrypt|0x1000"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
