package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/ron-kms/ron-kms/api"
)

// The decoder before its one-pass rewrite (a json.Decoder with
// DisallowUnknownFields, then a walk of the body token by token), kept as
// the oracle the fuzz targets compare decodeBytes with: both must accept
// and refuse the same bodies. It refuses text that is not UTF-8 first, and
// counts the elements of every list as it walks.

func tokenDecodeBytes(body []byte, v any) error {
	if !utf8.Valid(body) {
		return errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	var total int
	return tokenCheckNames(json.NewDecoder(bytes.NewReader(body)), reflect.TypeOf(v), 1, &total)
}

// tokenCount counts one more element of a list at depth (1 for the body's
// own), refusing as api.CheckText does: more than api.MaxElements in one
// list to depth 16, more than api.MaxBodyElements in all (counted, as
// there, by the separators: every element but the first of each list).
func tokenCount(n, depth int, total *int) error {
	if n == 1 {
		return nil
	}
	if *total++; *total >= api.MaxBodyElements {
		return errors.New("too many elements in all")
	}
	if n > api.MaxElements && depth <= 16 {
		return errors.New("too many elements in one list")
	}
	return nil
}

// tokenCheckNames walks one JSON value (already known to decode into t) and
// rejects an object member named other than exactly a field's JSON name, or
// named twice in one object. t may be nil: names are then only checked for
// repeats.
func tokenCheckNames(dec *json.Decoder, t reflect.Type, depth int, total *int) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for n := 1; dec.More(); n++ {
			if err := tokenCount(n, depth, total); err != nil {
				return err
			}
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			name, _ := tok.(string)
			if seen[name] {
				return errors.New("a member name is repeated")
			}
			seen[name] = true
			var mt reflect.Type
			switch {
			case t == nil:
			case t.Kind() == reflect.Struct:
				f, ok := tokenFieldByJSONName(t, name)
				if !ok {
					return errors.New("unknown field (names are case-sensitive)")
				}
				mt = f.Type
			case t.Kind() == reflect.Map:
				mt = t.Elem()
			}
			if err := tokenCheckNames(dec, mt, depth+1, total); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for n := 1; dec.More(); n++ {
			if err := tokenCount(n, depth, total); err != nil {
				return err
			}
			if err := tokenCheckNames(dec, et, depth+1, total); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	}
	return err
}

// tokenFieldByJSONName finds the exported field of struct t whose JSON name is
// exactly name.
func tokenFieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			// Fields of an embedded struct are promoted, as encoding/json does.
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				if sf, ok := tokenFieldByJSONName(et, name); ok {
					return sf, true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
