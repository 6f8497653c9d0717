package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"

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
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(api.CodeBadRequest, "malformed JSON: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(api.CodeBadRequest, "malformed JSON: data after the JSON object")
	}
	// encoding/json matches member names case-insensitively and keeps the
	// last of repeated names; the contract's names are exact and unique, so
	// that the server acts on what any other reader of the body sees.
	if err := checkNames(json.NewDecoder(bytes.NewReader(body)), reflect.TypeOf(v)); err != nil {
		return errorf(api.CodeBadRequest, "malformed JSON: %v", err)
	}
	return nil
}

// checkNames walks one JSON value (already known to decode into t) and
// rejects an object member named other than exactly a field's JSON name, or
// named twice in one object. t may be nil: names are then only checked for
// repeats.
func checkNames(dec *json.Decoder, t reflect.Type) error {
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
				f, ok := fieldByJSONName(t, name)
				if !ok {
					return errors.New("unknown field (names are case-sensitive)")
				}
				mt = f.Type
			case t.Kind() == reflect.Map:
				mt = t.Elem()
			}
			if err := checkNames(dec, mt); err != nil {
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
			if err := checkNames(dec, et); err != nil {
				return err
			}
		}
		_, err = dec.Token()
	}
	return err
}

// fieldByJSONName finds the exported field of struct t whose JSON name is
// exactly name.
func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
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
				if sf, ok := fieldByJSONName(et, name); ok {
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
