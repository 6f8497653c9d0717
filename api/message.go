package api

import (
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"fmt"
	"io"
	"strings"
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
	w := wireSign{KID: r.KID, PayloadB3: r.PayloadB3, ContextB64: r.ContextB64, OpID: r.OpID}
	if r.MessageGiven() {
		w.MessageB64 = &r.MessageB64
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes strictly (text that is not UTF-8 or too long a
// list, see CheckText, and unknown, inexact and repeated member names, see
// CheckMembers, are an error) and notes whether an empty message_b64 was
// given.
func (r *SignRequest) UnmarshalJSON(b []byte) error {
	if err := CheckText(b); err != nil {
		return err
	}
	return r.UnmarshalCheckedJSON(b)
}

// UnmarshalCheckedJSON is UnmarshalJSON for a body that CheckText has
// already accepted (a server checks the text of every body first): it
// skips that check and is otherwise the same.
func (r *SignRequest) UnmarshalCheckedJSON(b []byte) error {
	var w wireSign
	if err := decodeChecked(b, &w); err != nil {
		return err
	}
	*r = w.request()
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
	w := wireVerify{KID: r.KID, PayloadB3: r.PayloadB3, Sigs: r.Sigs, ContextB64: r.ContextB64, Policy: r.Policy}
	if r.MessageGiven() {
		w.MessageB64 = &r.MessageB64
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes strictly (text that is not UTF-8 or too long a
// list, see CheckText, and unknown, inexact and repeated member names, see
// CheckMembers, are an error) and notes whether an empty message_b64 was
// given.
func (r *VerifyRequest) UnmarshalJSON(b []byte) error {
	if err := CheckText(b); err != nil {
		return err
	}
	return r.UnmarshalCheckedJSON(b)
}

// UnmarshalCheckedJSON is UnmarshalJSON for a body that CheckText has
// already accepted, as SignRequest.UnmarshalCheckedJSON.
func (r *VerifyRequest) UnmarshalCheckedJSON(b []byte) error {
	var w wireVerify
	if err := decodeChecked(b, &w); err != nil {
		return err
	}
	*r = w.request()
	return nil
}

// UnmarshalJSON decodes a batch strictly, as SignRequest.UnmarshalJSON
// decodes one item, in one pass over b (a slice of a type with its own
// UnmarshalJSON would be parsed twice, once to cut out each item).
func (r *SignBatchRequest) UnmarshalJSON(b []byte) error {
	if err := CheckText(b); err != nil {
		return err
	}
	return r.UnmarshalCheckedJSON(b)
}

// UnmarshalCheckedJSON is UnmarshalJSON for a body that CheckText has
// already accepted, as SignRequest.UnmarshalCheckedJSON.
func (r *SignBatchRequest) UnmarshalCheckedJSON(b []byte) (err error) {
	r.Items, err = decodeItems(b, (*wireSign).request)
	return err
}

// UnmarshalJSON decodes a batch strictly, as VerifyRequest.UnmarshalJSON
// decodes one item, in one pass over b.
func (r *VerifyBatchRequest) UnmarshalJSON(b []byte) error {
	if err := CheckText(b); err != nil {
		return err
	}
	return r.UnmarshalCheckedJSON(b)
}

// UnmarshalCheckedJSON is UnmarshalJSON for a body that CheckText has
// already accepted, as SignRequest.UnmarshalCheckedJSON.
func (r *VerifyBatchRequest) UnmarshalCheckedJSON(b []byte) (err error) {
	r.Items, err = decodeItems(b, (*wireVerify).request)
	return err
}

// decodeItems decodes {"items":[...]}, whose text CheckText has accepted,
// strictly into wire items W and converts each with request.
func decodeItems[W, R any](b []byte, request func(*W) R) ([]R, error) {
	var w struct {
		Items []W `json:"items"`
	}
	if err := decodeChecked(b, &w); err != nil || w.Items == nil {
		return nil, err
	}
	out := make([]R, len(w.Items))
	for i := range w.Items {
		out[i] = request(&w.Items[i])
	}
	return out, nil
}

// decodeChecked decodes text CheckText has accepted strictly into v: with
// encoding/json/v2, whose defaults already are the contract's rules (member
// names matched exactly, a repeated name an error) and which is told to
// refuse unknown members too, at every depth. It is the same strictness as
// json.Unmarshal followed by CheckMembers, in one pass over the text
// instead of two, and two to three times faster (a custom UnmarshalJSON does
// not inherit the caller's DisallowUnknownFields, so these types check for
// themselves). Escaped invalid UTF-8 ("\ud800") is decoded as U+FFFD, as
// encoding/json does; raw invalid UTF-8 CheckText has refused already.
// Errors are described without quoting the input (strictError).
func decodeChecked(b []byte, v any) error {
	if err := jsonv2.Unmarshal(b, v, strictOptions); err != nil {
		return strictError(err)
	}
	return nil
}

var strictOptions = jsonv2.JoinOptions(jsonv2.RejectUnknownMembers(true), jsontext.AllowInvalidUTF8(true))

// strictError describes an encoding/json/v2 error as the server reports
// decoding errors: where and what, never the text that was sent (a member
// name or a value may be anything).
func strictError(err error) error {
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.Is(err, jsontext.ErrDuplicateName):
		return errors.New("a member name is repeated")
	case errors.Is(err, jsonv2.ErrUnknownName):
		return errors.New("unknown field (names are case-sensitive)")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return io.ErrUnexpectedEOF
	case errors.As(err, &syn):
		return fmt.Errorf("syntax error at offset %d", syn.ByteOffset)
	case errors.As(err, &sem):
		// The pointer holds only the names of the members the types know
		// (an unknown one is ErrUnknownName, above) and indexes.
		var path []string
		for _, tok := range strings.Split(string(sem.JSONPointer), "/") {
			if tok != "" && strings.Trim(tok, "0123456789") != "" {
				path = append(path, tok)
			}
		}
		what := "a valid value"
		if sem.GoType != nil {
			what = sem.GoType.String()
		}
		return fmt.Errorf("field %s must be %s", strings.Join(path, "."), what)
	}
	return errors.New("not JSON")
}

// wireSign and wireVerify are the requests as they are on the wire, with
// message_b64 a pointer so that the empty message ("") is told from none
// (absent or null). They have no methods, so encoding/json decodes them,
// and slices of them, in one pass.
type wireSign struct {
	KID        string  `json:"kid"`
	PayloadB3  string  `json:"payload_b3,omitempty"`
	MessageB64 *string `json:"message_b64,omitempty"`
	ContextB64 string  `json:"context_b64,omitempty"`
	OpID       string  `json:"op_id,omitempty"`
}

func (w *wireSign) request() SignRequest {
	r := SignRequest{KID: w.KID, PayloadB3: w.PayloadB3, ContextB64: w.ContextB64, OpID: w.OpID}
	if w.MessageB64 != nil {
		r.MessageB64, r.emptyMessage = *w.MessageB64, *w.MessageB64 == ""
	}
	return r
}

type wireVerify struct {
	KID        string        `json:"kid"`
	PayloadB3  string        `json:"payload_b3,omitempty"`
	MessageB64 *string       `json:"message_b64,omitempty"`
	Sigs       []Signature   `json:"sigs"`
	ContextB64 string        `json:"context_b64,omitempty"`
	Policy     *VerifyPolicy `json:"policy,omitempty"`
}

func (w *wireVerify) request() VerifyRequest {
	r := VerifyRequest{KID: w.KID, PayloadB3: w.PayloadB3, Sigs: w.Sigs, ContextB64: w.ContextB64, Policy: w.Policy}
	if w.MessageB64 != nil {
		r.MessageB64, r.emptyMessage = *w.MessageB64, *w.MessageB64 == ""
	}
	return r
}
