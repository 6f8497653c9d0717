// Package alg is the algorithm table of ron-kms: every algorithm the service
// knows, with its kind, its sizes and the operations it supports, as data.
//
// Adding an algorithm is adding one entry to the table (and its tests); the
// packages that implement algorithms (internal/sig, internal/wrap) key their
// own constructors by the names defined here. Code outside this package
// should ask the table (Lookup, Alg.Ops.Has) rather than switch on a name.
//
// The table is fixed at build time and is safe for concurrent use.
package alg

import (
	"strconv"
	"strings"
)

// Names of the algorithms in the table, as they appear in key identifiers
// and in the HTTP API (SPEC §3).
const (
	// Ed25519 is pure Ed25519 (RFC 8032), with ZIP-215 verification rules.
	Ed25519 = "ed25519"
)

// Kind is the family an algorithm belongs to.
type Kind uint8

const (
	// KindSignature algorithms sign and verify messages.
	KindSignature Kind = iota + 1
	// KindKEM algorithms wrap and unwrap data keys (HPKE).
	KindKEM
	// KindSymmetric algorithms encrypt and decrypt data.
	KindSymmetric
)

var kindNames = [...]string{
	KindSignature: "signature",
	KindKEM:       "kem",
	KindSymmetric: "symmetric",
}

// String returns the lower-case name of k ("signature", "kem", "symmetric"),
// or "Kind(N)" for a value outside the enumeration.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Ops is a set of operations, one bit each.
type Ops uint16

// The operations a key may support.
const (
	OpSign    Ops = 1 << iota // produce a signature
	OpVerify                  // check a signature
	OpWrap                    // seal a data key to the public key (HPKE)
	OpUnwrap                  // open a wrapped data key
	OpEncrypt                 // encrypt data (symmetric)
	OpDecrypt                 // decrypt data (symmetric)
)

var opNames = []struct {
	op   Ops
	name string
}{
	{OpSign, "sign"},
	{OpVerify, "verify"},
	{OpWrap, "wrap"},
	{OpUnwrap, "unwrap"},
	{OpEncrypt, "encrypt"},
	{OpDecrypt, "decrypt"},
}

// Has reports whether s contains every operation in op. Has(0) is true.
func (s Ops) Has(op Ops) bool { return s&op == op }

// String returns the operations in s joined by "|" (for example
// "sign|verify"), unknown bits as a hexadecimal remainder, and "none" for the
// empty set.
func (s Ops) String() string {
	if s == 0 {
		return "none"
	}
	var parts []string
	rest := s
	for _, o := range opNames {
		if s.Has(o.op) {
			parts = append(parts, o.name)
			rest &^= o.op
		}
	}
	if rest != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	return strings.Join(parts, "|")
}

// Alg describes one algorithm. Values returned by this package are shared
// entries of the table: they must not be modified.
type Alg struct {
	// Name is the algorithm's name in key identifiers and the API.
	Name string
	// Kind is the family of the algorithm.
	Kind Kind
	// SeedSize is the size in bytes of the secret seed a private key is
	// stored as (the 32-byte Ed25519 seed of RFC 8032, the ML-DSA ξ, ...).
	SeedSize int
	// PublicKeySize is the size in bytes of the encoded public key, or 0 for
	// algorithms without one (symmetric).
	PublicKeySize int
	// OutputSize is the size in bytes of the algorithm's fixed-size output:
	// the signature for KindSignature, the KEM encapsulation for KindKEM; 0
	// where the output size varies with the input.
	OutputSize int
	// Ops is the set of operations a key of this algorithm supports.
	Ops Ops
}

// table holds every algorithm, in the order All and Names report them.
var table = []*Alg{
	{
		Name:          Ed25519,
		Kind:          KindSignature,
		SeedSize:      32, // RFC 8032 §5.1.5
		PublicKeySize: 32,
		OutputSize:    64,
		Ops:           OpSign | OpVerify,
	},
}

var byName = func() map[string]*Alg {
	m := make(map[string]*Alg, len(table))
	for _, a := range table {
		if _, dup := m[a.Name]; dup {
			panic("alg: duplicate table entry " + a.Name)
		}
		m[a.Name] = a
	}
	return m
}()

// Lookup returns the table entry named name (names are case-sensitive and
// lower-case), and false if there is none. The result must not be modified.
func Lookup(name string) (*Alg, bool) {
	a, ok := byName[name]
	return a, ok
}

// All returns every table entry, in table order. The slice is the caller's;
// the entries must not be modified.
func All() []*Alg {
	return append([]*Alg(nil), table...)
}

// Names returns the name of every algorithm, in table order.
func Names() []string {
	names := make([]string, len(table))
	for i, a := range table {
		names[i] = a.Name
	}
	return names
}
