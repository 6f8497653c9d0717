package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
)

// httpError is an error with an explicit contract code, made by handlers for
// input they reject themselves.
type httpError struct {
	code   api.Code
	msg    string
	status int    // overrides code.Status() when not zero (405)
	hint   string // overrides the code's hint when not empty (an unknown route)
}

func (e *httpError) Error() string { return e.msg }

func errorf(code api.Code, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// hints tell the caller what to do about an error class.
var hints = map[api.Code]string{
	api.CodeBadRequest:       "fix the request; see the message",
	api.CodeUnsupported:      "this key or server does not offer that algorithm or mode",
	api.CodeUnauthenticated:  "send a valid, unexpired token: Authorization: Bearer <token>",
	api.CodeNoCapability:     "use a token whose caveats allow this scope, tenant, key and algorithm",
	api.CodeNotFound:         "check the key id and version",
	api.CodeConflict:         "re-read the key and retry with the current version or a new op_id",
	api.CodeTooLarge:         "send a smaller body or fewer batch items",
	api.CodeBackpressure:     "retry after the Retry-After delay",
	api.CodeInternal:         "report it with the request_id",
	api.CodeStoreUnavailable: "retry after the Retry-After delay",
	api.CodeTimeout:          "retry; the backend was too slow",
}

// errorOf is the one place where errors become contract codes. The message
// is the error's text: every error in the service is written so that it
// never contains key material, tokens or payloads.
func errorOf(err error) (api.Code, string) {
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		return he.code, he.msg
	case errors.As(err, &mbe):
		return api.CodeTooLarge, fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, captoken.ErrUnauthenticated):
		return api.CodeUnauthenticated, err.Error()
	case errors.Is(err, captoken.ErrNoCapability):
		return api.CodeNoCapability, err.Error()
	case errors.Is(err, api.ErrBadKID), errors.Is(err, api.ErrEncoding):
		return api.CodeBadRequest, err.Error()
	case errors.Is(err, keystore.ErrNotFound):
		return api.CodeNotFound, err.Error()
	case errors.Is(err, keystore.ErrNotCurrent), errors.Is(err, keystore.ErrConflict), errors.Is(err, keystore.ErrExhausted),
		errors.Is(err, keystore.ErrVersionUnusable), errors.Is(err, keystore.ErrIllegalTransition):
		return api.CodeConflict, err.Error()
	case errors.Is(err, keystore.ErrUnsupported):
		return api.CodeUnsupported, err.Error()
	case errors.Is(err, keystore.ErrInvalidArgument), errors.Is(err, keystore.ErrInvalidSignature):
		return api.CodeBadRequest, err.Error()
	case errors.Is(err, keystore.ErrUnavailable):
		return api.CodeStoreUnavailable, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return api.CodeTimeout, "the operation passed its deadline"
	}
	return api.CodeInternal, "internal error"
}

// itemError converts err for a batch slot.
func itemError(err error) *api.ItemError {
	code, msg := errorOf(err)
	return &api.ItemError{Code: code, Message: msg}
}

// writeError sends the contract's error envelope.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := errorOf(err)
	status, hint := code.Status(), hints[code]
	var he *httpError
	if errors.As(err, &he) {
		if he.status != 0 {
			status = he.status
		}
		if he.hint != "" {
			hint = he.hint
		}
	}
	if code == api.CodeInternal {
		s.log.LogAttrs(r.Context(), slog.LevelError, "internal error",
			slog.String("request_id", requestID(r.Context())), slog.String("error", err.Error()))
	}
	if code.Retryable() {
		w.Header().Set("Retry-After", "1")
	}
	// Only a successful answer from the cache says how old it is.
	w.Header().Del(api.CacheAgeHeader)
	body := api.Error{Err: api.ErrorBody{
		Code:      code,
		Message:   msg,
		Retryable: code.Retryable(),
		Hint:      hint,
		TS:        time.Now().UTC().Format(time.RFC3339),
		RequestID: requestID(r.Context()),
	}}
	writeJSON(w, status, body)
}

// writeJSON sends v with status.
// respBuffers recycles the buffers writeJSON encodes answers into: a
// 64-item batch answer is about 10 KB, which grew a fresh buffer five times
// per request. A ResponseWriter does not keep what it is given to Write, so
// a buffer is reused once Write returns. Buffers above maxPooledResponse
// (a rare large answer) are left to the garbage collector.
var respBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

const maxPooledResponse = 256 << 10

func writeJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	var err error
	if a, ok := v.(api.JSONAppender); ok {
		// The frequent answers (sign, batches) skip reflection; the bytes
		// are the same (api's TestAppendJSONMatchesMarshal).
		bp := respBuffers.Get().(*[]byte)
		defer func() {
			if cap(b) <= maxPooledResponse {
				*bp = b[:0]
				respBuffers.Put(bp)
			}
		}()
		b = a.AppendJSON((*bp)[:0])
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		// Only our own response types are encoded: this is a bug.
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"Internal","message":"encoding the response failed","retryable":false,"hint":"","ts":"","request_id":""}}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// A known length spares net/http the chunked encoding of bodies over
	// its 2 KB buffer (batch answers) and lets the client read exactly.
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}
