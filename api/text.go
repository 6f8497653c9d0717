package api

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// What a request body must be before it is decoded at all.
//
// encoding/json decodes text that is not UTF-8, replacing each invalid
// byte with U+FFFD, so that a server would act on a value that the bytes
// sent do not hold and that another reader of the same body would read
// otherwise. And it decodes lists of any length: one 1 MiB body of 349,000
// empty batch items took a second and 145 MB before its length could be
// checked, and 340 batch items of 1,000 empty signatures each took 24 MB.
// CheckText refuses both before anything is decoded.

var (
	// ErrNotUTF8: the body is not UTF-8, as JSON text must be (RFC 8259
	// §8.1). Overlong encodings, UTF-16 surrogates encoded in UTF-8 and code
	// points past U+10FFFF are not UTF-8 either (RFC 3629).
	ErrNotUTF8 = errors.New("api: the request body is not valid UTF-8 (RFC 8259 §8.1)")
	// ErrTooManyElements: an array of the body has more than MaxElements
	// elements or an object more than MaxElements members, or the body
	// has more than MaxBodyElements of both in all.
	ErrTooManyElements = fmt.Errorf("api: the request body holds more than %d elements in one array or object, or more than %d in all",
		MaxElements, MaxBodyElements)
)

// Limits of CheckText. SPEC §4 caps a batch at MaxBatch items, and no other
// list of the contract comes near it (sigs holds at most 4, labels at most
// MaxLabels). A full verify batch of hybrid signatures, with every optional
// member given, has about 8,000 elements and members in all.
const (
	// MaxElements bounds the elements of any one array, and the members of
	// any one object, in a request body.
	MaxElements = MaxBatch
	// MaxBodyElements bounds the elements and members of a whole request
	// body (counted by the commas between them).
	MaxBodyElements = 16 * MaxBatch
)

// maxCountedDepth is how deep CheckText counts elements. No request type
// nests half as deep (a verify batch's signatures are at depth 4), so
// encoding/json refuses what deeper containers hold by type, without
// storing it.
const maxCountedDepth = 16

// CheckText checks a request body before it is decoded: it is UTF-8
// (ErrNotUTF8); no array or object in it, to depth 16, holds more than
// MaxElements elements or members, and it holds no more than
// MaxBodyElements in all (ErrTooManyElements). It reads body once and does
// not allocate. It does not check that body is JSON (encoding/json does
// that), and never panics on any input. Safe for concurrent use.
func CheckText(body []byte) error {
	if !utf8.Valid(body) {
		return ErrNotUTF8
	}
	// commas[d] counts the separators of the container open at depth d; in
	// JSON a container of n > 0 elements has n-1 of them.
	var commas [maxCountedDepth + 1]int
	depth, total := 0, 0
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '"':
			i = stringEnd(body, i+1)
		case '[', '{':
			depth++
			if depth <= maxCountedDepth {
				commas[depth] = 0
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		case ',':
			if total++; total >= MaxBodyElements {
				return ErrTooManyElements
			}
			if depth > 0 && depth <= maxCountedDepth {
				if commas[depth]++; commas[depth] >= MaxElements {
					return ErrTooManyElements
				}
			}
		}
	}
	return nil
}

// stringEnd returns the index of the quote that ends the string whose
// contents start at b[i], or len(b) when it does not end.
func stringEnd(b []byte, i int) int {
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return len(b)
		}
		j += i
		// The quote is escaped if an odd number of backslashes precede it.
		k := j
		for k > i && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j
		}
		i = j + 1
	}
}
