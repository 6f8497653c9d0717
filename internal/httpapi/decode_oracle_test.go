package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
)

// The decoder before its one-pass rewrite (a json.Decoder with
// DisallowUnknownFields, then a walk of the body token by token), kept as
// the oracle the fuzz targets compare decodeBytes with: both must accept
// and refuse the same bodies.

func tokenDecodeBytes(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return tokenCheckNames(json.NewDecoder(bytes.NewReader(body)), reflect.TypeOf(v))
}

// tokenCheckNames walks one JSON value (already known to decode into t) and
// rejects an object member named other than exactly a field's JSON name, or
// named twice in one object. t may be nil: names are then only checked for
// repeats.
func tokenCheckNames(dec *json.Decoder, t reflect.Type) error {
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
		for dec.More() {
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
			if err := tokenCheckNames(dec, mt); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	case json.Delim('['):
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for dec.More() {
			if err := tokenCheckNames(dec, et); err != nil {
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
