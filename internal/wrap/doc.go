// Package wrap wraps data keys to KEM keys with HPKE (RFC 9180, base mode)
// and defines the envelope that carries a wrapped data key, keyed by the
// algorithm names of internal/alg:
//
//	alg name          HPKE KEM                        KEM id  seed  public key  enc
//	x25519            DHKEM(X25519, HKDF-SHA256)      0x0020    32          32    32
//	ml-kem-768        ML-KEM-768                      0x0041    64        1184  1088
//	mlkem768-x25519   MLKEM768-X25519 (X-Wing)        0x647a    32        1216  1120
//
// ML-KEM-768 and MLKEM768-X25519 are those of draft-ietf-hpke-pq, as
// implemented by crypto/hpke. Every scheme uses the KDF HKDF-SHA256 (0x0001)
// and the AEAD AES-256-GCM (0x0002); only the KEM varies.
//
// # Keys
//
// A private key is stored as its seed, the smallest input from which
// crypto/hpke rebuilds it (KEM.NewPrivateKey, DeserializePrivateKey of RFC
// 9180): the 32-byte X25519 scalar, the 64-byte FIPS 203 seed d ‖ z of
// ML-KEM-768, and the 32-byte hybrid secret that MLKEM768-X25519 expands
// with SHAKE256 into both component keys. The seed is secret. A public key is
// stored as SerializePublicKey (for the hybrid: ML-KEM-768 encapsulation key
// ‖ X25519 public key).
//
// Keys are immutable (but for PrivateKey.Destroy) and safe for concurrent
// use. Destroy drops the key, but clearing secrets is best effort in Go: the
// expanded keys live in unexported fields of crypto/hpke, crypto/mlkem and
// crypto/ecdh, which cannot be cleared from outside, and the garbage
// collector may have copied anything.
//
// # Envelope format, version 1
//
// All integers are big-endian.
//
//	offset    size  field
//	0         3     magic "RKW"
//	3         1     format version, 0x01
//	4         2     n, the length of the key name
//	6         n     key name, UTF-8, 1 ≤ n ≤ MaxNameLen (1024)
//	6+n       4     key version, uint32, ≥ 1
//	10+n      2     HPKE KEM id (0x0020, 0x0041 or 0x647a)
//	12+n      2     m, the length of enc; must be the KEM's enc size
//	14+n      m     HPKE enc, the KEM encapsulation
//	14+n+m    c     AES-256-GCM ciphertext of the data key, tag included, c ≥ 16
//
// The first 12+n bytes (magic to KEM id) are the header. The key name and
// version together are the kid of the wrapping key ("name#vN", SPEC §2), so an
// envelope names the exact key version that opens it; the caller looks it up
// directly and never tries versions one by one. There is no length field for
// the ciphertext: it runs to the end, so an envelope must be stored and passed
// around as one exact byte string. [Parse] is strict and [Envelope.Marshal]
// gives back the parsed bytes unchanged.
//
// # What is bound
//
// The HPKE info is
//
//	"ron-kms/wrap/v1"   15 bytes, domain label
//	header              12+n bytes, as above
//
// so an envelope relabelled to another key name, version or KEM id does not
// open ([ErrOpen]). The enc is bound by HPKE itself (it is an input of the
// KEM shared secret), and the caller's associated data is the AEAD associated
// data of the single HPKE encryption (sequence number 0). The KDF and AEAD
// are fixed by the format version.
//
// # Import
//
// [SealImport] and [OpenImport] implement the import format of SPEC §4: what
// crypto/hpke.Seal returns (enc ‖ ciphertext) for MLKEM768-X25519, HKDF-SHA256,
// AES-256-GCM, info "ron-kms/import/v1" and no associated data. It is not an
// envelope: the import wrapping key is implied by the endpoint.
package wrap
