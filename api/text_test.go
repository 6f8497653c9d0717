package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// notUTF8 are byte strings that are not UTF-8 (RFC 3629) and that
// encoding/json decodes, each byte as U+FFFD.
var notUTF8 = []string{
	"\xc0\xaf",         // overlong '/'
	"\xc0\x80",         // overlong NUL
	"\xed\xa0\x80",     // the UTF-16 surrogate U+D800, encoded as UTF-8
	"\xed\xbf\xbf",     // U+DFFF likewise
	"\xff",             // never in UTF-8
	"\x80",             // a continuation byte alone
	"\xe2\x82",         // a sequence cut short
	"\xf4\x90\x80\x80", // past U+10FFFF
}

func TestCheckTextUTF8(t *testing.T) {
	for _, good := range []string{``, `{}`, `{"a":"é€𝄞"}`, `{"a":"\ud834\udd1e"}`, `{"a":"` + string(utf8.MaxRune) + `"}`} {
		if err := CheckText([]byte(good)); err != nil {
			t.Errorf("CheckText(%q) = %v", good, err)
		}
	}
	for _, bad := range notUTF8 {
		for _, body := range []string{`{"a":"` + bad + `"}`, `{"` + bad + `":1}`, `{"a":1` + bad + `}`, bad} {
			if err := CheckText([]byte(body)); !errors.Is(err, ErrNotUTF8) {
				t.Errorf("CheckText(%q) = %v, want ErrNotUTF8", body, err)
			}
			// What encoding/json alone would do with it.
			var v map[string]any
			if json.Unmarshal([]byte(body), &v) == nil && !strings.Contains(fmt.Sprint(v), "\uFFFD") {
				t.Errorf("encoding/json decoded %q without U+FFFD: the case tests nothing", body)
			}
		}
	}
}

// elements is a JSON array of n copies of v.
func elements(n int, v string) string {
	if n == 0 {
		return "[]"
	}
	return "[" + strings.Repeat(v+",", n-1) + v + "]"
}

func TestCheckTextElements(t *testing.T) {
	members := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"k%d":""`, i)
		}
		b.WriteString("}")
		return b.String()
	}
	for _, tc := range []struct {
		name string
		body string
		ok   bool
	}{
		{"MaxElements items", `{"items":` + elements(MaxElements, `{}`) + `}`, true},
		{"one item more", `{"items":` + elements(MaxElements+1, `{}`) + `}`, false},
		{"349,000 empty items", `{"items":` + elements(349000, `{}`) + `}`, false},
		{"MaxElements members", `{"labels":` + members(MaxElements) + `}`, true},
		{"one member more", `{"labels":` + members(MaxElements+1) + `}`, false},
		{"commas in strings do not count", `{"a":"` + strings.Repeat(",", 2*MaxBodyElements) + `"}`, true},
		{"escaped quotes do not end a string", `{"a":"\"` + strings.Repeat(",", MaxElements) + `\\\"x"}`, true},
		{"an escaped backslash ends before the quote", `{"a":"\\",` + strings.Repeat(`"b":1,`, MaxElements) + `"c":1}`, false},
		{"many small arrays", `[` + strings.Repeat(elements(MaxElements/2, `1`)+`,`, 10) + `1]`, true},
		{"nested: 1000 per array, more in all", `{"items":` + elements(MaxElements, `{"sigs":`+elements(MaxBodyElements/MaxElements+1, `{}`)+`}`) + `}`, false},
		{"a full hybrid verify batch", `{"items":` + elements(MaxBatch,
			`{"kid":"k","message_b64":"","context_b64":"","sigs":[{"alg":"a","signature_b64":""},{"alg":"b","signature_b64":""}],"policy":{"mode":"and"}}`) + `}`, true},
		{"deeper than counted", strings.Repeat("[", maxCountedDepth) + elements(MaxElements+1, "1") + strings.Repeat("]", maxCountedDepth), true},
		{"unbalanced", strings.Repeat("]", 100) + elements(MaxElements+1, "1"), false},
		{"unterminated string", `{"a":"` + strings.Repeat(",", MaxBodyElements), true},
	} {
		err := CheckText([]byte(tc.body))
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrTooManyElements) {
			t.Errorf("%s: CheckText = %v", tc.name, err)
		}
	}
}

// TestCheckTextAllocates: CheckText allocates nothing, whatever the body.
func TestCheckTextAllocates(t *testing.T) {
	body := []byte(`{"items":` + elements(349000, `{}`) + `}`)
	if n := testing.AllocsPerRun(10, func() { CheckText(body) }); n != 0 {
		t.Errorf("CheckText allocates %v times", n)
	}
}

// TestSelfDecodersCheckText: the types that decode themselves refuse what
// CheckText refuses, whoever calls json.Unmarshal on them.
func TestSelfDecodersCheckText(t *testing.T) {
	kid := `"kid":"acme/p/ed25519/0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"`
	for _, tc := range []struct {
		body string
		v    any
		want error
	}{
		{`{` + kid + `,"op_id":"` + "\xc0\xaf" + `"}`, new(SignRequest), ErrNotUTF8},
		{`{` + kid + `,"sigs":[{"alg":"` + "\xed\xa0\x80" + `"}]}`, new(VerifyRequest), ErrNotUTF8},
		{`{"items":[{` + kid + `,"op_id":"` + "\xff" + `"}]}`, new(SignBatchRequest), ErrNotUTF8},
		{`{"items":[{` + kid + `,"sigs":[]},{"kid":"` + "\x80" + `"}]}`, new(VerifyBatchRequest), ErrNotUTF8},
		{`{"items":` + elements(MaxBatch+1, `{}`) + `}`, new(SignBatchRequest), ErrTooManyElements},
		{`{"items":` + elements(MaxBatch+1, `{}`) + `}`, new(VerifyBatchRequest), ErrTooManyElements},
		{`{"sigs":` + elements(MaxElements+1, `{}`) + `}`, new(VerifyRequest), ErrTooManyElements},
	} {
		if err := json.Unmarshal([]byte(tc.body), tc.v); !errors.Is(err, tc.want) {
			t.Errorf("json.Unmarshal(%.60q) into %T = %v, want %v", tc.body, tc.v, err, tc.want)
		}
	}
}
