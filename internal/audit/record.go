package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/zeebo/blake3"
)

// HashSize is the size of a record hash, a chain link and input_b3: 32 bytes
// of BLAKE3-256.
const HashSize = 32

// Results a record commonly carries. Result is free-form; these are the
// values the server writes.
const (
	ResultOK     = "ok"     // the operation succeeded
	ResultDenied = "denied" // the caller was not allowed (Code says why)
	ResultError  = "error"  // the operation failed (Code says how)
	// ResultPartial is the result of a batch record (Record.Items) some of
	// whose items did not end ok; each item says how it ended.
	ResultPartial = "partial"
)

// Record is one audited operation (SPEC §9). The caller fills in what
// happened; Append assigns Seq, Prev and Hash (any values the caller set are
// replaced), sets TS to the current time if it is zero, and stores every
// string as valid UTF-8 (invalid bytes become U+FFFD).
//
// A record never holds a secret: InputB3 is a hash of what was signed or
// verified, or of the ciphertext or envelope of a data operation (encrypt,
// decrypt, wrap, unwrap), never of a plaintext or a key; Actor is the token's
// identifier, never the token.
type Record struct {
	Seq       uint64    // 1 for the first record of the log, then +1, no gaps
	TS        time.Time // when the operation happened; stored in UTC, RFC 3339 with nanoseconds
	Op        string    // "sign", "create", ...; required
	Tenant    string    // may be empty (e.g. a denial before the kid parsed)
	Kid       string    // may be empty
	Alg       string    // may be empty
	InputB3   []byte    // BLAKE3-256 of the input (HashSize bytes), or empty when there is none
	Result    string    // ResultOK, ResultDenied, ResultError, ...; required
	Code      string    // error code of SPEC §4.1; empty (and omitted) on success
	RequestID string
	Actor     string // the token identifier
	// Count is how many operations the record stands for when it is more
	// than one: repeated denials of one source collapsed into one record
	// (the record then describes a sample of them). 0 (omitted) means one.
	Count uint64
	// Detail is free-form context an operation adds, such as the id and
	// caveats of a minted token; empty (and omitted) when there is none. It
	// never holds a secret.
	Detail string
	// Node is the id of the ron-kms node that wrote the record (serve
	// --node-id): every node of a cluster keeps its own chain. The log
	// assigns it (Options.Node; any value the caller set is replaced);
	// empty, and then omitted from the JSON, for a log without a node id,
	// so logs written before nodes had ids still verify.
	Node string
	// Items are the items of a batch request (/sign/batch, /verify/batch)
	// that this one record stands for, in request order (SPEC §9); nil
	// (and then omitted from the JSON) for any other record, so records
	// written before batches had one record still read and verify the same.
	// Each item names its key and input hash and says how it ended; the
	// record's own Result, Kid and InputB3 summarize the batch (see the
	// package documentation). Append does not modify the caller's slice.
	Items []Item
	Prev  [HashSize]byte // Hash of the previous record; zero for seq 1
	Hash  [HashSize]byte // BLAKE3-256(Prev ‖ canonical JSON of the record without "hash")
}

// Item is one item of a batch record (Record.Items). Like a record it
// holds no secret: InputB3 is the BLAKE3-256 of what the item signed or
// verified, never the input.
type Item struct {
	Kid     string // the key the item named, with the version that served it when known; may be empty (a kid that did not parse)
	InputB3 []byte // BLAKE3-256 of the item's input (HashSize bytes), or empty when it had none
	Result  string // ResultOK, ResultError, "invalid", ...; required
	Code    string // error code of SPEC §4.1; empty (and omitted) on success
}

// appendJSON appends it as a canonical JSON object,
// `{"code":...,"input_b3":...,"kid":...,"result":...}`
// ("code" only when set).
func (it *Item) appendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	if it.Code != "" {
		dst = append(dst, `"code":`...)
		dst = appendString(dst, it.Code)
		dst = append(dst, ',')
	}
	dst = append(dst, `"input_b3":"`...)
	dst = hex.AppendEncode(dst, it.InputB3)
	dst = append(dst, `","kid":`...)
	dst = appendString(dst, it.Kid)
	dst = append(dst, `,"result":`...)
	dst = appendString(dst, it.Result)
	return append(dst, '}')
}

// appendHead appends the members of r's canonical JSON that sort before
// "hash": `{"actor":...,"alg":...`, and "code", "count" and "detail" when
// they are set.
func (r *Record) appendHead(dst []byte) []byte {
	dst = append(dst, `{"actor":`...)
	dst = appendString(dst, r.Actor)
	dst = append(dst, `,"alg":`...)
	dst = appendString(dst, r.Alg)
	if r.Code != "" {
		dst = append(dst, `,"code":`...)
		dst = appendString(dst, r.Code)
	}
	if r.Count != 0 {
		dst = append(dst, `,"count":`...)
		dst = strconv.AppendUint(dst, r.Count, 10)
	}
	if r.Detail != "" {
		dst = append(dst, `,"detail":`...)
		dst = appendString(dst, r.Detail)
	}
	return dst
}

// appendTail appends the members that sort after "hash", from "input_b3"
// to "ts" ("items" and "node" only when set), and the closing brace. Hex,
// the sequence number and the time need no escaping, so they are written as
// they are.
func (r *Record) appendTail(dst []byte) []byte {
	dst = append(dst, `,"input_b3":"`...)
	dst = hex.AppendEncode(dst, r.InputB3)
	dst = append(dst, '"')
	if len(r.Items) != 0 {
		dst = append(dst, `,"items":[`...)
		for i := range r.Items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = r.Items[i].appendJSON(dst)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"kid":`...)
	dst = appendString(dst, r.Kid)
	if r.Node != "" {
		dst = append(dst, `,"node":`...)
		dst = appendString(dst, r.Node)
	}
	dst = append(dst, `,"op":`...)
	dst = appendString(dst, r.Op)
	dst = append(dst, `,"prev":"`...)
	dst = hex.AppendEncode(dst, r.Prev[:])
	dst = append(dst, `","request_id":`...)
	dst = appendString(dst, r.RequestID)
	dst = append(dst, `,"result":`...)
	dst = appendString(dst, r.Result)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"tenant":`...)
	dst = appendString(dst, r.Tenant)
	dst = append(dst, `,"ts":"`...)
	dst = r.TS.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, `"}`...)
}

// appendHashMember appends `,"hash":"<hex of r.Hash>"`.
func (r *Record) appendHashMember(dst []byte) []byte {
	dst = append(dst, `,"hash":"`...)
	dst = hex.AppendEncode(dst, r.Hash[:])
	return append(dst, '"')
}

// ComputeHash returns BLAKE3-256(r.Prev ‖ canonical JSON of r without its
// "hash" member), where r.Prev is the 32 raw bytes (in the JSON it is hex).
// The canonical JSON is what appendCanonical writes for r's members; a test
// holds the two encodings together.
func (r *Record) ComputeHash() [HashSize]byte {
	b := append(make([]byte, 0, 512), r.Prev[:]...)
	return blake3.Sum256(r.appendTail(r.appendHead(b)))
}

// seal sets r.Hash (ComputeHash) and appends r's log line (appendLine),
// encoding r once: the line is the hashed encoding with the "hash" member
// put in its sorted place, between the head and the tail. scratch is
// reused between calls; seal returns it.
func (r *Record) seal(dst, scratch []byte) (line, scratchOut []byte) {
	b := append(scratch[:0], r.Prev[:]...)
	b = r.appendHead(b)
	mark := len(b)
	b = r.appendTail(b)
	r.Hash = blake3.Sum256(b)
	dst = append(dst, b[HashSize:mark]...)
	dst = r.appendHashMember(dst)
	dst = append(dst, b[mark:]...)
	return append(dst, '\n'), b
}

// appendLine appends r's log line: its canonical JSON with "hash", and "\n".
func (r *Record) appendLine(dst []byte) []byte {
	dst = r.appendTail(r.appendHashMember(r.appendHead(dst)))
	return append(dst, '\n')
}

// normalize makes r storable: valid UTF-8, UTC time without a monotonic
// reading. It reports a record the log refuses.
func (r *Record) normalize(now time.Time) error {
	if r.Op == "" || r.Result == "" {
		return fmt.Errorf("%w: op and result are required", ErrInvalidRecord)
	}
	if len(r.InputB3) != 0 && len(r.InputB3) != HashSize {
		return fmt.Errorf("%w: input_b3 is %d bytes, want %d or none", ErrInvalidRecord, len(r.InputB3), HashSize)
	}
	for _, s := range []*string{&r.Op, &r.Tenant, &r.Kid, &r.Alg, &r.Result, &r.Code, &r.RequestID, &r.Actor, &r.Detail, &r.Node} {
		if !utf8.ValidString(*s) {
			*s = strings.ToValidUTF8(*s, "\uFFFD")
		}
	}
	if err := r.normalizeItems(); err != nil {
		return err
	}
	if r.TS.IsZero() {
		r.TS = now
	}
	r.TS = r.TS.UTC().Round(0)
	return nil
}

// normalizeItems checks r's items and makes their strings valid UTF-8, on a
// copy of the slice if anything has to change, so that the caller's items
// stay as they were.
func (r *Record) normalizeItems() error {
	copied := false
	for i := range r.Items {
		it := &r.Items[i]
		if it.Result == "" {
			return fmt.Errorf("%w: item %d: result is required", ErrInvalidRecord, i)
		}
		if len(it.InputB3) != 0 && len(it.InputB3) != HashSize {
			return fmt.Errorf("%w: item %d: input_b3 is %d bytes, want %d or none", ErrInvalidRecord, i, len(it.InputB3), HashSize)
		}
		if utf8.ValidString(it.Kid) && utf8.ValidString(it.Result) && utf8.ValidString(it.Code) {
			continue
		}
		if !copied {
			r.Items, copied = slices.Clone(r.Items), true
			it = &r.Items[i]
		}
		for _, s := range []*string{&it.Kid, &it.Result, &it.Code} {
			*s = strings.ToValidUTF8(*s, "\uFFFD")
		}
	}
	return nil
}

// Checkpoint is a signed statement that the chain reached record Seq with
// hash Hash while the key store was at generation StoreGeneration. It is
// its own kind of line, not a record: it has no seq of its own and is not
// chained; it commits to the record just before it (Seq 0 and a zero Hash
// before the first record). Checkpoints are numbered 1, 2, 3, ... (N) so
// that a dropped one is noticed.
type Checkpoint struct {
	N               uint64 // ordinal of this checkpoint in the log, from 1 ("checkpoint")
	Seq             uint64 // seq of the last record before the checkpoint
	Hash            [HashSize]byte
	StoreGeneration uint64
	Every           uint64 // the writer's checkpoint interval: at most Every records follow before the next checkpoint
	Reason          string // ReasonOpen, ReasonEvery, ReasonClose or ReasonRecover
	// Node is the id of the node whose log this is (Options.Node); empty,
	// and then omitted from the JSON, for a log without a node id.
	Node string
	TS   time.Time
	Sig  []byte // Ed25519 over checkpointContext ‖ canonical JSON without "sig"
}

// Why a checkpoint was written.
const (
	ReasonOpen    = "open"    // Open, before the run's first record; announces Every
	ReasonEvery   = "every"   // after every Every records
	ReasonClose   = "close"   // Close; a log that does not end with one was not closed cleanly
	ReasonRecover = "recover" // the log became writable again after a failure
)

// checkpointContext separates checkpoint signatures from every other use of
// the audit key.
const checkpointContext = "ron-kms audit checkpoint v1\n"

func (c *Checkpoint) fields(buf []field, withSig bool) []field {
	buf = append(buf[:0],
		numField("checkpoint", c.N),
		numField("every", c.Every),
		strField("hash", hex.EncodeToString(c.Hash[:])),
		strField("reason", c.Reason),
		numField("seq", c.Seq),
		numField("store_generation", c.StoreGeneration),
		strField("ts", formatTime(c.TS)),
	)
	if c.Node != "" {
		buf = append(buf, strField("node", c.Node))
	}
	if withSig {
		buf = append(buf, strField("sig", hex.EncodeToString(c.Sig)))
	}
	return buf
}

// signedMessage returns the bytes the checkpoint signature covers.
func (c *Checkpoint) signedMessage() []byte {
	var fs [9]field
	return appendCanonical([]byte(checkpointContext), c.fields(fs[:0], false))
}

func (c *Checkpoint) appendLine(dst []byte) []byte {
	var fs [9]field
	dst = appendCanonical(dst, c.fields(fs[:0], true))
	return append(dst, '\n')
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// wireLine is every member a line may have; parseLine decides the kind.
type wireLine struct {
	Actor           *string    `json:"actor"`
	Alg             *string    `json:"alg"`
	Checkpoint      *uint64    `json:"checkpoint"`
	Code            *string    `json:"code"`
	Count           *uint64    `json:"count"`
	Detail          *string    `json:"detail"`
	Every           *uint64    `json:"every"`
	Hash            *string    `json:"hash"`
	InputB3         *string    `json:"input_b3"`
	Items           []wireItem `json:"items"`
	Kid             *string    `json:"kid"`
	Node            *string    `json:"node"`
	Op              *string    `json:"op"`
	Prev            *string    `json:"prev"`
	Reason          *string    `json:"reason"`
	RequestID       *string    `json:"request_id"`
	Result          *string    `json:"result"`
	Seq             *uint64    `json:"seq"`
	Sig             *string    `json:"sig"`
	StoreGeneration *uint64    `json:"store_generation"`
	Tenant          *string    `json:"tenant"`
	TS              *string    `json:"ts"`
}

// wireItem is every member an item of "items" may have.
type wireItem struct {
	Code    *string `json:"code"`
	InputB3 *string `json:"input_b3"`
	Kid     *string `json:"kid"`
	Result  *string `json:"result"`
}

// errMalformed is wrapped by every parseLine error.
var errMalformed = errors.New("malformed line")

// parseLine parses one log line (without its "\n") into a record or a
// checkpoint; exactly one result is non-nil on success. Parsing is strict: a
// line is accepted only if re-encoding what was parsed gives the same bytes,
// which rules out unknown or duplicate members, other key order or case,
// white space, needless escapes, upper-case hex and other time forms.
func parseLine(line []byte) (*Record, *Checkpoint, error) {
	var w wireLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errMalformed, err)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("%w: data after the JSON object", errMalformed)
	}
	ts, err := parseTime(w.TS)
	if err != nil {
		return nil, nil, err
	}
	var again []byte
	if w.Checkpoint != nil {
		c := &Checkpoint{N: *w.Checkpoint, Every: u64(w.Every), Reason: str(w.Reason), Seq: u64(w.Seq),
			StoreGeneration: u64(w.StoreGeneration), Node: str(w.Node), TS: ts}
		if c.Hash, err = parseHash("hash", w.Hash); err != nil {
			return nil, nil, err
		}
		if c.Sig, err = hex.DecodeString(str(w.Sig)); err != nil {
			return nil, nil, fmt.Errorf("%w: sig: %v", errMalformed, err)
		}
		again = c.appendLine(make([]byte, 0, len(line)+1))
		if !bytes.Equal(again[:len(again)-1], line) {
			return nil, nil, fmt.Errorf("%w: not a canonical checkpoint", errMalformed)
		}
		return nil, c, nil
	}
	r := &Record{Seq: u64(w.Seq), TS: ts, Op: str(w.Op), Tenant: str(w.Tenant), Kid: str(w.Kid),
		Alg: str(w.Alg), Result: str(w.Result), Code: str(w.Code), RequestID: str(w.RequestID), Actor: str(w.Actor),
		Count: u64(w.Count), Detail: str(w.Detail), Node: str(w.Node)}
	if r.InputB3, err = hex.DecodeString(str(w.InputB3)); err != nil || (len(r.InputB3) != 0 && len(r.InputB3) != HashSize) {
		return nil, nil, fmt.Errorf("%w: input_b3 is not empty or %d bytes of hex", errMalformed, HashSize)
	}
	if len(r.InputB3) == 0 {
		r.InputB3 = nil
	}
	if r.Items, err = parseItems(w.Items); err != nil {
		return nil, nil, err
	}
	if r.Prev, err = parseHash("prev", w.Prev); err != nil {
		return nil, nil, err
	}
	if r.Hash, err = parseHash("hash", w.Hash); err != nil {
		return nil, nil, err
	}
	again = r.appendLine(make([]byte, 0, len(line)+1))
	if !bytes.Equal(again[:len(again)-1], line) {
		return nil, nil, fmt.Errorf("%w: not a canonical record", errMalformed)
	}
	return r, nil, nil
}

// parseItems converts the items of a line; the caller's re-encoding check
// rejects whatever they do not say canonically (an empty "items", a missing
// member).
func parseItems(ws []wireItem) ([]Item, error) {
	if len(ws) == 0 {
		return nil, nil
	}
	items := make([]Item, len(ws))
	for i, w := range ws {
		it := Item{Kid: str(w.Kid), Result: str(w.Result), Code: str(w.Code)}
		b, err := hex.DecodeString(str(w.InputB3))
		if err != nil || (len(b) != 0 && len(b) != HashSize) {
			return nil, fmt.Errorf("%w: items[%d]: input_b3 is not empty or %d bytes of hex", errMalformed, i, HashSize)
		}
		if len(b) != 0 {
			it.InputB3 = b
		}
		items[i] = it
	}
	return items, nil
}

func parseTime(s *string) (time.Time, error) {
	if s == nil {
		return time.Time{}, fmt.Errorf("%w: no ts", errMalformed)
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: ts: %v", errMalformed, err)
	}
	return t, nil
}

func parseHash(name string, s *string) (h [HashSize]byte, err error) {
	if s == nil || len(*s) != 2*HashSize {
		return h, fmt.Errorf("%w: %s is not %d bytes of hex", errMalformed, name, HashSize)
	}
	if _, err := hex.Decode(h[:], []byte(*s)); err != nil {
		return h, fmt.Errorf("%w: %s: %v", errMalformed, name, err)
	}
	return h, nil
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func u64(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}
