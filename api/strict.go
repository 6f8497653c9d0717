package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
)

// CheckMembers is the strictness encoding/json lacks: given body, which
// json.Unmarshal has already decoded into v, it refuses an object member
// named other than exactly one of the JSON names of the struct it decodes
// into (encoding/json matches names case-insensitively and drops unknown
// ones), and a name repeated in one object (encoding/json keeps the last),
// at every depth. The contract's member names are exact and unique, so
// that a server acts on what any other reader of the body sees.
//
// It reads body in one pass and allocates only for a member name written
// with escapes and for the names of an object of more than 16 members. Invalid JSON is an error, never a panic. Safe for
// concurrent use.
func CheckMembers(body []byte, v any) error {
	w := nameWalker{b: body}
	if err := w.value(reflect.TypeOf(v)); err != nil {
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
			if done, err := w.separator(']'); done || err != nil {
				return err
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
	var names memberNames
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
		if names.repeated(name) {
			return errors.New("a member name is repeated")
		}
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
		if done, err := w.separator('}'); done || err != nil {
			return err
		}
	}
}

// memberNames is the set of member names read so far in one object:
// compared one by one while there are few (a struct's), then a map, so that
// an object of n members (a map's) costs O(n), not O(n²).
type memberNames struct {
	buf  [16][]byte
	n    int
	many map[string]struct{}
}

// repeated reports whether name was added before, and adds it.
func (m *memberNames) repeated(name []byte) bool {
	if m.many != nil {
		if _, ok := m.many[string(name)]; ok {
			return true
		}
		m.many[string(name)] = struct{}{}
		return false
	}
	for _, s := range m.buf[:m.n] {
		if bytes.Equal(s, name) {
			return true
		}
	}
	if m.n < len(m.buf) {
		m.buf[m.n] = name
		m.n++
		return false
	}
	m.many = make(map[string]struct{}, 2*len(m.buf))
	for _, s := range m.buf {
		m.many[string(s)] = struct{}{}
	}
	m.many[string(name)] = struct{}{}
	return false
}

// separator reads what follows a member or element: ',' (another
// follows) or end (done).
func (w *nameWalker) separator(end byte) (done bool, err error) {
	w.space()
	if w.i >= len(w.b) {
		return false, errNotJSON
	}
	w.i++
	switch w.b[w.i-1] {
	case ',':
		return false, nil
	case end:
		return true, nil
	}
	return false, errNotJSON
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
