package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"lukechampine.com/blake3"
)

// jsonCanonical is the reference: encoding/json on a map (which sorts keys),
// without HTML escaping.
func jsonCanonical(t testing.TB, fields []field) []byte {
	m := map[string]any{}
	for _, f := range fields {
		if f.isNum {
			m[f.key] = f.num
		} else {
			m[f.key] = f.str
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

var tricky = []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\rcr",
	"\b\f\x00\x01\x1f\x7f", "\u2028\u2029", "é ü 日本 🙂", "bad \xff utf8 \xc3", "\ufffd", "/slash/", "a\u0000b"}

func TestCanonicalMatchesEncodingJSON(t *testing.T) {
	for _, s := range tricky {
		fs := []field{strField("z", s), strField("a", s), numField("m", 7)}
		want := jsonCanonical(t, fs)
		got := appendCanonical(nil, fs)
		if !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("abcXYZ09 \"\\/<>&\t\n\x00\x1f\x7fé日\u2028\u2029🙂")
	for range 2000 {
		var fs []field
		seen := map[string]bool{}
		for range 1 + rng.IntN(14) {
			k := randString(rng, []rune("abcdefghij_"), 1+rng.IntN(8))
			if seen[k] {
				continue
			}
			seen[k] = true
			if rng.IntN(3) == 0 {
				fs = append(fs, numField(k, []uint64{0, 1, math.MaxUint64, rng.Uint64()}[rng.IntN(4)]))
			} else {
				s := randString(rng, alphabet, rng.IntN(20))
				if rng.IntN(10) == 0 {
					s += "\xff"
				}
				fs = append(fs, strField(k, s))
			}
		}
		want := jsonCanonical(t, fs)
		if got := appendCanonical(nil, fs); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	}
}

func randString(rng *rand.Rand, alphabet []rune, n int) string {
	var sb strings.Builder
	for range n {
		sb.WriteRune(alphabet[rng.IntN(len(alphabet))])
	}
	return sb.String()
}

func FuzzCanonical(f *testing.F) {
	for _, s := range tricky {
		f.Add(s, uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, s string, n uint64) {
		fs := []field{strField("s", s), numField("n", n), strField("k", "v")}
		if got, want := appendCanonical(nil, fs), jsonCanonical(t, fs); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}

// TestRecordHash recomputes a record's hash the long way: encoding/json on a
// map, BLAKE3 from the reference-independent blake3 package API.
func TestRecordHash(t *testing.T) {
	r := testRecord(1)
	r.Seq = 9
	r.Code = "NoCapability"
	r.Result = ResultDenied
	r.TS = time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	for i := range r.Prev {
		r.Prev[i] = byte(i)
	}
	m := map[string]any{"seq": 9, "ts": "2026-05-01T12:00:00.123456789Z", "op": "sign", "tenant": r.Tenant, "kid": r.Kid,
		"alg": "ed25519", "input_b3": hex.EncodeToString(r.InputB3), "result": "denied", "code": "NoCapability",
		"request_id": r.RequestID, "actor": r.Actor, "prev": hex.EncodeToString(r.Prev[:])}
	j, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := blake3.Sum256(append(r.Prev[:], j...))
	if got := r.ComputeHash(); got != want {
		t.Fatalf("hash %x, want %x", got, want)
	}
	r.Hash = want
	m["hash"] = hex.EncodeToString(want[:])
	line, _ := json.Marshal(m)
	if got := r.appendLine(nil); string(got) != string(line)+"\n" {
		t.Fatalf("line\n%s\nwant\n%s", got, line)
	}
	// Without a code, the member is absent.
	r.Code = ""
	if bytes.Contains(r.appendLine(nil), []byte(`"code"`)) {
		t.Fatal("empty code was written")
	}
	if bytes.Contains(r.appendLine(nil), []byte(`"node"`)) {
		t.Fatal("empty node was written")
	}
	// With a node id, "node" is a member like any other, in its sorted place.
	delete(m, "code")
	delete(m, "hash")
	r.Node = "node-0a1b2c3d"
	m["node"] = r.Node
	j, err = json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.ComputeHash(), blake3.Sum256(append(r.Prev[:], j...)); got != want {
		t.Fatalf("hash with a node %x, want %x", got, want)
	}
}

func TestParseLineStrict(t *testing.T) {
	r := testRecord(3)
	r.Seq, r.TS = 3, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	r.Hash = r.ComputeHash()
	good := bytes.TrimSuffix(r.appendLine(nil), []byte("\n"))
	got, cp, err := parseLine(good)
	if err != nil || cp != nil || got.ComputeHash() != r.Hash || got.Kid != r.Kid || !got.TS.Equal(r.TS) {
		t.Fatalf("parse good line: %v %+v", err, got)
	}
	c := Checkpoint{N: 1, Seq: 3, Hash: r.Hash, StoreGeneration: 5, Every: 10, Reason: ReasonEvery, TS: r.TS, Sig: make([]byte, 64)}
	goodCP := bytes.TrimSuffix(c.appendLine(nil), []byte("\n"))
	if _, cp, err := parseLine(goodCP); err != nil || cp == nil || cp.StoreGeneration != 5 {
		t.Fatalf("parse good checkpoint: %v", err)
	}
	nr, nc := r, c
	nr.Node, nc.Node = "node-0a1b2c3d", "node-0a1b2c3d"
	nr.Hash = nr.ComputeHash()
	nodeLine := bytes.TrimSuffix(nr.appendLine(nil), []byte("\n"))
	nodeCP := bytes.TrimSuffix(nc.appendLine(nil), []byte("\n"))
	if got, _, err := parseLine(nodeLine); err != nil || got.Node != nr.Node || got.ComputeHash() != nr.Hash {
		t.Fatalf("parse a record with a node: %v %+v", err, got)
	}
	if _, cp, err := parseLine(nodeCP); err != nil || cp.Node != nc.Node {
		t.Fatalf("parse a checkpoint with a node: %v %+v", err, cp)
	}
	s := string(good)
	bad := map[string]string{
		"space":            strings.Replace(s, `,"alg"`, `, "alg"`, 1),
		"upper hex":        strings.Replace(s, hex.EncodeToString(r.Hash[:]), strings.ToUpper(hex.EncodeToString(r.Hash[:])), 1),
		"key case":         strings.Replace(s, `"actor"`, `"Actor"`, 1),
		"duplicate":        strings.Replace(s, `{"actor":"`, `{"actor":"x","actor":"`, 1),
		"unknown":          strings.Replace(s, `{"actor"`, `{"zzz":"1","actor"`, 1),
		"order":            `{"alg":"ed25519",` + strings.Replace(s[1:], `"alg":"ed25519",`, "", 1),
		"empty code":       strings.Replace(s, `,"hash"`, `,"code":"","hash"`, 1),
		"needless escape":  strings.Replace(s, `"op":"sign"`, `"op":"\u0073ign"`, 1),
		"offset time":      strings.Replace(s, `Z"`, `+00:00"`, 1),
		"float seq":        strings.Replace(s, `"seq":3`, `"seq":3.0`, 1),
		"missing tenant":   strings.Replace(s, `"tenant":"acme",`, ``, 1),
		"short input":      strings.Replace(s, `"input_b3":"`, `"input_b3":"00`, 1),
		"trailing garbage": s + " x",
		"two objects":      s + s,
		"empty":            "",
		"cp without sig":   strings.Replace(string(goodCP), `,"sig":"`+strings.Repeat("00", 64)+`"`, ``, 1),
		"empty node":       strings.Replace(s, `,"op"`, `,"node":"","op"`, 1),
		"node out of order": strings.Replace(strings.Replace(string(nodeLine), `,"node":"node-0a1b2c3d"`, ``, 1),
			`,"ts"`, `,"node":"node-0a1b2c3d","ts"`, 1),
		"cp empty node": strings.Replace(string(goodCP), `,"reason"`, `,"node":"","reason"`, 1),
	}
	for name, line := range bad {
		if line == s {
			t.Fatalf("%s: mutation did nothing", name)
		}
		if _, _, err := parseLine([]byte(line)); err == nil {
			t.Errorf("%s: accepted %s", name, line)
		}
	}
}

// FuzzParseLine: whatever parses re-encodes to the same bytes, and nothing
// panics.
func FuzzParseLine(f *testing.F) {
	r := testRecord(1)
	r.Seq = 1
	r.Hash = r.ComputeHash()
	f.Add(bytes.TrimSuffix(r.appendLine(nil), []byte("\n")))
	c := Checkpoint{N: 1, Every: 1000, Reason: ReasonOpen, Sig: make([]byte, 64)}
	f.Add(bytes.TrimSuffix(c.appendLine(nil), []byte("\n")))
	r.Node, c.Node = "node-0a1b2c3d", "node-0a1b2c3d"
	r.Hash = r.ComputeHash()
	f.Add(bytes.TrimSuffix(r.appendLine(nil), []byte("\n")))
	f.Add(bytes.TrimSuffix(c.appendLine(nil), []byte("\n")))
	b := testBatchRecord(3)
	b.Seq = 2
	b.Hash = b.ComputeHash()
	f.Add(bytes.TrimSuffix(b.appendLine(nil), []byte("\n")))
	b.Items = b.Items[:1]
	b.Items[0].Kid = "bad \xff kid \u2028"
	b.Hash = b.ComputeHash()
	f.Add(bytes.TrimSuffix(b.appendLine(nil), []byte("\n")))
	f.Add(realBatchLine(f))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, cp, err := parseLine(line)
		if err != nil {
			return
		}
		var again []byte
		if rec != nil {
			again = rec.appendLine(nil)
			// The direct encoder against the generic one.
			if gen := appendCanonical(nil, recordFields(rec, true)); !bytes.Equal(again, append(gen, '\n')) {
				t.Fatalf("record %q: appendLine %q, generic %q", line, again, gen)
			}
		} else {
			again = cp.appendLine(nil)
		}
		if !bytes.Equal(again, append(bytes.Clone(line), '\n')) {
			t.Fatalf("parsed %q re-encodes to %q", line, again)
		}
	})
}
