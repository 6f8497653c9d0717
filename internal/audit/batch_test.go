package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"lukechampine.com/blake3"
)

// realBatchLine is a batch record as a ron-kms server wrote it (a sign
// batch of three items: one signed, one for a missing key, one whose kid
// did not parse), without its "\n".
func realBatchLine(t testing.TB) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "batch-record.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// TestRealBatchLine: the line a server wrote parses, re-encodes to itself
// and hashes to its own hash.
func TestRealBatchLine(t *testing.T) {
	line := realBatchLine(t)
	r, _, err := parseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	if r.ComputeHash() != r.Hash {
		t.Fatal("the written batch record does not hash to its hash")
	}
	if got := r.appendLine(nil); !bytes.Equal(got, append(bytes.Clone(line), '\n')) {
		t.Fatalf("re-encoded as\n%s", got)
	}
	if len(r.Items) != 3 || r.Count != 3 || r.Result != ResultPartial || r.Items[1].Code != "NotFound" || r.Items[2].InputB3 != nil {
		t.Fatalf("parsed as %+v", r)
	}
}

// testBatchRecord is the one record of a batch of n items, as the server
// writes it: every third item failed, the others carry their input hash.
func testBatchRecord(n int) Record {
	r := Record{Op: "sign_batch", Tenant: "acme", Alg: "ed25519", Result: ResultPartial, RequestID: "req-batch",
		Actor: "00112233445566778899aabbccddeeff", Count: uint64(n)}
	for i := range n {
		in := blake3.Sum256([]byte(fmt.Sprint("item ", i)))
		it := Item{Kid: fmt.Sprintf("acme/pay/ed25519/0190b1d6-3f3c-7c3e-9a4e-1f2a3b4c5d%02x#v1", i), InputB3: in[:], Result: ResultOK}
		if i%3 == 2 {
			it.Result, it.Code = ResultError, "NotFound"
		}
		r.Items = append(r.Items, it)
	}
	return r
}

// TestBatchRecordEncoding: a record with items hashes and encodes as
// encoding/json writes the same members (a map with an array of maps),
// parses back to the same items, and one without items is unchanged.
func TestBatchRecordEncoding(t *testing.T) {
	r := testBatchRecord(4)
	r.Seq, r.TS = 7, time.Date(2026, 5, 1, 12, 0, 0, 5, time.UTC)
	for i := range r.Prev {
		r.Prev[i] = byte(i)
	}
	items := make([]any, len(r.Items))
	for i, it := range r.Items {
		m := map[string]any{"kid": it.Kid, "input_b3": hex.EncodeToString(it.InputB3), "result": it.Result}
		if it.Code != "" {
			m["code"] = it.Code
		}
		items[i] = m
	}
	m := map[string]any{"seq": 7, "ts": "2026-05-01T12:00:00.000000005Z", "op": "sign_batch", "tenant": "acme", "kid": "",
		"alg": "ed25519", "input_b3": "", "result": ResultPartial, "request_id": r.RequestID, "actor": r.Actor,
		"prev": hex.EncodeToString(r.Prev[:]), "count": 4, "items": items}
	j, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := blake3.Sum256(append(r.Prev[:], j...))
	if got := r.ComputeHash(); got != want {
		t.Fatalf("hash %x, want %x\n%s", got, want, j)
	}
	r.Hash = want
	m["hash"] = hex.EncodeToString(want[:])
	line, _ := json.Marshal(m)
	got := r.appendLine(nil)
	if string(got) != string(line)+"\n" {
		t.Fatalf("line\n%s\nwant\n%s", got, line)
	}
	back, _, err := parseLine(bytes.TrimSuffix(got, []byte("\n")))
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Items) != len(r.Items) {
		t.Fatalf("parsed %d items, want %d", len(back.Items), len(r.Items))
	}
	for i := range r.Items {
		a, b := back.Items[i], r.Items[i]
		if a.Kid != b.Kid || !bytes.Equal(a.InputB3, b.InputB3) || a.Result != b.Result || a.Code != b.Code {
			t.Errorf("item %d parsed as %+v, want %+v", i, a, b)
		}
	}
	if back.ComputeHash() != r.Hash {
		t.Fatal("the parsed record hashes differently")
	}
	r.Items = nil
	if bytes.Contains(r.appendLine(nil), []byte(`"items"`)) {
		t.Fatal("a record without items wrote an items member")
	}
}

// TestBatchRecordParseStrict: each way of writing items other than the
// canonical one is refused.
func TestBatchRecordParseStrict(t *testing.T) {
	r := testBatchRecord(3)
	r.Seq, r.TS = 3, time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	r.Hash = r.ComputeHash()
	s := strings.TrimSuffix(string(r.appendLine(nil)), "\n")
	if _, _, err := parseLine([]byte(s)); err != nil {
		t.Fatalf("good line refused: %v", err)
	}
	in0 := hex.EncodeToString(r.Items[0].InputB3)
	bad := map[string]string{
		"empty items":      strings.Replace(s, s[strings.Index(s, `"items":[`)+len(`"items":`):strings.Index(s, `],"kid"`)+1], `[]`, 1),
		"null items":       strings.Replace(s, s[strings.Index(s, `"items":[`)+len(`"items":`):strings.Index(s, `],"kid"`)+1], `null`, 1),
		"item order":       strings.Replace(s, `{"input_b3":"`+in0+`","kid":`, `{"kid":"x","input_b3":"`+in0+`","kid":`, 1),
		"item unknown":     strings.Replace(s, `{"input_b3":"`+in0, `{"zzz":"1","input_b3":"`+in0, 1),
		"item duplicate":   strings.Replace(s, `{"input_b3":"`+in0, `{"input_b3":"00","input_b3":"`+in0, 1),
		"item empty code":  strings.Replace(s, `{"input_b3":"`+in0, `{"code":"","input_b3":"`+in0, 1),
		"item no input":    strings.Replace(s, `"input_b3":"`+in0+`",`, ``, 1),
		"item short input": strings.Replace(s, `"input_b3":"`+in0, `"input_b3":"`+in0[:62], 1),
		"item upper hex":   strings.Replace(s, in0, strings.ToUpper(in0), 1),
		"item space":       strings.Replace(s, `"items":[{`, `"items":[ {`, 1),
		"item not object":  strings.Replace(s, `"items":[{`, `"items":["x",{`, 1),
		"items misplaced": strings.Replace(strings.Replace(s, s[strings.Index(s, `,"items":[`):strings.Index(s, `],"kid"`)+1], ``, 1),
			`,"ts"`, s[strings.Index(s, `,"items":[`):strings.Index(s, `],"kid"`)+1]+`,"ts"`, 1),
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

// TestBatchRecordInvalid: an item without a result or with an input hash of
// the wrong size is refused, and invalid UTF-8 in an item is stored as
// U+FFFD without changing the caller's items.
func TestBatchRecordInvalid(t *testing.T) {
	l := mustOpen(t, t.TempDir(), testOptions())
	defer l.Close()
	r := testBatchRecord(2)
	r.Items[1].Result = ""
	if err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("item without result: %v", err)
	}
	r = testBatchRecord(2)
	r.Items[0].InputB3 = r.Items[0].InputB3[:5]
	if err := l.Append(context.Background(), r); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("short item input: %v", err)
	}
	r = testBatchRecord(2)
	r.Items[1].Kid = "bad \xff kid"
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.Items[1].Kid != "bad \xff kid" {
		t.Fatal("Append changed the caller's item")
	}
}

// TestBatchRecordVerifyAndTamper: a log of batch records among plain ones
// verifies; changing one item's input_b3 in the file (keeping the line
// canonical) makes Verify fail at that record's seq.
func TestBatchRecordVerifyAndTamper(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.CheckpointEvery = 4
	l := mustOpen(t, dir, opts)
	for i := range 10 {
		rec := testRecord(i)
		if i%2 == 1 {
			rec = testBatchRecord(i)
		}
		if err := l.Append(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if r := mustVerify(t, dir); r.Records != 10 {
		t.Fatalf("%d records verified, want 10", r.Records)
	}
	lines := readLog(t, dir)
	i := findSeq(t, lines, 6) // testBatchRecord(5)
	if len(lines[i].rec.Items) != 5 {
		t.Fatalf("seq 6 has %d items, want 5", len(lines[i].rec.Items))
	}
	old := hex.EncodeToString(lines[i].rec.Items[3].InputB3)
	forged := blake3.Sum256([]byte("something else"))
	lines[i].text = bytes.Replace(lines[i].text, []byte(old), []byte(hex.EncodeToString(forged[:])), 1)
	if _, _, err := parseLine(lines[i].text); err != nil {
		t.Fatalf("the forged line is not canonical, so this tests the parser, not the chain: %v", err)
	}
	writeLog(t, dir, lines)
	_, err := Verify(dir, testPub)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Seq != 6 || !strings.Contains(ve.Reason, "altered") {
		t.Fatalf("Verify after changing an item: %v, want seq 6 altered", err)
	}
}
