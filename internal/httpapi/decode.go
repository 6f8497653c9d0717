package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"

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
	// The api types that decode themselves (sign and verify requests and
	// their batches) run CheckMembers inside: walking them again would
	// only repeat it.
	if _, self := v.(json.Unmarshaler); self {
		return nil
	}
	if err := api.CheckMembers(body, v); err != nil {
		return errorf(api.CodeBadRequest, "malformed JSON: %v", err)
	}
	return nil
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
