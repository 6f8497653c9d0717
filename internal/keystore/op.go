package keystore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

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

// Op records. Version 1 is the JSON of opRecord, starting with '{'.
// Version 2 is binary:
//
//	u8   2 (the record version)
//	u8   kind: 1 create, 2 rotate, 3 import
//	[32] the request digest (SHA-256)
//	the result: for create and import the key as it was made, a version 2
//	key record without sealed seeds (record.go); for rotate, u16 len, kid,
//	u16 len, previous kid
//
// with nothing after the result. Both are read.
const opRecordV2 = 2

var opKinds = []string{1: "create", 2: "rotate", 3: "import"}

// errCorruptOp is wrapped by every error of decodeOp.
var errCorruptOp = errors.New("keystore: corrupt op record")

// opResult is a decoded op record: its kind, digest (lower-case hex) and
// result, one of a *Key (create, import) or a RotateResult (rotate).
type opResult struct {
	kind, digest string
	key          *Key
	rotate       RotateResult
}

func opMutation(tenant, opID, kind, digest string, result any) storage.Mutation {
	return storage.Mutation{Key: opPath(tenant, opID), Value: encodeOp(kind, digest, result), Expect: storage.MustNotExist}
}

// encodeOp is the version 2 op record of a result (a *Key for create and
// import, a RotateResult for rotate). Anything else is a programmer error.
func encodeOp(kind, digest string, result any) []byte {
	code := slices.Index(opKinds, kind)
	d, err := hex.DecodeString(digest)
	if code <= 0 || err != nil || len(d) != sha256.Size {
		panic("keystore: op record of kind " + kind)
	}
	w := &writer{b: []byte{opRecordV2, uint8(code)}}
	w.b = append(w.b, d...)
	switch r := result.(type) {
	case *Key:
		if kind == "rotate" {
			panic("keystore: a rotate op record of a key")
		}
		c := *r
		c.sealed, c.legacy = nil, false
		b, err := c.encode()
		if err != nil {
			panic("keystore: op record of a key too large to store: " + err.Error())
		}
		w.b = append(w.b, b...)
	case RotateResult:
		if kind != "rotate" {
			panic("keystore: a " + kind + " op record of a rotation")
		}
		w.bytes16([]byte(r.KID))
		w.bytes16([]byte(r.Previous))
	default:
		panic(fmt.Sprintf("keystore: op record of a %T", result))
	}
	return w.b
}

// decodeOp decodes an op record of either version. A record that is not
// well formed, or whose result is not of its kind, is errCorruptOp.
func decodeOp(b []byte) (opResult, error) {
	if len(b) > 0 && b[0] == '{' {
		var rec opRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return opResult{}, fmt.Errorf("%w: %v", errCorruptOp, err)
		}
		r := opResult{kind: rec.Kind, digest: rec.Digest}
		var err error
		if rec.Kind == "rotate" {
			err = json.Unmarshal(rec.Result, &r.rotate)
		} else {
			r.key = new(Key)
			err = json.Unmarshal(rec.Result, r.key)
		}
		if err != nil {
			return opResult{}, fmt.Errorf("%w: %v", errCorruptOp, err)
		}
		return r, nil
	}
	if len(b) < 2+sha256.Size || b[0] != opRecordV2 || b[1] == 0 || int(b[1]) >= len(opKinds) {
		return opResult{}, fmt.Errorf("%w: unknown version or kind", errCorruptOp)
	}
	r := opResult{kind: opKinds[b[1]], digest: hex.EncodeToString(b[2 : 2+sha256.Size])}
	rest := b[2+sha256.Size:]
	if r.kind == "rotate" {
		rd := &reader{b: rest}
		r.rotate.KID, r.rotate.Previous = string(rd.bytes16()), string(rd.bytes16())
		if rd.bad || len(rd.b) != 0 {
			return opResult{}, fmt.Errorf("%w: bad rotate result", errCorruptOp)
		}
		return r, nil
	}
	if len(rest) == 0 || rest[0] != keyRecordV2 {
		return opResult{}, fmt.Errorf("%w: bad key result", errCorruptOp)
	}
	k, err := decodeKey(rest, 0)
	if err != nil {
		return opResult{}, fmt.Errorf("%w: %v", errCorruptOp, err)
	}
	if slices.ContainsFunc(k.sealed, func(s []byte) bool { return s != nil }) {
		return opResult{}, fmt.Errorf("%w: a key result with sealed seeds", errCorruptOp)
	}
	k.sealed = nil
	r.key = k
	return r, nil
}

// replay looks up an earlier operation with this op_id. It reports true and
// fills out (a *Key or a *RotateResult) when the same request already ran;
// it returns ErrConflict when the op_id answered a different request.
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
	rec, err := decodeOp(it.Value)
	if err != nil {
		return false, err
	}
	if rec.digest != digest {
		return false, fmt.Errorf("%w: op_id %q was used for a different request", ErrConflict, opID)
	}
	switch o := out.(type) {
	case *Key:
		if rec.key == nil {
			return false, fmt.Errorf("%w: a %s result where a key was expected", errCorruptOp, rec.kind)
		}
		*o = *rec.key
	case *RotateResult:
		if rec.key != nil {
			return false, fmt.Errorf("%w: a %s result where a rotation was expected", errCorruptOp, rec.kind)
		}
		*o = rec.rotate
	default:
		panic(fmt.Sprintf("keystore: replay into a %T", out))
	}
	return true, nil
}
