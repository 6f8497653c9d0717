package keystore

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Key records. A key is stored under k/<name> as one record holding its
// metadata and, since record version 2, the sealed seed of every version
// that still has one, so that loading a key is one store read.
//
// Version 1 (written before key records v2) is the JSON of Key, starting
// with '{'; the sealed seed of version n is then a record of its own under
// s/<name>/<n> (sealedPath). Both are still read: a key whose record is
// version 1 is rewritten as version 2 by its next write, or by
// MigrateRecords.
//
// Version 2 is binary, big-endian, every length fixed-width:
//
//	u8   2 (the record version)
//	u8   flags: bit 0 verify-only; the others zero
//	u16  len, name (tenant/purpose/alg/uuid: four non-empty segments)
//	time created_at
//	u32  current, u32 min_verify, u32 destroy_wait_days, u32 auto_rotate_days
//	u8   label count (at most maxLabels), then per label in strictly
//	     increasing order of name: u8 len, name (not empty), u8 len, value
//	u16  version count (at least 1), then per version, numbered 1, 2, ...:
//	     u8 state, u8 origin, time created_at, time destroy_at,
//	     u16 len, public key, u16 len, sealed seed (len 0: none)
//
// where time is i64 Unix seconds and u32 nanoseconds (below 1e9), in UTC;
// the zero time is the seconds of 0001-01-01. A record is at most
// MaxKeyRecordSize bytes and nothing follows its last version.
//
// The sealed seed is the seal package's record, sealed with the binding
// (name, version, alg) as before: moving it into the key record changes
// neither what is authenticated nor how. Nothing else in the record is
// secret.
const keyRecordV2 = 2

// MaxKeyRecordSize bounds the encoding of one key record, all its versions
// included: 1 MiB, below etcd's default request limit of 1.5 MiB with room
// for the rest of a write (an op_id record, a due-index entry). A rotation
// whose record would be larger fails with ErrUnsupported (the key has too
// many versions; make a new key). With the largest public keys (ML-DSA-87,
// 2,592 bytes) that is about 370 versions; Ed25519 allows several thousand.
const MaxKeyRecordSize = 1 << 20

// Codes of states and origins in a version 2 record. 0 is never used.
var (
	stateCodes  = []State{1: Enabled, 2: Disabled, 3: DestroyScheduled, 4: Destroyed}
	originCodes = []Origin{1: OriginGenerated, 2: OriginImported}
)

const flagVerifyOnly = 1

// The times a record holds: from the zero time (year 1) to the end of year
// 9999, the range of RFC 3339 (and of version 1 records), in Unix seconds.
var (
	minRecordTime = time.Time{}.Unix()
	maxRecordTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
)

func validTime(t time.Time) bool {
	return t.Unix() >= minRecordTime && t.Unix() <= maxRecordTime
}

// decodeKey decodes a stored key record of store revision rev: version 2,
// or version 1 (JSON, whose sealed seeds are stored apart: the key reads
// as legacy). Version 1 records written before Version.Origin existed read
// as OriginGenerated, and their times read in UTC. A record that is not
// well formed, whose name is not tenant/purpose/alg/uuid of its own fields,
// whose versions are not numbered 1, 2, ... or whose current version is not
// one of them is errCorruptKey, and no key.
func decodeKey(b []byte, rev int64) (*Key, error) {
	var k *Key
	var err error
	switch {
	case len(b) > 0 && b[0] == keyRecordV2:
		k, err = decodeKeyV2(b)
	case len(b) > 0 && b[0] == '{':
		k, err = decodeKeyV1(b)
	default:
		return nil, fmt.Errorf("%w: unknown record version", errCorruptKey)
	}
	if err != nil {
		return nil, err
	}
	if k.Current == 0 || int(k.Current) > len(k.Versions) {
		return nil, fmt.Errorf("%w %s: current version %d", errCorruptKey, k.Name, k.Current)
	}
	k.revision = rev
	return k, nil
}

// decodeKeyV1 decodes a version 1 (JSON) record.
func decodeKeyV1(b []byte) (*Key, error) {
	var k Key
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorruptKey, err)
	}
	if k.Name != k.Tenant+"/"+k.Purpose+"/"+k.Alg+"/"+k.UUID || splitName(k.Name) == nil {
		return nil, fmt.Errorf("%w: name %q is not its tenant/purpose/alg/uuid", errCorruptKey, k.Name)
	}
	if len(k.Name) > math.MaxUint16 || len(k.Versions) > math.MaxUint16 || checkLabels(k.Labels) != nil {
		return nil, fmt.Errorf("%w %s: too large", errCorruptKey, k.Name)
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if !validTime(k.CreatedAt) {
		return nil, fmt.Errorf("%w %s: time out of range", errCorruptKey, k.Name)
	}
	for i, v := range k.Versions {
		if v.Number != uint32(i+1) {
			return nil, fmt.Errorf("%w %s: version %d at slot %d", errCorruptKey, k.Name, v.Number, i)
		}
		if v.Origin == "" {
			v.Origin = OriginGenerated
		}
		if slices.Index(stateCodes[1:], v.State) < 0 || slices.Index(originCodes[1:], v.Origin) < 0 {
			return nil, fmt.Errorf("%w %s: version %d: state %q, origin %q", errCorruptKey, k.Name, v.Number, v.State, v.Origin)
		}
		if len(v.PublicKey) > math.MaxUint16 {
			return nil, fmt.Errorf("%w %s: version %d: public key too large", errCorruptKey, k.Name, v.Number)
		}
		v.CreatedAt, v.DestroyAt = v.CreatedAt.UTC(), v.DestroyAt.UTC()
		if !validTime(v.CreatedAt) || !validTime(v.DestroyAt) {
			return nil, fmt.Errorf("%w %s: version %d: time out of range", errCorruptKey, k.Name, v.Number)
		}
		k.Versions[i] = v
	}
	if len(k.Labels) == 0 {
		k.Labels = nil
	}
	k.legacy = true
	return &k, nil
}

// splitName returns the four segments of a key name, or nil.
func splitName(name string) []string {
	p := strings.Split(name, "/")
	if len(p) != 4 || slices.Contains(p, "") {
		return nil
	}
	return p
}

// reader reads a version 2 record; the first short read sets bad, and
// every later read returns zero.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) time() time.Time {
	b := r.take(12)
	if b == nil {
		return time.Time{}
	}
	sec, ns := int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint32(b[8:])
	if ns >= 1e9 || sec < minRecordTime || sec > maxRecordTime {
		r.bad = true
		return time.Time{}
	}
	return time.Unix(sec, int64(ns)).UTC()
}

// bytes16 reads a u16 length and that many bytes, copied.
func (r *reader) bytes16() []byte {
	b := r.take(int(r.u16()))
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// decodeKeyV2 decodes a version 2 record (b[0] is keyRecordV2).
func decodeKeyV2(b []byte) (*Key, error) {
	if len(b) > MaxKeyRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", errCorruptKey, len(b), MaxKeyRecordSize)
	}
	r := &reader{b: b[1:]}
	corrupt := func(what string) error { return fmt.Errorf("%w: %s", errCorruptKey, what) }
	flags := r.u8()
	if flags&^flagVerifyOnly != 0 {
		return nil, corrupt("unknown flags")
	}
	var k Key
	k.VerifyOnly = flags&flagVerifyOnly != 0
	k.Name = string(r.take(int(r.u16())))
	seg := splitName(k.Name)
	if r.bad || seg == nil {
		return nil, corrupt("bad name")
	}
	k.Tenant, k.Purpose, k.Alg, k.UUID = seg[0], seg[1], seg[2], seg[3]
	k.CreatedAt = r.time()
	k.Current, k.MinVerify, k.DestroyWaitDays, k.AutoRotateDays = r.u32(), r.u32(), r.u32(), r.u32()
	nl := int(r.u8())
	if nl > maxLabels {
		return nil, corrupt("too many labels")
	}
	prev := ""
	for i := 0; i < nl && !r.bad; i++ {
		name := string(r.take(int(r.u8())))
		value := string(r.take(int(r.u8())))
		if r.bad || name == "" || len(name) > maxLabelLen || len(value) > maxLabelLen || (i > 0 && name <= prev) {
			return nil, corrupt("bad labels")
		}
		if k.Labels == nil {
			k.Labels = make(map[string]string, nl)
		}
		k.Labels[name], prev = value, name
	}
	nv := int(r.u16())
	// Each version takes at least 30 bytes: no count the record cannot
	// hold makes an allocation.
	if r.bad || nv == 0 || nv > len(r.b)/30 {
		return nil, corrupt("bad version count")
	}
	k.Versions = make([]Version, nv)
	k.sealed = make([][]byte, nv)
	for i := range k.Versions {
		v := &k.Versions[i]
		v.Number = uint32(i + 1)
		st, or := int(r.u8()), int(r.u8())
		if r.bad || st == 0 || st >= len(stateCodes) || or == 0 || or >= len(originCodes) {
			return nil, corrupt("bad version state or origin")
		}
		v.State, v.Origin = stateCodes[st], originCodes[or]
		v.CreatedAt, v.DestroyAt = r.time(), r.time()
		v.PublicKey = r.bytes16()
		if s := r.bytes16(); len(s) > 0 {
			k.sealed[i] = s
		}
		if r.bad {
			return nil, corrupt("truncated version")
		}
	}
	if len(r.b) != 0 {
		return nil, corrupt("trailing bytes")
	}
	return &k, nil
}

// writer appends a version 2 record.
type writer struct{ b []byte }

func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u16(v uint16) { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32) { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) time(t time.Time) {
	w.b = binary.BigEndian.AppendUint64(w.b, uint64(t.Unix()))
	w.b = binary.BigEndian.AppendUint32(w.b, uint32(t.Nanosecond()))
}
func (w *writer) bytes16(b []byte) { w.u16(uint16(len(b))); w.b = append(w.b, b...) }

// encode returns k's version 2 record, its sealed seeds included. A key
// whose record would be larger than MaxKeyRecordSize is ErrUnsupported. k
// must satisfy what decodeKey checks (every key the keystore makes does;
// one read from the store was checked by decodeKey, and a legacy one must
// have had its sealed seeds read, see fetchForWrite): anything else is a
// programmer error and panics.
func (k *Key) encode() ([]byte, error) {
	if k.legacy && k.sealed == nil && !k.VerifyOnly {
		panic("keystore: encoding a version 1 key whose sealed seeds were not read")
	}
	w := &writer{b: make([]byte, 0, 64+len(k.Name)+len(k.Versions)*160)}
	w.u8(keyRecordV2)
	var flags uint8
	if k.VerifyOnly {
		flags |= flagVerifyOnly
	}
	w.u8(flags)
	w.bytes16([]byte(k.Name))
	w.time(k.CreatedAt)
	w.u32(k.Current)
	w.u32(k.MinVerify)
	w.u32(k.DestroyWaitDays)
	w.u32(k.AutoRotateDays)
	names := make([]string, 0, len(k.Labels))
	for n := range k.Labels {
		names = append(names, n)
	}
	slices.Sort(names)
	w.u8(uint8(len(names)))
	for _, n := range names {
		w.u8(uint8(len(n)))
		w.b = append(w.b, n...)
		w.u8(uint8(len(k.Labels[n])))
		w.b = append(w.b, k.Labels[n]...)
	}
	if len(k.Versions) > math.MaxUint16 {
		return nil, k.tooLarge()
	}
	w.u16(uint16(len(k.Versions)))
	for i, v := range k.Versions {
		st, or := slices.Index(stateCodes, v.State), slices.Index(originCodes, v.Origin)
		if v.Origin == "" {
			or = 1 // none: generated, as decodeKey reads it
		}
		if st <= 0 || or <= 0 || v.Number != uint32(i+1) {
			panic(fmt.Sprintf("keystore: encoding version %d of %s: state %q, origin %q", v.Number, k.Name, v.State, v.Origin))
		}
		w.u8(uint8(st))
		w.u8(uint8(or))
		w.time(v.CreatedAt)
		w.time(v.DestroyAt)
		w.bytes16(v.PublicKey)
		var s []byte
		if i < len(k.sealed) {
			s = k.sealed[i]
		}
		if len(s) > math.MaxUint16 {
			return nil, k.tooLarge()
		}
		w.bytes16(s)
		if len(w.b) > MaxKeyRecordSize {
			return nil, k.tooLarge()
		}
	}
	return w.b, nil
}

func (k *Key) tooLarge() error {
	return fmt.Errorf("%w: %s has %d versions, more than one key record holds (%d bytes); make a new key", ErrUnsupported, k.Name, len(k.Versions), MaxKeyRecordSize)
}

// sealedSeed returns the sealed seed of version n held in the record, and
// whether the record holds the seeds at all (false for a version 1 record:
// the seed is under sealedPath).
func (k *Key) sealedSeed(n uint32) ([]byte, bool) {
	if k.legacy && k.sealed == nil {
		return nil, false
	}
	if n == 0 || int(n) > len(k.sealed) {
		return nil, true
	}
	return k.sealed[n-1], true
}

// SealedVersions returns the numbers of the versions whose sealed seed the
// stored key record b holds, in order, for tools and tests that inspect a
// store or a backup. A version 1 record holds none (its seeds are stored
// apart, under s/<name>/<version>). A record that does not decode is an
// error wrapping the same corrupt-record error every read of it gives.
// Nothing secret is read or returned.
func SealedVersions(b []byte) ([]uint32, error) {
	k, err := decodeKey(b, 0)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for i, s := range k.sealed {
		if len(s) > 0 {
			out = append(out, uint32(i+1))
		}
	}
	return out, nil
}
