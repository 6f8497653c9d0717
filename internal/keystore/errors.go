package keystore

import "errors"

// Expected outcomes. Callers test them with errors.Is; messages carry detail
// but never key material or payloads.
var (
	// ErrNotFound: no such key, or no such version of it.
	ErrNotFound = errors.New("keystore: not found")
	// ErrNotCurrent: an explicit version that is not the current one was asked
	// to sign.
	ErrNotCurrent = errors.New("keystore: version is not the current version")
	// ErrConflict: an op_id was reused with a different request, or a
	// concurrent rotation won the race.
	ErrConflict = errors.New("keystore: conflict")
	// ErrUnsupported: the algorithm, or the operation for this key's kind, is
	// not available.
	ErrUnsupported = errors.New("keystore: unsupported")
	// ErrInvalidArgument: the request is well-formed but its content is wrong
	// (labels, lengths, signature list).
	ErrInvalidArgument = errors.New("keystore: invalid argument")
	// ErrInvalidSignature: the signature does not verify. Not a failure of the
	// service.
	ErrInvalidSignature = errors.New("keystore: invalid signature")
	// ErrUnavailable: the store could not be read or written; retry later.
	ErrUnavailable = errors.New("keystore: store unavailable")
	// ErrWrongKEK: the key-encryption key does not open this store's records.
	ErrWrongKEK = errors.New("keystore: the key-encryption key does not match this store")
	// ErrVersionUnusable: the version is disabled, scheduled for
	// destruction, destroyed, or below the key's min_verify_version, so it
	// neither signs, verifies, unwraps nor decrypts. The error is a
	// *VersionUnusableError, which says why.
	ErrVersionUnusable = errors.New("keystore: key version is not usable")
	// ErrIllegalTransition: the version's state has no such edge (see
	// lifecycle.go), or the edge is forbidden for the current version.
	ErrIllegalTransition = errors.New("keystore: illegal version state transition")
)
