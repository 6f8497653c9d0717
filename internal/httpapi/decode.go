package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"

	"github.com/ron-kms/ron-kms/api"
)

// decode reads exactly one JSON value into v, strictly: unknown fields,
// trailing data and wrong types are BadRequest; an oversize body is TooLarge.
// An empty body is allowed only when emptyOK.
func decode(r *http.Request, v any, emptyOK bool) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(api.CodeBadRequest, "reading the request body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return errorf(api.CodeBadRequest, "the request body is empty; a JSON object is required")
	}
	return decodeBytes(body, v)
}

// decodeBytes is decode's parser, separate so that fuzz targets reach it.
func decodeBytes(body []byte, v any) error {
	// Unmarshal checks the whole body is one JSON value; checkNames then
	// refuses unknown members (Unmarshal would drop them), and names that
	// encoding/json would accept but the contract does not: it matches
	// member names case-insensitively and keeps the last of repeated names,
	// while the contract's names are exact and unique, so that the server
	// acts on what any other reader of the body sees.
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(api.CodeBadRequest, "malformed JSON: %s", jsonProblem(err))
	}
	if err := checkNames(body, reflect.TypeOf(v)); err != nil {
		return errorf(api.CodeBadRequest, "malformed JSON: %v", err)
	}
	return nil
}

// checkNames walks one JSON value (already known to decode into t) and
// rejects an object member named other than exactly a field's JSON name, or
// named twice in one object. t may be nil: names are then only checked for
// repeats. It reads body in one pass and allocates only for a member name
// written with escapes; body must be valid JSON (the caller decoded it
// first), and anything else is an error, never a panic.
func checkNames(body []byte, t reflect.Type) error {
	w := nameWalker{b: body}
	if err := w.value(t); err != nil {
		return err
	}
	w.space()
	if w.i != len(w.b) {
		return errors.New("data after the JSON value")
	}
	return nil
}

type nameWalker struct {
	b []byte
	i int
}

var errNotJSON = errors.New("not JSON")

func (w *nameWalker) space() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

func (w *nameWalker) value(t reflect.Type) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	w.space()
	if w.i >= len(w.b) {
		return errNotJSON
	}
	switch w.b[w.i] {
	case '{':
		return w.object(t)
	case '[':
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		w.i++
		w.space()
		if w.i < len(w.b) && w.b[w.i] == ']' {
			w.i++
			return nil
		}
		for {
			if err := w.value(et); err != nil {
				return err
			}
			w.space()
			if w.i >= len(w.b) {
				return errNotJSON
			}
			w.i++
			switch w.b[w.i-1] {
			case ',':
			case ']':
				return nil
			default:
				return errNotJSON
			}
		}
	case '"':
		_, _, err := w.str()
		return err
	default: // a number, true, false or null
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			w.i++
		}
		return nil
	}
}

// object checks the members of the object at w.i against the fields of t.
func (w *nameWalker) object(t reflect.Type) error {
	var fields map[string]reflect.Type
	var elem reflect.Type
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = jsonFields(t)
		case reflect.Map:
			elem = t.Elem()
		}
	}
	w.i++
	w.space()
	if w.i < len(w.b) && w.b[w.i] == '}' {
		w.i++
		return nil
	}
	var seenBuf [16][]byte
	seen := seenBuf[:0]
	for {
		w.space()
		if w.i >= len(w.b) || w.b[w.i] != '"' {
			return errNotJSON
		}
		raw, escaped, err := w.str()
		if err != nil {
			return err
		}
		name := raw
		if escaped {
			var s string
			if err := json.Unmarshal(w.b[w.i-len(raw)-2:w.i], &s); err != nil {
				return errNotJSON
			}
			name = []byte(s)
		}
		for _, s := range seen {
			if bytes.Equal(s, name) {
				return errors.New("a member name is repeated")
			}
		}
		seen = append(seen, name)
		mt := elem
		if fields != nil {
			ft, ok := fields[string(name)]
			if !ok {
				return errors.New("unknown field (names are case-sensitive)")
			}
			mt = ft
		} else if t != nil && t.Kind() == reflect.Struct {
			return errors.New("unknown field (names are case-sensitive)")
		}
		w.space()
		if w.i >= len(w.b) || w.b[w.i] != ':' {
			return errNotJSON
		}
		w.i++
		if err := w.value(mt); err != nil {
			return err
		}
		w.space()
		if w.i >= len(w.b) {
			return errNotJSON
		}
		w.i++
		switch w.b[w.i-1] {
		case ',':
		case '}':
			return nil
		default:
			return errNotJSON
		}
	}
}

// str reads the string at w.i and returns its raw contents (between the
// quotes) and whether they contain an escape.
func (w *nameWalker) str() (raw []byte, escaped bool, err error) {
	start := w.i + 1
	for j := start; j < len(w.b); j++ {
		switch w.b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			w.i = j + 1
			return w.b[start:j], escaped, nil
		}
	}
	return nil, false, errNotJSON
}

// fieldCache maps struct types to their JSON member names and field types.
var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields returns the JSON member names of struct t with the type of
// each field: exported fields by their tag name (or Go name), fields of
// embedded structs promoted, the first of repeated names winning.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := map[string]reflect.Type{}
	addJSONFields(t, m)
	fieldCache.Store(t, m)
	return m
}

func addJSONFields(t reflect.Type, m map[string]reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				addJSONFields(et, m)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if _, ok := m[tag]; !ok {
			m[tag] = f.Type
		}
	}
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return "syntax error at offset " + itoa(syn.Offset)
	case errors.As(err, &typ):
		return "field " + typ.Field + " must be " + typ.Type.String()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
