package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Origins of a key version (VersionInfo.Origin).
const (
	OriginGenerated = "generated"
	OriginImported  = "imported"
)

// ImportAlg is the algorithm of the server's import wrapping key, and
// ImportInfo the HPKE info a private key seed is sealed with (SPEC §4): KEM
// MLKEM768X25519, KDF HKDF-SHA256, AEAD AES-256-GCM.
const (
	ImportAlg  = "mlkem768-x25519"
	ImportInfo = "ron-kms/import/v1"
)

// WrappingKeyResponse is the answer to GET /v1/kms/import/wrapping-key.
type WrappingKeyResponse struct {
	Alg          string `json:"alg"`
	PublicKeyB64 string `json:"public_key_b64"`
}

// ImportKeyRequest is the body of POST /v1/kms/keys/import: exactly one of
// PublicKeyB64 (a verify-only key) and WrappedPrivateB64 (crypto/hpke.Seal
// output, enc ‖ ciphertext, of the 32-byte seed, sealed to the import
// wrapping key with info ImportInfo). The answer is a CreateKeyResponse.
type ImportKeyRequest struct {
	Tenant            string `json:"tenant"`
	Purpose           string `json:"purpose"`
	Alg               string `json:"alg"`
	PublicKeyB64      string `json:"public_key_b64,omitempty"`
	WrappedPrivateB64 string `json:"wrapped_private_b64,omitempty"`
	OpID              string `json:"op_id,omitempty"`
}

// AttestationAlg is the algorithm of the server's attestation key.
const AttestationAlg = "ed25519"

// AttestationResponse is the answer to GET /v1/kms/keys/{key}/attestation:
// the statement bytes (canonical JSON of an AttestationStatement) and the
// attestation key's Ed25519 signature over exactly those bytes.
type AttestationResponse struct {
	StatementB64 string `json:"statement_b64"`
	SignatureB64 string `json:"signature_b64"`
	Alg          string `json:"alg"`
}

// AttestationStatement is what the server attests about one key version.
// Its fields are declared in the sorted order of their names, so that
// Canonical writes canonical JSON.
type AttestationStatement struct {
	// Backend is the class of backend holding the private key: "software"
	// (AES-256-GCM sealing under a KEK in the server process), later
	// "pkcs11".
	Backend string `json:"backend"`
	// CreatedAt is the version's creation time, RFC 3339 UTC.
	CreatedAt string `json:"created_at"`
	// Exportable is always false: nothing returns a private key.
	Exportable bool `json:"exportable"`
	// KID names the key version.
	KID string `json:"kid"`
	// Origin is OriginGenerated or OriginImported.
	Origin string `json:"origin"`
	// PublicKeySHA256 is the lower-case hex SHA-256 of the version's public
	// key as KeyInfo gives it.
	PublicKeySHA256 string `json:"public_key_sha256"`
	// Server is the build version of the server that attested.
	Server string `json:"server"`
	// Version is the key version number.
	Version uint32 `json:"version"`
}

// ErrStatement reports statement bytes that are not one canonical JSON
// AttestationStatement.
var ErrStatement = errors.New("api: malformed attestation statement")

// Canonical returns the statement as canonical JSON: keys sorted, no
// insignificant space, no HTML escaping.
func (s AttestationStatement) Canonical() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic("api: encoding a statement: " + err.Error()) // plain types: cannot fail
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// ParseAttestationStatement decodes statement bytes strictly: unknown or
// missing fields, and any encoding other than the canonical one, are
// ErrStatement.
func ParseAttestationStatement(b []byte) (AttestationStatement, error) {
	var s AttestationStatement
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return AttestationStatement{}, fmt.Errorf("%w: %v", ErrStatement, err)
	}
	if !bytes.Equal(s.Canonical(), b) {
		return AttestationStatement{}, fmt.Errorf("%w: not in canonical form", ErrStatement)
	}
	return s, nil
}

// AuditKeyResponse is the answer to GET /v1/kms/audit/key: the server's
// audit and attestation public keys, 32-byte Ed25519 each.
type AuditKeyResponse struct {
	AuditPublicKeyB64       string `json:"audit_public_key_b64"`
	AttestationPublicKeyB64 string `json:"attestation_public_key_b64"`
}
