package wrap

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ron-kms/ron-kms/internal/alg"
)

// Domain separation labels that start the HPKE info. See the package
// documentation.
const (
	wrapLabel   = "ron-kms/wrap/v1"
	importLabel = "ron-kms/import/v1"
)

// Wrap seals plaintext (a data key) to pub, the public key of version
// version of the key named keyName, and returns the envelope bytes. The HPKE
// info binds the envelope header (key name, version and KEM id); aad, which
// may be empty, is the AEAD associated data and must be given again to
// Unwrap. An invalid key name or version 0 is reported with ErrFormat, a key
// of an algorithm this package does not implement with ErrUnsupported.
func Wrap(pub PublicKey, keyName string, version uint32, aad, plaintext []byte) ([]byte, error) {
	s, err := schemeFor(pub.Alg().Name)
	if err != nil {
		return nil, err
	}
	e := Envelope{KeyName: keyName, Version: version, KEMID: s.kem.ID()}
	if err := e.checkHeader(); err != nil {
		return nil, err
	}
	encLen := s.a.OutputSize
	out := make([]byte, 0, fixedSize+len(keyName)+encLen+len(plaintext)+TagSize)
	out = e.appendHeader(out)
	enc, ct, err := pub.Seal(info(out), aad, plaintext)
	if err != nil {
		return nil, err
	}
	if len(enc) != encLen {
		panic("wrap: " + s.a.Name + " enc has the wrong size")
	}
	out = binary.BigEndian.AppendUint16(out, uint16(encLen))
	out = append(out, enc...)
	return append(out, ct...), nil
}

// Unwrap opens env, parsed by Parse, with priv, which the caller has looked
// up by env.KeyName and env.Version, and returns the data key. aad must be
// the associated data given to Wrap. The HPKE info is derived again from env,
// so an envelope relabelled to another key name, version or KEM does not open.
// Errors wrap ErrFormat for an invalid env, and are ErrOpen for an envelope
// that does not open (ErrKeyDestroyed after priv.Destroy); no plaintext is
// returned with an error.
func Unwrap(priv PrivateKey, env Envelope, aad []byte) ([]byte, error) {
	if err := env.check(); err != nil {
		return nil, err
	}
	s, err := schemeFor(priv.Public().Alg().Name)
	if err != nil {
		return nil, err
	}
	if s.kem.ID() != env.KEMID {
		return nil, fmt.Errorf("%w: envelope is for KEM 0x%04x, key is %s", ErrOpen, env.KEMID, s.a.Name)
	}
	pt, err := priv.Open(env.Enc, info(env.appendHeader(nil)), aad, env.Ciphertext)
	if err != nil {
		if errors.Is(err, ErrKeyDestroyed) {
			return nil, err
		}
		return nil, ErrOpen
	}
	return pt, nil
}

// info returns the HPKE info of an envelope with the given header.
func info(header []byte) []byte {
	b := make([]byte, 0, len(wrapLabel)+len(header))
	b = append(b, wrapLabel...)
	return append(b, header...)
}

// SealImport seals plaintext (a private key seed) to pub, the server's
// mlkem768-x25519 import wrapping key, as SPEC §4 specifies: the result is
// what crypto/hpke.Seal returns (enc ‖ ciphertext) for KEM MLKEM768X25519,
// KDF HKDF-SHA256, AEAD AES-256-GCM and info "ron-kms/import/v1", with no
// associated data. A key of another algorithm is refused with ErrUnsupported.
func SealImport(pub PublicKey, plaintext []byte) ([]byte, error) {
	if err := importAlg(pub.Alg()); err != nil {
		return nil, err
	}
	enc, ct, err := pub.Seal([]byte(importLabel), nil, plaintext)
	if err != nil {
		return nil, err
	}
	return append(enc, ct...), nil
}

// OpenImport opens what SealImport (or crypto/hpke.Seal with the same suite
// and info) sealed to priv's public key. Any failure to open is ErrOpen (or
// ErrKeyDestroyed), with no plaintext; a key of another algorithm is refused
// with ErrUnsupported.
func OpenImport(priv PrivateKey, sealed []byte) ([]byte, error) {
	a := priv.Public().Alg()
	if err := importAlg(a); err != nil {
		return nil, err
	}
	if len(sealed) < a.OutputSize+TagSize {
		return nil, ErrOpen
	}
	enc, ct := sealed[:a.OutputSize], sealed[a.OutputSize:]
	return priv.Open(enc, []byte(importLabel), nil, ct)
}

func importAlg(a *alg.Alg) error {
	if a.Name != alg.MLKEM768X25519 {
		return fmt.Errorf("%w: import keys are %s, not %s", ErrUnsupported, alg.MLKEM768X25519, a.Name)
	}
	return nil
}
