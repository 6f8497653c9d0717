package keystore

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// State is the lifecycle state of one key version.
type State string

// Version states. Only Enabled versions sign (and only the current one),
// verify and unwrap.
const (
	Enabled          State = "enabled"
	Disabled         State = "disabled"
	DestroyScheduled State = "destroy_scheduled"
	Destroyed        State = "destroyed"
)

// Key is a snapshot of a key's metadata. It holds no secret (the sealed
// seeds it carries, unexported, are ciphertext that opens only with the
// key-encryption key). A *Key returned
// by the Keystore is shared and must not be modified.
type Key struct {
	Name            string            `json:"name"` // tenant/purpose/alg/uuid
	Tenant          string            `json:"tenant"`
	Purpose         string            `json:"purpose"`
	Alg             string            `json:"alg"`
	UUID            string            `json:"uuid"`
	CreatedAt       time.Time         `json:"created_at"`
	Current         uint32            `json:"current"`
	MinVerify       uint32            `json:"min_verify"`
	Labels          map[string]string `json:"labels,omitempty"`
	Versions        []Version         `json:"versions"` // Versions[i].Number == i+1
	DestroyWaitDays uint32            `json:"destroy_wait_days,omitempty"`
	AutoRotateDays  uint32            `json:"auto_rotate_days,omitempty"`
	// VerifyOnly marks a key imported from a public key alone: it has no
	// private material, so it verifies but never signs or rotates.
	VerifyOnly bool  `json:"verify_only,omitempty"`
	revision   int64 // store revision of this snapshot
	// sealed holds the sealed seed of each version (index = version-1; nil
	// for none: destroyed, verify-only), as the record holds them. They
	// are ciphertext, opened only with the KEK and the version's binding.
	// Nil for a version 1 record until fetchForWrite reads them.
	sealed [][]byte
	// legacy marks a key read from a version 1 record, whose sealed seeds
	// are stored apart under sealedPath (record.go).
	legacy bool
}

// Version is one version of a key.
type Version struct {
	Number    uint32    `json:"n"`
	State     State     `json:"state"`
	CreatedAt time.Time `json:"created_at"`
	PublicKey []byte    `json:"pub"`
	// DestroyAt is when a DestroyScheduled version is erased (zero in
	// every other state). See lifecycle.go.
	DestroyAt time.Time `json:"destroy_at,omitzero"`
	// Origin says where the private key came from: generated here or
	// imported (see import.go). Records written before import existed
	// have none and read as OriginGenerated.
	Origin Origin `json:"origin,omitempty"`
}

// Version returns version n, or false.
func (k *Key) Version(n uint32) (*Version, bool) {
	if n == 0 || int(n) > len(k.Versions) {
		return nil, false
	}
	return &k.Versions[n-1], true
}

// KID returns the key id of version n: name#vN.
func (k *Key) KID(n uint32) string {
	return k.Name + "#v" + strconv.FormatUint(uint64(n), 10)
}

func (k *Key) clone() *Key {
	c := *k
	c.Versions = append([]Version(nil), k.Versions...)
	if k.sealed != nil {
		c.sealed = append([][]byte(nil), k.sealed...)
	}
	if k.Labels != nil {
		c.Labels = make(map[string]string, len(k.Labels))
		for a, b := range k.Labels {
			c.Labels[a] = b
		}
	}
	return &c
}

// errCorruptKey is wrapped by every error of decodeKey (record.go).
var errCorruptKey = errors.New("keystore: corrupt key record")

// Store keys.
func keyPath(name string) string { return "k/" + name }

func sealedPath(name string, v uint32) string {
	return fmt.Sprintf("s/%s/%010d", name, v)
}

func opPath(tenant, opID string) string { return "op/" + tenant + "/" + opID }
