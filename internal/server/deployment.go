package server

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
)

// The deployment's own records in a shared store (the etcd prefix).
const (
	// DefaultEtcdPrefix is the etcd prefix of --etcd-prefix's default.
	DefaultEtcdPrefix = "ron-kms/"
	// DeploymentKey holds the deployment marker (Deployment), written by
	// the first node before anything else. A prefix that holds keys but no
	// marker is not a ron-kms deployment, and no node starts on it.
	DeploymentKey = "meta/deployment"
	// KEKParamsKey holds the Argon2id parameters (seal.PassphraseParams'
	// JSON, not secret) of a deployment whose key-encryption key comes from
	// a passphrase (--kek-passphrase-env). The first node writes it with
	// the marker, in the same transaction.
	KEKParamsKey = "meta/kek.params"
)

// DeploymentFormat is the value of Deployment.Format this version writes
// and reads.
const DeploymentFormat = "ron-kms-deployment/1"

// Sources of a deployment's key-encryption key (Deployment.KEKSource).
const (
	KEKSourceFile       = "kek-file"   // --kek-file, the same file on every node
	KEKSourcePassphrase = "passphrase" // --kek-passphrase-env, with KEKParamsKey
)

// kekCheckBinding binds the marker's check value.
var kekCheckBinding = seal.Binding{Name: "deployment/kek-check", Version: 1, Alg: "secret"}

// ErrDeployment is wrapped by ParseDeployment's errors: the bytes under
// DeploymentKey are not a marker this version reads.
var ErrDeployment = errors.New("server: not a ron-kms deployment marker")

// Deployment is the marker of a ron-kms deployment in a shared store, under
// DeploymentKey, as JSON:
//
//	{"format":"ron-kms-deployment/1","kek_source":"kek-file","kek_check_b64":"...",
//	 "created_at":"2026-05-01T12:00:00Z","created_by":"node-0a1b2c3d"}
//
// KEKCheck is 32 random bytes sealed under the deployment's key-encryption
// key (seal.Sealer, bound to "deployment/kek-check"): a node whose KEK does
// not open it has the wrong key and refuses to start, before it writes
// anything. Nothing in the marker is secret.
type Deployment struct {
	Format    string `json:"format"`
	KEKSource string `json:"kek_source"`
	KEKCheck  string `json:"kek_check_b64"`
	CreatedAt string `json:"created_at"`
	CreatedBy string `json:"created_by"`
}

// NewDeployment returns the marker of a new deployment whose key-encryption
// key is sealer's, from source (KEKSourceFile or KEKSourcePassphrase),
// created now by node createdBy (may be empty). Store it under
// DeploymentKey with storage.MustNotExist, before any other key of the
// deployment (a migration into etcd writes it too).
func NewDeployment(sealer seal.Sealer, source, createdBy string, now time.Time) ([]byte, error) {
	check := make([]byte, 32)
	rand.Read(check)
	sealed, err := sealer.Seal(kekCheckBinding, check)
	clear(check)
	if err != nil {
		return nil, fmt.Errorf("server: sealing the deployment's KEK check value: %w", err)
	}
	d := Deployment{Format: DeploymentFormat, KEKSource: source, KEKCheck: base64.StdEncoding.EncodeToString(sealed),
		CreatedAt: now.UTC().Truncate(time.Second).Format(time.RFC3339), CreatedBy: createdBy}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(d)
}

// maxDeploymentSize bounds a marker ParseDeployment reads.
const maxDeploymentSize = 4096

// ParseDeployment strictly parses a deployment marker: one JSON object with
// exactly Deployment's members, in its order, as NewDeployment writes them
// (re-encoding what was parsed gives b back), Format DeploymentFormat, a
// known KEKSource, KEKCheck canonical base64, CreatedAt RFC 3339 in UTC and
// CreatedBy a node id or empty. Errors wrap ErrDeployment.
func ParseDeployment(b []byte) (Deployment, error) {
	var d Deployment
	if len(b) > maxDeploymentSize {
		return d, fmt.Errorf("%w: %d bytes", ErrDeployment, len(b))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Deployment{}, fmt.Errorf("%w: %v", ErrDeployment, err)
	}
	if err := d.validate(); err != nil {
		return Deployment{}, err
	}
	again, err := json.Marshal(d)
	if err != nil || !bytes.Equal(again, b) {
		return Deployment{}, fmt.Errorf("%w: not in canonical form", ErrDeployment)
	}
	return d, nil
}

func (d Deployment) validate() error {
	switch {
	case d.Format != DeploymentFormat:
		return fmt.Errorf("%w: format %q, this version reads %q", ErrDeployment, d.Format, DeploymentFormat)
	case d.KEKSource != KEKSourceFile && d.KEKSource != KEKSourcePassphrase:
		return fmt.Errorf("%w: kek_source %q", ErrDeployment, d.KEKSource)
	case d.CreatedBy != "" && CheckNodeID(d.CreatedBy) != nil:
		return fmt.Errorf("%w: created_by is not a node id", ErrDeployment)
	}
	if t, err := time.Parse(time.RFC3339, d.CreatedAt); err != nil || t.Location() != time.UTC {
		return fmt.Errorf("%w: created_at is not an RFC 3339 time in UTC", ErrDeployment)
	}
	check, err := base64.StdEncoding.DecodeString(d.KEKCheck)
	if err != nil || base64.StdEncoding.EncodeToString(check) != d.KEKCheck {
		return fmt.Errorf("%w: kek_check_b64 is not canonical base64", ErrDeployment)
	}
	if _, err := seal.ParseRecord(check); err != nil {
		return fmt.Errorf("%w: kek_check_b64: %v", ErrDeployment, err)
	}
	return nil
}

// OpensWith reports whether sealer holds the deployment's key-encryption
// key: nil if it opens the check value, otherwise an error wrapping
// seal.ErrOpen.
func (d Deployment) OpensWith(sealer seal.Sealer) error {
	sealed, err := base64.StdEncoding.DecodeString(d.KEKCheck)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrDeployment, err)
	}
	pt, err := sealer.Open(kekCheckBinding, sealed)
	clear(pt)
	return err
}

// deploymentMutations are the writes that start a new deployment: the
// marker, and the passphrase parameters when the KEK comes from one. Both
// must not exist yet, so that two nodes starting at once on an empty prefix
// make one deployment: the loser reads the winner's.
func deploymentMutations(marker, params []byte) []storage.Mutation {
	muts := []storage.Mutation{{Key: DeploymentKey, Value: marker, Expect: storage.MustNotExist}}
	if params != nil {
		muts = append(muts, storage.Mutation{Key: KEKParamsKey, Value: params, Expect: storage.MustNotExist})
	}
	return muts
}
