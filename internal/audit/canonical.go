package audit

import (
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// field is one member of a JSON object: a string, an unsigned integer when
// isNum is set, or, when objs is not nil, an array of flat objects (a batch
// record's "items", the one nesting in the log). The log has no floats, no
// other nesting, no null.
type field struct {
	key   string
	str   string
	num   uint64
	isNum bool
	objs  [][]field
}

func strField(k, v string) field        { return field{key: k, str: v} }
func numField(k string, v uint64) field { return field{key: k, num: v, isNum: true} }

// objsField is a member holding an array of flat objects; objs must not be
// nil (an empty array is written as []).
func objsField(k string, objs [][]field) field { return field{key: k, objs: objs} }

// appendCanonical appends the canonical JSON encoding of the object
// fields to dst and returns the extended slice. Canonical means:
//
//   - members sorted by key, in nested objects too (byte order; every key in the log is ASCII, so
//     this is also the UTF-16 order of RFC 8785);
//   - no insignificant white space;
//   - integers in shortest decimal form;
//   - strings escaped exactly as encoding/json does with SetEscapeHTML(false):
//     `"` and `\` with a backslash; \b \f \n \r \t short; other bytes below
//     0x20 as \u00xx (lower-case hex); U+2028 and U+2029 as \u2028, \u2029;
//     each invalid UTF-8 byte as a raw U+FFFD, as encoding/json does;
//     everything else as raw UTF-8. (Append stores only valid UTF-8.)
//
// In other words: the bytes json.Marshal writes for a map[string]any holding
// the same members, minus HTML escaping. A test holds the two together.
// appendCanonical sorts fields in place. Keys must be unique.
func appendCanonical(dst []byte, fields []field) []byte {
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.key, b.key) })
	dst = append(dst, '{')
	for i, f := range fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f.key)
		dst = append(dst, ':')
		switch {
		case f.objs != nil:
			dst = append(dst, '[')
			for j, o := range f.objs {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = appendCanonical(dst, o)
			}
			dst = append(dst, ']')
		case f.isNum:
			dst = strconv.AppendUint(dst, f.num, 10)
		default:
			dst = appendString(dst, f.str)
		}
	}
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as described at
// appendCanonical.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\uFFFD"...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
