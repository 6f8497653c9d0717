package api

import "encoding/json"

// Request and response bodies of the HTTP API (SPEC §4). Binary fields are
// strings here, standard base64 with padding (*B64) or lower-case hex
// (PayloadB3); Decode* in encoding.go turns them into bytes strictly.

// CreateKeyRequest is the body of POST /v1/kms/keys.
type CreateKeyRequest struct {
	Tenant  string            `json:"tenant"`
	Purpose string            `json:"purpose"`
	Alg     string            `json:"alg"`
	OpID    string            `json:"op_id,omitempty"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// CreateKeyResponse is the 201 answer to a create: the new key's kid (#v1)
// and its KeyInfo.
type CreateKeyResponse struct {
	KID string  `json:"kid"`
	Key KeyInfo `json:"key"`
}

// KeyInfo describes a key and all its versions; it never holds private
// material.
type KeyInfo struct {
	Name               string            `json:"name"`
	KID                string            `json:"kid"`
	Tenant             string            `json:"tenant"`
	Purpose            string            `json:"purpose"`
	Alg                string            `json:"alg"`
	CreatedAt          string            `json:"created_at"`
	CurrentVersion     uint32            `json:"current_version"`
	MinVerifyVersion   uint32            `json:"min_verify_version"`
	AutoRotateDays     uint32            `json:"auto_rotate_days,omitempty"`
	DestroyWaitingDays uint32            `json:"destroy_waiting_days,omitempty"`
	Labels             map[string]string `json:"labels"`
	Versions           []VersionInfo     `json:"versions"`
	// VerifyOnly marks a key imported from a public key alone: it verifies
	// but never signs or rotates.
	VerifyOnly bool `json:"verify_only"`
	// CacheAgeMS is set only on an answer served from the server's cache
	// while its store is unavailable: how long ago, in milliseconds, the
	// cached key was last known current (SPEC §10; also in the
	// X-KMS-Cache-Age header). Absent on a current answer.
	CacheAgeMS *int64 `json:"cache_age_ms,omitempty"`
}

// CacheAgeHeader is the response header that carries CacheAgeMS.
const CacheAgeHeader = "X-KMS-Cache-Age"

// Version states of SPEC §4.
const (
	StateEnabled          = "enabled"
	StateDisabled         = "disabled"
	StateDestroyScheduled = "destroy_scheduled"
	StateDestroyed        = "destroyed"
)

// VersionInfo is one version of a key.
type VersionInfo struct {
	Version      uint32 `json:"version"`
	State        string `json:"state"`
	CreatedAt    string `json:"created_at"`
	PublicKeyB64 string `json:"public_key_b64"`
	// Origin is OriginGenerated or OriginImported: where the version's
	// private key came from.
	Origin string `json:"origin"`
	// DestroyAt (RFC 3339) is when a destroy_scheduled version is erased;
	// given only in that state.
	DestroyAt string `json:"destroy_at,omitempty"`
}

// ListKeysResponse is the answer to GET /v1/kms/keys. NextPageToken is empty
// on the last page.
type ListKeysResponse struct {
	Keys          []KeyInfo `json:"keys"`
	NextPageToken string    `json:"next_page_token"`
}

// RotateRequest is the body of POST /v1/kms/keys/{key}/rotate (may be empty).
type RotateRequest struct {
	OpID string `json:"op_id,omitempty"`
}

// RotateResponse names the new current version and the one before it.
type RotateResponse struct {
	KID      string `json:"kid"`
	Previous string `json:"previous"`
}

// SignRequest is the body of POST /v1/kms/sign and an item of a sign batch.
// Exactly one of PayloadB3 and MessageB64 is given.
type SignRequest struct {
	KID        string `json:"kid"`
	PayloadB3  string `json:"payload_b3,omitempty"`
	MessageB64 string `json:"message_b64,omitempty"`
	ContextB64 string `json:"context_b64,omitempty"`
	OpID       string `json:"op_id,omitempty"`
	// emptyMessage: message_b64 is given and empty (the empty message);
	// see message.go.
	emptyMessage bool
}

// Signature is one component signature.
type Signature struct {
	Alg          string `json:"alg"`
	SignatureB64 string `json:"signature_b64"`
}

// SignResponse carries the full kid (with the version that signed) and the
// signatures, one per component.
type SignResponse struct {
	KID  string      `json:"kid"`
	Sigs []Signature `json:"sigs"`
}

// VerifyPolicy selects the verification mode of a hybrid key.
type VerifyPolicy struct {
	Mode string `json:"mode"`
}

// VerifyRequest is the body of POST /v1/kms/verify and an item of a verify
// batch. KID may be a key id or a key name (the current version).
type VerifyRequest struct {
	KID        string        `json:"kid"`
	PayloadB3  string        `json:"payload_b3,omitempty"`
	MessageB64 string        `json:"message_b64,omitempty"`
	Sigs       []Signature   `json:"sigs"`
	ContextB64 string        `json:"context_b64,omitempty"`
	Policy     *VerifyPolicy `json:"policy,omitempty"`
	// emptyMessage: message_b64 is given and empty (the empty message);
	// see message.go.
	emptyMessage bool
}

// VerifyDetails says which components were checked and which mode held.
type VerifyDetails struct {
	// Checked names the component algorithms checked; the server always
	// sends an array, [] when none was.
	Checked       []string `json:"checked"`
	SatisfiedMode string   `json:"satisfied_mode,omitempty"`
	// Reason is given when the version could not verify at all (ok is
	// false and nothing was checked): disabled, destroy_scheduled,
	// destroyed or below_min_verify_version.
	Reason string `json:"reason,omitempty"`
}

// VerifyResponse: a wrong signature is OK false with status 200.
type VerifyResponse struct {
	OK      bool          `json:"ok"`
	Details VerifyDetails `json:"details"`
	// CacheAgeMS is set only when the key came from the server's cache
	// while its store was unavailable, as KeyInfo.CacheAgeMS.
	CacheAgeMS *int64 `json:"cache_age_ms,omitempty"`
}

// SignBatchRequest is the body of POST /v1/kms/sign/batch (at most MaxBatch
// items).
type SignBatchRequest struct {
	Items []SignRequest `json:"items"`
}

// SignBatchResult is one slot of a sign batch: either KID and Sigs, or Error.
type SignBatchResult struct {
	KID   string      `json:"kid,omitempty"`
	Sigs  []Signature `json:"sigs,omitempty"`
	Error *ItemError  `json:"error,omitempty"`
}

// SignBatchResponse holds one result per item, in order.
type SignBatchResponse struct {
	Results []SignBatchResult `json:"results"`
}

// VerifyBatchRequest is the body of POST /v1/kms/verify/batch.
type VerifyBatchRequest struct {
	Items []VerifyRequest `json:"items"`
}

// VerifyBatchResult is one slot of a verify batch: OK, or Error.
type VerifyBatchResult struct {
	OK    bool       `json:"ok"`
	Error *ItemError `json:"error,omitempty"`
}

// MarshalJSON writes a failed slot as {"error":{code,message}} alone, as
// SPEC §4 requires of a failed batch item, and any other as {"ok":bool}.
func (r VerifyBatchResult) MarshalJSON() ([]byte, error) {
	if r.Error != nil {
		return json.Marshal(struct {
			Error *ItemError `json:"error"`
		}{r.Error})
	}
	return json.Marshal(struct {
		OK bool `json:"ok"`
	}{r.OK})
}

// VerifyBatchResponse: AllOK is true only when every item verified.
type VerifyBatchResponse struct {
	AllOK   bool                `json:"all_ok"`
	Results []VerifyBatchResult `json:"results"`
	// CacheAgeMS is set only when some key came from the server's cache
	// while its store was unavailable: the oldest of them, as
	// KeyInfo.CacheAgeMS.
	CacheAgeMS *int64 `json:"cache_age_ms,omitempty"`
}

// MintTokenRequest is the body of POST /v1/kms/tokens (scope kms:admin), an
// extension of SPEC §5 that backs `ron-kms token mint`. Every field narrows
// the token; TTL is a Go duration ("24h").
type MintTokenRequest struct {
	Scopes    []string `json:"scopes,omitempty"`
	Tenant    string   `json:"tenant,omitempty"`
	KeyPrefix string   `json:"key_prefix,omitempty"`
	Algs      []string `json:"algs,omitempty"`
	TTL       string   `json:"ttl,omitempty"`
}

// MintTokenResponse carries the new token (a secret) and its identifier (not
// a secret: it is what the audit log calls the actor).
type MintTokenResponse struct {
	Token string `json:"token"`
	ID    string `json:"id"`
}

// RevokeTokenRequest is the body of POST /v1/kms/tokens/revoke (scope
// kms:admin): the identifier of the token to revoke, as MintTokenResponse.ID
// or `ron-kms token inspect` gives it (32 lower-case hex digits).
type RevokeTokenRequest struct {
	ID string `json:"id"`
}

// RevokeTokenResponse answers a revocation: from then on the token with
// this identifier, and every attenuation of it, is 401 Unauthenticated on
// every node. Revoked is always true; revoking again answers the same.
type RevokeTokenResponse struct {
	ID      string `json:"id"`
	Revoked bool   `json:"revoked"`
}

// BuildInfo is the body of GET /version.
type BuildInfo struct {
	Version   string   `json:"version"`
	GoVersion string   `json:"go_version"`
	Algs      []string `json:"algs"`
	Store     string   `json:"store"`
	// CompositeSigs names the revision of the IETF composite ML-DSA draft
	// that mldsa65-ed25519 implements, for interoperability checks.
	CompositeSigs string `json:"composite_sigs"`
	// FIPS140 reports whether the server runs in FIPS 140-3 mode (ML-DSA
	// from crypto/mldsa instead of circl).
	FIPS140 bool `json:"fips140"`
}

// Readiness is the 200 body of GET /readyz (SPEC §10). Ready is true; the
// server serves, though perhaps not everything: Degraded lists what is
// impaired (always an array, [] when nothing is). When the server is not
// ready it answers 503 with the error envelope, whose message lists every
// reason.
type Readiness struct {
	Ready    bool       `json:"ready"`
	Degraded []Degraded `json:"degraded"`
}

// Degraded is one impaired part of a ready server.
type Degraded struct {
	// Component is what is impaired: "store" (the key store cannot be
	// reached: writes and private-key operations answer 503
	// StoreUnavailable, verify and public-key reads come from the cache).
	Component string `json:"component"`
	// Reason says why, for people.
	Reason string `json:"reason"`
	// Since is when the component was last known good (RFC 3339, UTC).
	Since string `json:"since,omitempty"`
	// CacheAgeMS is how old the cache is, in milliseconds (store only).
	CacheAgeMS *int64 `json:"cache_age_ms,omitempty"`
}

// Limits of the contract.
const (
	MaxBatch         = 1000     // items in one batch
	MaxMessage       = 64 << 10 // bytes of message_b64, decoded
	MaxContext       = 255      // bytes of context_b64, decoded
	DefaultBodyLimit = 1 << 20  // request body cap
	MaxLabels        = 64       // labels per key
	MaxLabelLen      = 128      // bytes per label key or value
	MaxOpIDLen       = 128      // bytes of an op_id (printable ASCII, no spaces)
	DefaultListLimit = 100      // keys per page when limit is not given
	MaxListLimit     = 1000     // largest page
	MaxDataKey       = 1024     // bytes of a data key to wrap or generate
	MaxPlaintext     = 64 << 10 // bytes of plaintext_b64 to encrypt, decoded
	MaxAAD           = 8 << 10  // bytes of aad_b64, decoded
)

// WrapRequest is the body of POST /v1/kms/wrap: exactly one of
// PlaintextKeyB64 (a data key to wrap) and Size (bytes of a data key for the
// server to generate and return).
type WrapRequest struct {
	KID             string `json:"kid"`
	PlaintextKeyB64 string `json:"plaintext_key_b64,omitempty"`
	Size            int    `json:"size,omitempty"`
	AADB64          string `json:"aad_b64,omitempty"`
}

// WrapResponse carries the envelope; PlaintextKeyB64 only when the server
// generated the data key (a secret: use it, then forget it).
type WrapResponse struct {
	KID             string `json:"kid"`
	Alg             string `json:"alg"`
	WrappedB64      string `json:"wrapped_b64"`
	PlaintextKeyB64 string `json:"plaintext_key_b64,omitempty"`
}

// UnwrapRequest is the body of POST /v1/kms/unwrap; the envelope names its
// key and version.
type UnwrapRequest struct {
	WrappedB64 string `json:"wrapped_b64"`
	AADB64     string `json:"aad_b64,omitempty"`
}

// UnwrapResponse carries the data key (a secret).
type UnwrapResponse struct {
	KID             string `json:"kid"`
	Alg             string `json:"alg"`
	PlaintextKeyB64 string `json:"plaintext_key_b64"`
}

// EncryptRequest is the body of POST /v1/kms/encrypt (aes-256-gcm keys).
type EncryptRequest struct {
	KID          string `json:"kid"`
	PlaintextB64 string `json:"plaintext_b64"`
	AADB64       string `json:"aad_b64,omitempty"`
}

// EncryptResponse carries the versioned ciphertext.
type EncryptResponse struct {
	KID           string `json:"kid"`
	CiphertextB64 string `json:"ciphertext_b64"`
}

// DecryptRequest is the body of POST /v1/kms/decrypt; the ciphertext names
// its key and version.
type DecryptRequest struct {
	CiphertextB64 string `json:"ciphertext_b64"`
	AADB64        string `json:"aad_b64,omitempty"`
}

// DecryptResponse carries the plaintext.
type DecryptResponse struct {
	KID          string `json:"kid"`
	PlaintextB64 string `json:"plaintext_b64"`
}
