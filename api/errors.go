package api

import "net/http"

// Code is a contract error code (SPEC §4.1). Each code has exactly one HTTP
// status.
type Code string

// The contract's error codes.
const (
	CodeBadRequest       Code = "BadRequest"
	CodeUnsupported      Code = "Unsupported"
	CodeUnauthenticated  Code = "Unauthenticated"
	CodeNoCapability     Code = "NoCapability"
	CodeNotFound         Code = "NotFound"
	CodeConflict         Code = "Conflict"
	CodeTooLarge         Code = "TooLarge"
	CodeBackpressure     Code = "Backpressure"
	CodeInternal         Code = "Internal"
	CodeStoreUnavailable Code = "StoreUnavailable"
	CodeTimeout          Code = "Timeout"
)

var codeStatus = map[Code]int{
	CodeBadRequest:       http.StatusBadRequest,
	CodeUnsupported:      http.StatusBadRequest,
	CodeUnauthenticated:  http.StatusUnauthorized,
	CodeNoCapability:     http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeConflict:         http.StatusConflict,
	CodeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeBackpressure:     http.StatusTooManyRequests,
	CodeInternal:         http.StatusInternalServerError,
	CodeStoreUnavailable: http.StatusServiceUnavailable,
	CodeTimeout:          http.StatusGatewayTimeout,
}

// Status returns the HTTP status of the code; 500 for a code the contract
// does not know.
func (c Code) Status() int {
	if s, ok := codeStatus[c]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Retryable reports whether a client may retry the same request later.
func (c Code) Retryable() bool {
	switch c {
	case CodeBackpressure, CodeStoreUnavailable, CodeTimeout:
		return true
	}
	return false
}

// Error is the body of every non-2xx response: {"error": ErrorBody}. It also
// serves as the error value the client package returns.
type Error struct {
	Err ErrorBody `json:"error"`
}

// ErrorBody is the error envelope's content. Message never contains key
// material, tokens or payloads.
type ErrorBody struct {
	Code      Code   `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
	Hint      string `json:"hint"`
	TS        string `json:"ts"`
	RequestID string `json:"request_id"`
}

// Error implements error.
func (e *Error) Error() string {
	return "ron-kms: " + string(e.Err.Code) + ": " + e.Err.Message
}

// ItemError is the error of one item of a batch: {"code","message"}.
type ItemError struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}
