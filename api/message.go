package api

import (
	"bytes"
	"encoding/json"
)

// The empty message is a message: SPEC §4 lets message_b64 carry any raw
// message of at most MaxMessage bytes, zero included (RFC 8032 TEST 1 signs
// it). On the wire `"message_b64":""` gives the empty message and an absent
// (or null) member gives none; in Go, MessageB64 == "" cannot tell the two
// apart, so SignRequest and VerifyRequest remember whether an empty
// message_b64 was given. Build requests with WithMessage to send any
// message, the empty one included; a struct literal with MessageB64 ""
// sends no message, as before.

// MessageGiven reports whether the request carries message_b64 (possibly
// the empty message).
func (r SignRequest) MessageGiven() bool { return r.MessageB64 != "" || r.emptyMessage }

// WithMessage returns r carrying msg as message_b64, the empty message
// included.
func (r SignRequest) WithMessage(msg []byte) SignRequest {
	r.MessageB64, r.emptyMessage = EncodeB64(msg), len(msg) == 0
	return r
}

// MarshalJSON writes an empty message_b64 when the empty message is given.
func (r SignRequest) MarshalJSON() ([]byte, error) {
	type plain SignRequest
	if r.MessageB64 == "" && r.emptyMessage {
		return json.Marshal(struct {
			plain
			MessageB64 string `json:"message_b64"`
		}{plain: plain(r)})
	}
	return json.Marshal(plain(r))
}

// UnmarshalJSON decodes strictly (unknown members are an error) and notes
// whether an empty message_b64 was given.
func (r *SignRequest) UnmarshalJSON(b []byte) error {
	type plain SignRequest
	var p plain
	empty, err := decodeWithMessage(b, &p)
	if err != nil {
		return err
	}
	*r = SignRequest(p)
	r.emptyMessage = empty
	return nil
}

// MessageGiven reports whether the request carries message_b64 (possibly
// the empty message).
func (r VerifyRequest) MessageGiven() bool { return r.MessageB64 != "" || r.emptyMessage }

// WithMessage returns r carrying msg as message_b64, the empty message
// included.
func (r VerifyRequest) WithMessage(msg []byte) VerifyRequest {
	r.MessageB64, r.emptyMessage = EncodeB64(msg), len(msg) == 0
	return r
}

// MarshalJSON writes an empty message_b64 when the empty message is given.
func (r VerifyRequest) MarshalJSON() ([]byte, error) {
	type plain VerifyRequest
	if r.MessageB64 == "" && r.emptyMessage {
		return json.Marshal(struct {
			plain
			MessageB64 string `json:"message_b64"`
		}{plain: plain(r)})
	}
	return json.Marshal(plain(r))
}

// UnmarshalJSON decodes strictly (unknown members are an error) and notes
// whether an empty message_b64 was given.
func (r *VerifyRequest) UnmarshalJSON(b []byte) error {
	type plain VerifyRequest
	var p plain
	empty, err := decodeWithMessage(b, &p)
	if err != nil {
		return err
	}
	*r = VerifyRequest(p)
	r.emptyMessage = empty
	return nil
}

// decodeWithMessage decodes b into v rejecting unknown members (a custom
// UnmarshalJSON does not inherit the caller's DisallowUnknownFields) and
// inexact or repeated names (CheckMembers), and reports whether b gives
// message_b64 as the empty string.
func decodeWithMessage(b []byte, v any) (bool, error) {
	if err := json.Unmarshal(b, v); err != nil {
		return false, err
	}
	if err := CheckMembers(b, v); err != nil {
		return false, err
	}
	return givesEmptyMessage(b), nil
}

// givesEmptyMessage reports whether the JSON object b has a message_b64
// member whose value is the empty string. Only a body that names
// message_b64 (possibly with escapes in the name) needs a second parse.
func givesEmptyMessage(b []byte) bool {
	if bytes.IndexByte(b, '\\') < 0 && !bytes.Contains(b, []byte(`"message_b64"`)) {
		return false
	}
	var probe struct {
		M *string `json:"message_b64"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return false
	}
	return probe.M != nil && *probe.M == ""
}
