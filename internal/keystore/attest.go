package keystore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ron-kms/ron-kms/internal/alg"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/sig"
)

// Names of the server's own Ed25519 keys among the server secrets. Each is
// a 32-byte RFC 8032 seed, sealed like any key, made on first use.
const (
	attestationSecret = "attestation-key"
	auditSecret       = "audit-key"
)

// Backend classes named in attestation statements.
const (
	// BackendSoftware: private keys are sealed at rest with AES-256-GCM under
	// a key-encryption key held in this process (seal.AESGCM).
	BackendSoftware = "software"
	// BackendUnknown: a Sealer that does not say what it is.
	BackendUnknown = "unknown"
)

// BackendClasser is implemented by a seal.Sealer that names the class of
// backend holding its key-encryption key, such as "pkcs11" for one kept in a
// hardware token. The keystore asks for it by type assertion; a
// *seal.AESGCM is BackendSoftware without implementing it.
type BackendClasser interface {
	BackendClass() string
}

// backendClass returns the backend class of the keystore's sealer.
func (ks *Keystore) backendClass() string {
	switch s := ks.sealer.(type) {
	case BackendClasser:
		return s.BackendClass()
	case *seal.AESGCM:
		return BackendSoftware
	}
	return BackendUnknown
}

// ServerKeys are the public halves of the server's own signing keys.
type ServerKeys struct {
	// Audit signs audit log checkpoints (SPEC §9).
	Audit []byte
	// Attestation signs attestation statements.
	Attestation []byte
}

// ServerKeys returns the audit and attestation public keys (32-byte
// Ed25519), creating the keys on first use.
func (ks *Keystore) ServerKeys(ctx context.Context) (ServerKeys, error) {
	var out ServerKeys
	for _, k := range []struct {
		name string
		dst  *[]byte
	}{{auditSecret, &out.Audit}, {attestationSecret, &out.Attestation}} {
		priv, err := ks.serverSigner(ctx, k.name)
		if err != nil {
			return ServerKeys{}, err
		}
		*k.dst = priv.Public().Bytes()
		priv.Destroy()
	}
	return out, nil
}

// serverSigner unseals the server's Ed25519 key called name. The caller
// destroys it. It is unsealed for each use rather than kept: neither key is
// on a hot path.
func (ks *Keystore) serverSigner(ctx context.Context, name string) (sig.PrivateKey, error) {
	s, err := sig.For(alg.Ed25519)
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", name, err)
	}
	seed, err := ks.ServerSecret(ctx, name, s.Alg().SeedSize)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return s.NewPrivateKey(seed)
}

// statement is the attested content. Its fields are declared in sorted
// order of their JSON names and hold only strings, a number and a bool, so
// encodeCanonical writes canonical JSON (keys sorted, no insignificant
// space).
type statement struct {
	Backend         string `json:"backend"`
	CreatedAt       string `json:"created_at"`
	Exportable      bool   `json:"exportable"`
	KID             string `json:"kid"`
	Origin          Origin `json:"origin"`
	PublicKeySHA256 string `json:"public_key_sha256"`
	Server          string `json:"server"`
	Version         uint32 `json:"version"`
}

// encodeCanonical writes s without HTML escaping and without the trailing
// newline of json.Encoder.
func (s statement) encodeCanonical() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic("keystore: encoding a statement: " + err.Error()) // plain types: cannot fail
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Attestation is a statement about one key version and the server's Ed25519
// signature over exactly its bytes.
type Attestation struct {
	Statement []byte
	Signature []byte
}

// Attest makes and signs the statement of version ref.Version of a key
// (the current version when zero): {backend, created_at, exportable, kid,
// origin, public_key_sha256, server, version} as canonical JSON, with
// public_key_sha256 the lower-case hex SHA-256 of the version's public key,
// exportable always false (nothing returns a private key) and server the
// caller's build version. The attestation key signs only statements the
// keystore composes from its own records, never caller-chosen bytes.
//
// A key without a public key (aes-256-gcm) or without a private key (a
// verify-only key) has nothing to attest: ErrUnsupported. An unknown key or
// version is ErrNotFound. While the store is unavailable it fails at once
// with ErrUnavailable: a statement is a claim about the key as stored, and
// the cache may be behind.
func (ks *Keystore) Attest(ctx context.Context, ref Ref, server string) (Attestation, error) {
	if err := ks.requireHealthy("attest a key"); err != nil {
		return Attestation{}, err
	}
	e, err := ks.entry(ctx, ref.Name)
	if err != nil {
		return Attestation{}, err
	}
	k := e.key
	n := ref.Version
	if n == 0 {
		n = k.Current
	}
	v, ok := k.Version(n)
	if !ok {
		return Attestation{}, fmt.Errorf("%w: %s has no version %d", ErrNotFound, k.Name, n)
	}
	if len(v.PublicKey) == 0 {
		return Attestation{}, fmt.Errorf("%w: a %s key has no public key to attest", ErrUnsupported, k.Alg)
	}
	if k.VerifyOnly {
		return Attestation{}, fmt.Errorf("%w: %s is a verify-only key; this server holds no private key to attest", ErrUnsupported, k.Name)
	}
	sum := sha256.Sum256(v.PublicKey)
	st := statement{
		Backend:         ks.backendClass(),
		CreatedAt:       v.CreatedAt.UTC().Format(time.RFC3339),
		Exportable:      false,
		KID:             k.KID(n),
		Origin:          v.Origin,
		PublicKeySHA256: hex.EncodeToString(sum[:]),
		Server:          server,
		Version:         n,
	}
	if st.Origin == "" {
		st.Origin = OriginGenerated
	}
	b := st.encodeCanonical()
	priv, err := ks.serverSigner(ctx, attestationSecret)
	if err != nil {
		return Attestation{}, err
	}
	defer priv.Destroy()
	s, err := priv.Sign(b, &sig.Options{})
	if err != nil {
		return Attestation{}, fmt.Errorf("keystore: signing a statement: %w", err)
	}
	return Attestation{Statement: b, Signature: s}, nil
}
