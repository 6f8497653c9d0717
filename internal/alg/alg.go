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

	// MLDSA44, MLDSA65 and MLDSA87 are ML-DSA (FIPS 204), pure (no
	// pre-hash), with an optional context string.
	MLDSA44 = "ml-dsa-44"
	MLDSA65 = "ml-dsa-65"
	MLDSA87 = "ml-dsa-87"

	// SLHDSASHA2128s is SLH-DSA-SHA2-128s (FIPS 205), pure (no pre-hash),
	// with an optional context string.
	SLHDSASHA2128s = "slh-dsa-sha2-128s"

	// MLDSA65Ed25519 is the composite MLDSA65-Ed25519-SHA512 of
	// draft-ietf-lamps-pq-composite-sigs (SPEC §3.1): one ML-DSA-65 and one
	// Ed25519 key that always sign together.
	MLDSA65Ed25519 = "mldsa65-ed25519"
)

// Names of the KEM algorithms used to wrap data keys (HPKE, RFC 9180;
// internal/wrap implements them).
const (
	// X25519 is DHKEM(X25519, HKDF-SHA256), HPKE KEM id 0x0020.
	X25519 = "x25519"
	// MLKEM768 is ML-KEM-768 (FIPS 203) as an HPKE KEM, id 0x0041
	// (draft-ietf-hpke-pq).
	MLKEM768 = "ml-kem-768"
	// MLKEM768X25519 is the hybrid MLKEM768-X25519 (X-Wing) HPKE KEM, id
	// 0x647a (draft-ietf-hpke-pq); the default for wrap keys.
	MLKEM768X25519 = "mlkem768-x25519"
)

// AES256GCM is AES-256 in GCM mode (NIST SP 800-38D) with random 96-bit
// nonces, for encrypt and decrypt (internal/symm).
const AES256GCM = "aes-256-gcm"

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
	// PostQuantum reports whether the algorithm is believed to resist a
	// quantum adversary (for a composite: whether any component does).
	PostQuantum bool
	// Components names, in wire order, the component algorithms of a
	// composite; nil for a single algorithm.
	Components []string
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
	{
		Name:          MLDSA44,
		Kind:          KindSignature,
		SeedSize:      32, // FIPS 204 ξ (Algorithm 6)
		PublicKeySize: 1312,
		OutputSize:    2420,
		Ops:           OpSign | OpVerify,
		PostQuantum:   true,
	},
	{
		Name:          MLDSA65,
		Kind:          KindSignature,
		SeedSize:      32,
		PublicKeySize: 1952,
		OutputSize:    3309,
		Ops:           OpSign | OpVerify,
		PostQuantum:   true,
	},
	{
		Name:          MLDSA87,
		Kind:          KindSignature,
		SeedSize:      32,
		PublicKeySize: 2592,
		OutputSize:    4627,
		Ops:           OpSign | OpVerify,
		PostQuantum:   true,
	},
	{
		Name:          SLHDSASHA2128s,
		Kind:          KindSignature,
		SeedSize:      48, // FIPS 205 SK.seed ‖ SK.prf ‖ PK.seed, n = 16 each (Algorithm 18)
		PublicKeySize: 32,
		OutputSize:    7856,
		Ops:           OpSign | OpVerify,
		PostQuantum:   true,
	},
	{
		Name:          MLDSA65Ed25519,
		Kind:          KindSignature,
		SeedSize:      32 + 32,   // ML-DSA-65 ξ ‖ Ed25519 seed
		PublicKeySize: 1952 + 32, // ML-DSA-65 pk ‖ Ed25519 pk
		OutputSize:    3309 + 64, // ML-DSA-65 sig ‖ Ed25519 sig
		Ops:           OpSign | OpVerify,
		PostQuantum:   true,
		Components:    []string{MLDSA65, Ed25519},
	},
	{
		Name:          X25519,
		Kind:          KindKEM,
		SeedSize:      32, // the X25519 scalar (RFC 7748), as crypto/ecdh takes it
		PublicKeySize: 32,
		OutputSize:    32, // enc: the ephemeral public key
		Ops:           OpWrap | OpUnwrap,
	},
	{
		Name:          MLKEM768,
		Kind:          KindKEM,
		SeedSize:      64, // FIPS 203 d ‖ z, crypto/mlkem.SeedSize
		PublicKeySize: 1184,
		OutputSize:    1088, // enc: the ML-KEM-768 ciphertext
		Ops:           OpWrap | OpUnwrap,
		PostQuantum:   true,
	},
	{
		Name:          MLKEM768X25519,
		Kind:          KindKEM,
		SeedSize:      32,        // the hybrid KEM secret, expanded with SHAKE256 (draft-ietf-hpke-pq)
		PublicKeySize: 1184 + 32, // ML-KEM-768 encapsulation key ‖ X25519 public key
		OutputSize:    1088 + 32, // ML-KEM-768 ciphertext ‖ X25519 ephemeral public key
		Ops:           OpWrap | OpUnwrap,
		PostQuantum:   true,
	},
	{
		Name:          AES256GCM,
		Kind:          KindSymmetric,
		SeedSize:      32, // the AES-256 key
		PublicKeySize: 0,
		OutputSize:    0, // grows with the plaintext
		Ops:           OpEncrypt | OpDecrypt,
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

// ComponentAlgs returns the table entries of a composite's components, in
// wire order; nil for a single algorithm.
func (a *Alg) ComponentAlgs() []*Alg {
	var out []*Alg
	for _, c := range a.Components {
		out = append(out, byName[c])
	}
	return out
}

// Names returns the name of every algorithm, in table order.
func Names() []string {
	names := make([]string, len(table))
	for i, a := range table {
		names[i] = a.Name
	}
	return names
}
