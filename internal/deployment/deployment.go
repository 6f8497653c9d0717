// Package deployment names what identifies a ron-kms deployment inside a
// shared store (an etcd prefix): the marker item meta/deployment, and the
// other items a node checks before it serves from a prefix.
//
// A prefix is a deployment once it holds a marker. A node starting on a
// prefix that holds items but no marker refuses it (another program's keys,
// or a copy that did not finish); one whose KEK does not open the KEK check
// value (KEKCheckKey, sealed by the keystore on first open) refuses it too.
// ron-kms migrate and ron-kms restore --to write CopyingKey first and the
// marker last, after everything else is copied and read back, in the same
// transaction that deletes CopyingKey: an interrupted copy is never taken
// for a deployment, and is known for what it is (items, CopyingKey, no
// marker), so that it can be removed without fear of removing anything
// else.
//
// The marker holds nothing secret and nothing derived from a secret.
package deployment

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Store keys, relative to the store's prefix.
const (
	// MarkerKey holds the marker (Marker.Marshal).
	MarkerKey = "meta/deployment"
	// KEKCheckKey holds the keystore's KEK check value: a server secret
	// sealed under the KEK (keystore's meta/<name> server secrets, name
	// "kek-check"). Every store a keystore has opened holds it.
	KEKCheckKey = "meta/kek-check"
	// CopyingKey holds, while a copy runs, the marker the copy will write
	// (Marker.Marshal); the copy's last transaction deletes it and writes
	// MarkerKey.
	CopyingKey = "meta/copying"
	// ParamsKey holds the Argon2id parameters of a passphrase KEK
	// (seal.PassphraseParams.Marshal, the bytes of a data directory's
	// kek.params), in deployments whose KEK comes from a passphrase. Not
	// secret.
	ParamsKey = "meta/kek.params"
)

// Format is the marker's "format".
const Format = "ron-kms-deployment/v1"

// Who wrote a marker (Marker.CreatedBy).
const (
	ByServe   = "serve"   // the first node started on an empty prefix
	ByMigrate = "migrate" // ron-kms migrate, from a single node's data directory
	ByRestore = "restore" // ron-kms restore --to, from a backup
)

// ErrMarker reports bytes that are not a marker Parse accepts.
var ErrMarker = errors.New("deployment: not a valid deployment marker")

// Marker identifies a deployment. Its JSON form is one canonical object:
//
//	{"format":"ron-kms-deployment/v1","id":"<16 hex>","created_at":"2026-01-02T03:04:05Z","created_by":"migrate"}
type Marker struct {
	Format string `json:"format"`
	// ID is 8 random bytes in lower-case hex, telling deployments apart
	// (in messages: "the prefix holds deployment <id>").
	ID string `json:"id"`
	// CreatedAt is when the marker was written: UTC RFC 3339, seconds.
	CreatedAt string `json:"created_at"`
	// CreatedBy is ByServe, ByMigrate or ByRestore.
	CreatedBy string `json:"created_by"`
}

// New returns a fresh marker with a random id, made at now by createdBy.
func New(createdBy string, now time.Time) Marker {
	id := make([]byte, 8)
	rand.Read(id)
	return Marker{Format: Format, ID: hex.EncodeToString(id), CreatedAt: now.UTC().Format(time.RFC3339), CreatedBy: createdBy}
}

// Marshal returns the canonical JSON of m (no newline).
func (m Marker) Marshal() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // four strings always encode
	}
	return b
}

// check validates m's fields.
func (m Marker) check() error {
	if m.Format != Format {
		return fmt.Errorf("%w: format %.64q is not %s", ErrMarker, m.Format, Format)
	}
	if id, err := hex.DecodeString(m.ID); err != nil || len(id) != 8 || hex.EncodeToString(id) != m.ID {
		return fmt.Errorf("%w: id must be 16 lower-case hex digits", ErrMarker)
	}
	if t, err := time.Parse(time.RFC3339, m.CreatedAt); err != nil || t.UTC().Format(time.RFC3339) != m.CreatedAt {
		return fmt.Errorf("%w: created_at must be a UTC RFC 3339 time to the second", ErrMarker)
	}
	switch m.CreatedBy {
	case ByServe, ByMigrate, ByRestore:
	default:
		return fmt.Errorf("%w: created_by %.32q is not %s, %s or %s", ErrMarker, m.CreatedBy, ByServe, ByMigrate, ByRestore)
	}
	return nil
}

// Parse decodes a marker. It accepts exactly what Marshal writes: no
// unknown or repeated field, no other spelling or spacing. Every error
// wraps ErrMarker.
func Parse(b []byte) (Marker, error) {
	var m Marker
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Marker{}, fmt.Errorf("%w: malformed JSON or unknown field", ErrMarker)
	}
	if err := m.check(); err != nil {
		return Marker{}, err
	}
	if !bytes.Equal(m.Marshal(), b) {
		return Marker{}, fmt.Errorf("%w: not in canonical form", ErrMarker)
	}
	return m, nil
}
