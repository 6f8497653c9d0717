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
	body, err := readBody(r)
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

// maxPrealloc bounds the buffer readBody sizes from Content-Length before
// a byte has arrived: a full 1,000-item batch fits; a longer body grows it.
const maxPrealloc = 1 << 20

// readBody reads r's body whole. When the request states its length (as
// the client package's do), the buffer is allocated once at that size
// (at most maxPrealloc) instead of doubling from 512 bytes, which cost a
// 64-item batch six allocations and 30 KB. net/http refuses a body that is
// shorter or longer than its Content-Length, and r.Body is limited by the
// server's body limit, so the length a caller claims costs no more memory
// than the body it must then send.
func readBody(r *http.Request) ([]byte, error) {
	n := r.ContentLength
	if n <= 0 || n > maxPrealloc {
		return io.ReadAll(r.Body)
	}
	buf := bytes.NewBuffer(make([]byte, 0, n+bytes.MinRead))
	_, err := buf.ReadFrom(r.Body)
	return buf.Bytes(), err
}

// decodeBytes is decode's parser, separate so that fuzz targets reach it.
// A body that is not UTF-8 is BadRequest and one with too many elements
// (api.MaxElements in one array or object, api.MaxBodyElements in all)
// TooLarge, both before anything is decoded (api.CheckText).
func decodeBytes(body []byte, v any) error {
	// Before Unmarshal: it would decode the body anyway, with U+FFFD for
	// each byte that is not UTF-8, and a list of any length. (The api types
	// that decode themselves check again, for their other callers; for
	// them encoding/json would refuse invalid bytes between tokens first,
	// with a less helpful message.)
	if err := api.CheckText(body); err != nil {
		return textError(err)
	}
	// Unmarshal checks the whole body is one JSON value; checkNames then
	// refuses unknown members (Unmarshal would drop them), and names that
	// encoding/json would accept but the contract does not: it matches
	// member names case-insensitively and keeps the last of repeated names,
	// while the contract's names are exact and unique, so that the server
	// acts on what any other reader of the body sees.
	//
	// The api types that decode themselves (sign and verify requests and
	// their batches) run Unmarshal and CheckMembers inside. They are called
	// directly, and told the text is checked: through json.Unmarshal each
	// would cost two more passes over the body (encoding/json reads the
	// whole value before it calls UnmarshalJSON, which checks the text
	// again), a tenth of a sign's handler time.
	if u, self := v.(checkedUnmarshaler); self {
		if err := u.UnmarshalCheckedJSON(body); err != nil {
			return errorf(api.CodeBadRequest, "malformed JSON: %s", jsonProblem(err))
		}
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(api.CodeBadRequest, "malformed JSON: %s", jsonProblem(err))
	}
	if err := api.CheckMembers(body, v); err != nil {
		return errorf(api.CodeBadRequest, "malformed JSON: %v", err)
	}
	return nil
}

// checkedUnmarshaler is implemented by the api types that decode
// themselves strictly (api.SignRequest.UnmarshalCheckedJSON).
type checkedUnmarshaler interface {
	UnmarshalCheckedJSON(body []byte) error
}

// textError is the answer to an api.CheckText error; nil for any other.
func textError(err error) error {
	switch {
	case errors.Is(err, api.ErrNotUTF8):
		return errorf(api.CodeBadRequest, "the request body is not valid UTF-8 (RFC 8259 §8.1)")
	case errors.Is(err, api.ErrTooManyElements):
		return errorf(api.CodeTooLarge, "the request body holds more than %d elements in one array or object, or more than %d in all (a batch takes at most %d items)",
			api.MaxElements, api.MaxBodyElements, api.MaxBatch)
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
