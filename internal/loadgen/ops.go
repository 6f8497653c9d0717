package loadgen

import (
	"fmt"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/alg"
)

// opSpec is one operation of the bench: what kind of key it needs, how it
// is sent to a service and how it is measured in-process.
type opSpec struct {
	kind       alg.Kind
	defaultAlg string
	// signature: the payload is a message or digest to sign (PayloadBytes 0
	// means a payload_b3 digest); otherwise a data key or plaintext.
	signature  bool
	batched    bool
	maxPayload int
	needs      fixtureKind
	service    func(*Plan) call
	raw        func(Config) (call, error)
}

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
		service: serviceSign, raw: rawSign},
	"verify": {kind: alg.KindSignature, defaultAlg: alg.Ed25519, signature: true, maxPayload: api.MaxMessage,
		needs: needSigs, service: serviceVerify, raw: rawVerify},
	"sign-batch": {kind: alg.KindSignature, defaultAlg: alg.Ed25519, signature: true, batched: true, maxPayload: api.MaxMessage,
		service: serviceSignBatch, raw: rawSign},
	"verify-batch": {kind: alg.KindSignature, defaultAlg: alg.Ed25519, signature: true, batched: true, maxPayload: api.MaxMessage,
		needs: needSigs, service: serviceVerifyBatch, raw: rawVerifyBatch},
	"wrap": {kind: alg.KindKEM, defaultAlg: alg.MLKEM768X25519, maxPayload: api.MaxDataKey,
		service: serviceWrap, raw: rawWrap},
	"unwrap": {kind: alg.KindKEM, defaultAlg: alg.MLKEM768X25519, maxPayload: api.MaxDataKey,
		needs: needEnvelopes, service: serviceUnwrap, raw: rawUnwrap},
	"encrypt": {kind: alg.KindSymmetric, defaultAlg: alg.AES256GCM, maxPayload: api.MaxPlaintext,
		service: serviceEncrypt, raw: rawEncrypt},
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
