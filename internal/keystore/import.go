package keystore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ron-kms/ron-kms/internal/alg"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/wrap"
)

// Origin says where the private key of a version came from.
type Origin string

// Origins. A rotation always makes a generated version, whatever the origin
// of the versions before it.
const (
	OriginGenerated Origin = "generated" // made by this service from crypto/rand
	OriginImported  Origin = "imported"  // brought in with Import
)

// importable lists the algorithms Import takes (SPEC §4): those whose whole
// private key is one 32-byte seed with a standard meaning (the RFC 8032
// Ed25519 seed, the FIPS 204 ML-DSA ξ), so that a key made elsewhere loads
// here unchanged. Composite, SLH-DSA, KEM and symmetric keys are not
// importable.
var importable = map[string]bool{
	alg.Ed25519: true,
	alg.MLDSA44: true,
	alg.MLDSA65: true,
	alg.MLDSA87: true,
}

// importableList names the importable algorithms in table order, for
// messages.
func importableList() string {
	var names []string
	for _, n := range alg.Names() {
		if importable[n] {
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// importWrappingSecret is the server secret that seeds the import wrapping
// key, an alg.MLKEM768X25519 HPKE key.
const importWrappingSecret = "import-wrapping-key"

// ImportParams are the inputs of Import: exactly one of PublicKey (a
// verify-only key) and Wrapped (a private key seed sealed to the import
// wrapping key with wrap.SealImport, or crypto/hpke.Seal as SPEC §4 says).
type ImportParams struct {
	Tenant, Purpose, Alg string
	// PublicKey is the encoded public key of a verify-only key.
	PublicKey []byte
	// Wrapped is enc ‖ ciphertext of the sealed 32-byte seed.
	Wrapped []byte
	// OpID, when set, makes the call idempotent, as for Create.
	OpID string
}

func (p ImportParams) digest() string {
	pub := sha256.Sum256(p.PublicKey)
	wrapped := sha256.Sum256(p.Wrapped)
	b, _ := json.Marshal(struct {
		Op, T, P, A string
		Pub, W      []byte
		HasPub      bool
	}{"import", p.Tenant, p.Purpose, p.Alg, pub[:], wrapped[:], len(p.PublicKey) > 0})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ImportWrappingKey returns the public half of the server's import wrapping
// key (alg.MLKEM768X25519), creating the key on first use. The key is a
// server secret, sealed like any key; it is not rotated.
func (ks *Keystore) ImportWrappingKey(ctx context.Context) (wrap.PublicKey, error) {
	priv, err := ks.importPrivateKey(ctx)
	if err != nil {
		return nil, err
	}
	defer priv.Destroy()
	return priv.Public(), nil
}

// importPrivateKey unseals the import wrapping key. The caller destroys it.
func (ks *Keystore) importPrivateKey(ctx context.Context) (wrap.PrivateKey, error) {
	s, err := wrap.For(alg.MLKEM768X25519)
	if err != nil {
		return nil, fmt.Errorf("keystore: import wrapping key: %w", err)
	}
	seed, err := ks.ServerSecret(ctx, importWrappingSecret, s.Alg().SeedSize)
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	priv, err := s.NewPrivateKey(seed)
	if err != nil {
		return nil, fmt.Errorf("keystore: import wrapping key: %w", err)
	}
	return priv, nil
}

// Import makes a new key with version 1 from material made elsewhere: a
// public key alone (the key is then verify-only: it never signs nor
// rotates) or a private key seed sealed to ImportWrappingKey. Only the
// algorithms in importable are taken; others are ErrUnsupported. A
// malformed or weak public key (see importPublic), a sealed seed that does
// not open or has the wrong length is ErrInvalidArgument. The opened seed is cleared after it is
// sealed at rest (best effort). An imported private key behaves like a
// created one afterwards; its rotations make generated versions.
//
// While the store is unavailable it fails at once with ErrUnavailable.
func (ks *Keystore) Import(ctx context.Context, p ImportParams) (*Key, error) {
	if err := ks.requireHealthy("import a key"); err != nil {
		return nil, err
	}
	if err := checkSegment("tenant", p.Tenant); err != nil {
		return nil, err
	}
	if err := checkSegment("purpose", p.Purpose); err != nil {
		return nil, err
	}
	sc, err := schemeFor(p.Alg)
	if err != nil {
		return nil, err
	}
	if !importable[p.Alg] {
		return nil, fmt.Errorf("%w: %s keys cannot be imported; import takes %s", ErrUnsupported, p.Alg, importableList())
	}
	if (len(p.PublicKey) > 0) == (len(p.Wrapped) > 0) {
		return nil, fmt.Errorf("%w: give exactly one of a public key and a wrapped private key", ErrInvalidArgument)
	}
	digest := p.digest()
	if p.OpID != "" {
		var k Key
		if ok, err := ks.replay(ctx, p.Tenant, p.OpID, digest, &k); ok || err != nil {
			return &k, err
		}
	}
	k, now := ks.skeleton(p.Tenant, p.Purpose, p.Alg)
	if len(p.PublicKey) > 0 {
		v, err := importPublic(sc, p.PublicKey, now)
		if err != nil {
			return nil, err
		}
		k.Versions, k.VerifyOnly = []Version{v}, true
		return ks.commitNew(ctx, k, nil, nil, p.OpID, "import", digest)
	}
	v, sealed, priv, err := ks.importPrivate(ctx, sc, k.Name, p.Wrapped, now)
	if err != nil {
		return nil, err
	}
	k.Versions = []Version{v}
	return ks.commitNew(ctx, k, sealed, priv, p.OpID, "import", digest)
}

// importPublic checks an encoded public key and makes the version of a
// verify-only key from it. A weak key (sig.ErrWeakPublicKey: an Ed25519
// point of small order or not a point, an ML-DSA key with t1 = 0) is
// ErrInvalidArgument: signatures could be made under it without a private
// key.
func importPublic(sc scheme, pub []byte, now time.Time) (Version, error) {
	if len(pub) != sc.alg.PublicKeySize {
		return Version{}, fmt.Errorf("%w: a %s public key is %d bytes, not %d", ErrInvalidArgument, sc.alg.Name, sc.alg.PublicKeySize, len(pub))
	}
	if _, err := sc.parsePub(pub); err != nil {
		return Version{}, fmt.Errorf("%w: not a %s public key: %v", ErrInvalidArgument, sc.alg.Name, err)
	}
	if sc.checkPub != nil {
		if err := sc.checkPub(pub); err != nil {
			return Version{}, fmt.Errorf("%w: refused the public key: %v", ErrInvalidArgument, err)
		}
	}
	return Version{Number: 1, State: Enabled, CreatedAt: now, PublicKey: append([]byte(nil), pub...), Origin: OriginImported}, nil
}

// importPrivate opens a sealed seed with the import wrapping key and makes
// version 1 of key name from it.
func (ks *Keystore) importPrivate(ctx context.Context, sc scheme, name string, wrapped []byte, now time.Time) (Version, []byte, secretKey, error) {
	ik, err := ks.importPrivateKey(ctx)
	if err != nil {
		return Version{}, nil, nil, err
	}
	seed, err := wrap.OpenImport(ik, wrapped)
	ik.Destroy()
	if err != nil {
		if errors.Is(err, wrap.ErrOpen) {
			return Version{}, nil, nil, fmt.Errorf("%w: the wrapped private key does not open with this server's import wrapping key (sealed to another key, with another info or suite, or damaged)", ErrInvalidArgument)
		}
		return Version{}, nil, nil, fmt.Errorf("keystore: opening an imported key: %w", err)
	}
	defer clear(seed)
	if len(seed) != sc.alg.SeedSize {
		return Version{}, nil, nil, fmt.Errorf("%w: the wrapped private key is a %d-byte seed; a %s seed is %d bytes", ErrInvalidArgument, len(seed), sc.alg.Name, sc.alg.SeedSize)
	}
	return ks.versionFromSeed(sc, name, 1, now, seed, OriginImported)
}

// versionFromSeed derives the private and public key of version n of key
// name from seed and seals the seed. The returned private key is for the
// cache; seed stays the caller's to clear.
func (ks *Keystore) versionFromSeed(sc scheme, name string, n uint32, now time.Time, seed []byte, origin Origin) (Version, []byte, secretKey, error) {
	priv, err := sc.load(seed)
	if err != nil {
		if origin == OriginImported {
			return Version{}, nil, nil, fmt.Errorf("%w: the imported %s seed does not load: %v", ErrInvalidArgument, sc.alg.Name, err)
		}
		return Version{}, nil, nil, fmt.Errorf("keystore: new %s key: %w", sc.alg.Name, err)
	}
	plain, err := sc.sealable(seed, priv)
	if err != nil {
		priv.destroy()
		return Version{}, nil, nil, fmt.Errorf("keystore: new %s key: %w", sc.alg.Name, err)
	}
	sealed, err := ks.sealer.Seal(seal.Binding{Name: name, Version: n, Alg: sc.alg.Name}, plain)
	clear(plain)
	if err != nil {
		priv.destroy()
		return Version{}, nil, nil, fmt.Errorf("keystore: sealing: %w", err)
	}
	v := Version{Number: n, State: Enabled, CreatedAt: now, PublicKey: priv.publicBytes(), Origin: origin}
	return v, sealed, priv, nil
}

// refuseVerifyOnly answers ErrUnsupported when k is a verify-only key and
// what (sign, rotate) needs a private key.
func refuseVerifyOnly(k *Key, what string) error {
	if k.VerifyOnly {
		return fmt.Errorf("%w: %s is a verify-only key (imported from a public key); it cannot %s", ErrUnsupported, k.Name, what)
	}
	return nil
}
