// Package seal stores secrets (private key seeds and the server's own root
// secrets) only as AES-256-GCM sealed records under a key-encryption key
// (KEK), and provides the KEK sources: a root key file and a passphrase.
//
// # Sealed record format, version 1
//
//	offset  size  field
//	0       3     magic "RKS"
//	3       1     format version, 0x01
//	4       8     KEK id
//	12      12    nonce, random
//	24      n+16  AES-256-GCM ciphertext of the n-byte secret, then the 16-byte tag
//
// The first 12 bytes (magic, version, KEK id) are the header. A record is at
// least [Overhead] = 40 bytes long. There is no length field: the ciphertext
// runs to the end of the record, so a record must be stored and passed around
// as one exact byte string. [ParseRecord] is strict and [Record.Marshal] gives
// back the parsed bytes unchanged.
//
// The KEK id is the first 8 bytes of HKDF-SHA256 (RFC 5869) with the KEK as
// input keying material, no salt, and info "ron-kms/seal/v1 kek-id". It is
// not secret: it lets [AESGCM.Open] report a record sealed under another KEK
// ([ErrWrongKEK]) without trying to decrypt it, and reveals nothing useful
// about the KEK.
//
// The AES-256-GCM key is the 32-byte KEK itself. The associated data is
//
//	"ron-kms/seal/v1"                       15 bytes, domain label
//	header                                  12 bytes, as above
//	uint16 big-endian len(name) || name     Binding.Name, 1..MaxNameLen bytes
//	uint32 big-endian version               Binding.Version
//	uint16 big-endian len(alg)  || alg      Binding.Alg, 0..MaxAlgLen bytes
//
// so a record moved to another key name, version or algorithm, or re-labelled
// with another header, does not open ([ErrOpen]). The binding is authenticated,
// not encrypted, and is not stored in the record: the caller supplies it again
// to open.
//
// # Nonces
//
// Nonces are 96 random bits from crypto/rand (crypto/cipher.NewGCMWithRandomNonce,
// the FIPS 140-3 approved construction). A KEK must not seal more than 2^32
// records; one record per key version is far below that.
//
// # Key-encryption keys
//
// [LoadOrCreateRootKey] reads (or creates on first start) the raw 32-byte
// root key file, <data-dir>/root.key, mode 0600. [PassphraseParams.DeriveKEK]
// derives a KEK from a passphrase with Argon2id (RFC 9106) and parameters kept
// in a small JSON file ([LoadOrCreatePassphraseParams]). A PKCS#11 [Sealer]
// is expected to follow; callers should depend on the [Sealer] interface.
//
// Clearing secrets from memory is best effort in Go: the garbage collector may
// have copied them, and the expanded AES key schedule inside crypto/aes cannot
// be cleared at all.
package seal
