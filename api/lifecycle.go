package api

// ConfigureKeyRequest is the body of POST /v1/kms/keys/{key}/config (scope
// kms:admin). Absent fields are left as they are; at least one is given.
// The answer is the KeyInfo.
type ConfigureKeyRequest struct {
	// MinVerifyVersion: versions below it neither verify, unwrap nor
	// decrypt; 1 to the current version, and it may be moved back down.
	MinVerifyVersion *uint32 `json:"min_verify_version,omitempty"`
	// AutoRotateDays: 0 is off; otherwise 1 to MaxAutoRotateDays days after
	// the current version was made, the server rotates the key.
	AutoRotateDays *uint32 `json:"auto_rotate_days,omitempty"`
	// DestroyWaitingDays: the waiting period of destructions requested from
	// now on, 1 to MaxDestroyWaitingDays (default DefaultDestroyWaitingDays).
	DestroyWaitingDays *uint32 `json:"destroy_waiting_days,omitempty"`
}

// VersionActionRequest is the body of POST
// /v1/kms/keys/{key}/versions/{n}/disable, /enable, /destroy and
// /cancel-destroy (scope kms:admin): empty, or an empty JSON object. The
// answer is the KeyInfo.
type VersionActionRequest struct{}

// Limits and defaults of the key configuration.
const (
	MaxAutoRotateDays         = 3650
	MaxDestroyWaitingDays     = 365
	DefaultDestroyWaitingDays = 7
)
