package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// opRecord remembers the result of an idempotent operation, keyed by the
// caller's op_id within a tenant. Digest identifies the request it answered.
type opRecord struct {
	Kind   string          `json:"kind"`
	Digest string          `json:"digest"`
	Result json.RawMessage `json:"result"`
}

// maxOpID bounds the length of an op_id.
const maxOpID = 128

// CheckOpID checks an op_id, the caller's idempotency key: at most 128
// bytes of printable ASCII without spaces (0x21 to 0x7E); "" means none.
// The one rule for every request that carries an op_id, whether or not it
// is kept (create, rotate and import keep it, as part of a store key).
// Errors wrap ErrInvalidArgument and do not echo the op_id.
func CheckOpID(opID string) error {
	if len(opID) > maxOpID {
		return fmt.Errorf("%w: op_id longer than %d bytes", ErrInvalidArgument, maxOpID)
	}
	for i := 0; i < len(opID); i++ {
		if opID[i] < 0x21 || opID[i] > 0x7e {
			return fmt.Errorf("%w: op_id must be printable ASCII without spaces", ErrInvalidArgument)
		}
	}
	return nil
}

func opMutation(tenant, opID, kind, digest string, result any) storage.Mutation {
	r, err := json.Marshal(result)
	if err != nil {
		panic("keystore: encoding op result: " + err.Error()) // plain types only
	}
	b, _ := json.Marshal(opRecord{Kind: kind, Digest: digest, Result: r})
	return storage.Mutation{Key: opPath(tenant, opID), Value: b, Expect: storage.MustNotExist}
}

// replay looks up an earlier operation with this op_id. It reports true and
// fills out when the same request already ran; it returns ErrConflict when
// the op_id answered a different request.
func (ks *Keystore) replay(ctx context.Context, tenant, opID, digest string, out any) (bool, error) {
	if err := CheckOpID(opID); err != nil {
		return false, err
	}
	it, err := ks.store.Get(ctx, opPath(tenant, opID))
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, storeErr(err)
	}
	var rec opRecord
	if err := json.Unmarshal(it.Value, &rec); err != nil {
		return false, fmt.Errorf("keystore: corrupt op record: %v", err)
	}
	if rec.Digest != digest {
		return false, fmt.Errorf("%w: op_id %q was used for a different request", ErrConflict, opID)
	}
	if err := json.Unmarshal(rec.Result, out); err != nil {
		return false, fmt.Errorf("keystore: corrupt op record: %v", err)
	}
	return true, nil
}
