package loadgen

import (
	"fmt"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/alg"
)

// opSpec is one operation of the bench: what kind of key it needs, how its
// requests are built and their answers judged against a service, and how
// it is measured in-process.
type opSpec struct {
	kind       alg.Kind
	defaultAlg string
	// signature: the payload is a message or digest to sign (PayloadBytes 0
	// means a payload_b3 digest); otherwise a data key or plaintext.
	signature  bool
	batched    bool
	maxPayload int
	needs      fixtureKind
	// path is the route; request returns the body (an api DTO, marshaled
	// as the client package marshals it) for the keys ks, one per item.
	path    string
	request func(o *planOp, ks []keyRef) any
	// judge reads the answer to one request.
	judge func(status int, body []byte) outcome
	raw   func(Config) (call, error)
}

// fixtureKind names the per-key inputs an operation needs besides the kid.
type fixtureKind uint8

const (
	needNothing fixtureKind = iota
	needSigs
	needEnvelopes
)

const maxBatch = api.MaxBatch

// opTable holds every operation of `ron-kms bench`, keyed by its --op name.
var opTable = map[string]*opSpec{
	"sign": {kind: alg.KindSignature, defaultAlg: alg.Ed25519, signature: true, maxPayload: api.MaxMessage,
		path: "/v1/kms/sign", request: one((*planOp).signRequest), judge: judgeOne, raw: rawSign},
	"verify": {kind: alg.KindSignature, defaultAlg: alg.Ed25519, signature: true, maxPayload: api.MaxMessage,
		needs: needSigs, path: "/v1/kms/verify", request: one((*planOp).verifyRequest), judge: judgeVerify,
		raw: rawVerify},
	"sign-batch": {kind: alg.KindSignature, defaultAlg: alg.Ed25519, signature: true, batched: true, maxPayload: api.MaxMessage,
		path: "/v1/kms/sign/batch", request: signBatch, judge: judgeSignBatch, raw: rawSign},
	"verify-batch": {kind: alg.KindSignature, defaultAlg: alg.Ed25519, signature: true, batched: true, maxPayload: api.MaxMessage,
		needs: needSigs, path: "/v1/kms/verify/batch", request: verifyBatch, judge: judgeVerifyBatch,
		raw: rawVerifyBatch},
	"wrap": {kind: alg.KindKEM, defaultAlg: alg.MLKEM768X25519, maxPayload: api.MaxDataKey,
		path: "/v1/kms/wrap", request: one((*planOp).wrapRequest), judge: judgeOne, raw: rawWrap},
	"unwrap": {kind: alg.KindKEM, defaultAlg: alg.MLKEM768X25519, maxPayload: api.MaxDataKey,
		needs: needEnvelopes, path: "/v1/kms/unwrap", request: one((*planOp).unwrapRequest), judge: judgeOne,
		raw: rawUnwrap},
	"encrypt": {kind: alg.KindSymmetric, defaultAlg: alg.AES256GCM, maxPayload: api.MaxPlaintext,
		path: "/v1/kms/encrypt", request: one((*planOp).encryptRequest), judge: judgeOne, raw: rawEncrypt},
}

// check reports whether name is an algorithm the operation can use.
func (s *opSpec) check(name string) error {
	a, ok := alg.Lookup(name)
	if !ok {
		return fmt.Errorf("loadgen: unknown algorithm %q", name)
	}
	if a.Kind != s.kind {
		return fmt.Errorf("loadgen: %s is a %s algorithm; this operation needs a %s one (default %s)", name, a.Kind, s.kind, s.defaultAlg)
	}
	return nil
}
