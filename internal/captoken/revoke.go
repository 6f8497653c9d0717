package captoken

// Revocations tells an Authority which tokens are revoked (SPEC §5). A
// token is named by its identifier, [Grant.ID]: a token and every
// attenuation of it share one identifier, so revoking a token revokes all of
// them.
//
// TokenRevoked is called on every [Authority.Verify], from many goroutines
// at once: it must be safe for concurrent use, quick, and must not block on
// I/O (keep the list in memory and follow the store). The identifiers are
// not secret.
type Revocations interface {
	TokenRevoked(id string) bool
}

// SetRevocations makes a consult r on every later Verify: a token whose
// identifier r reports revoked is ErrUnauthenticated, whether or not its
// signature was already checked and remembered. A nil r removes the check.
// Safe to call concurrently with Verify; verifications already under way
// may still use the previous value.
func (a *Authority) SetRevocations(r Revocations) {
	if r == nil {
		a.revocations.Store(nil)
		return
	}
	a.revocations.Store(&r)
}

// ValidID reports whether id is written like the identifier of a token
// minted by an Authority: IDSize bytes in lower-case hex. It says nothing
// about whether such a token exists.
func ValidID(id string) bool {
	if len(id) != 2*IDSize {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
