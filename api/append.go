package api

import (
	"encoding/json"
	"strconv"
)

// JSONAppender is implemented by the answers the server sends most often.
// AppendJSON appends exactly the bytes json.Marshal gives for the value,
// without reflection; a test holds the two together.
type JSONAppender interface {
	AppendJSON(b []byte) []byte
}

// AppendJSON implements JSONAppender.
func (r SignResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"kid":`...)
	b = appendString(b, r.KID)
	b = append(b, `,"sigs":`...)
	b = appendSignatures(b, r.Sigs)
	return append(b, '}')
}

// AppendJSON implements JSONAppender.
func (r SignBatchResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"results":`...)
	if r.Results == nil {
		return append(b, "null}"...)
	}
	b = append(b, '[')
	for i := range r.Results {
		if i > 0 {
			b = append(b, ',')
		}
		b = r.Results[i].appendJSON(b)
	}
	return append(b, "]}"...)
}

func (r *SignBatchResult) appendJSON(b []byte) []byte {
	b = append(b, '{')
	sep := false
	if r.KID != "" {
		b = append(b, `"kid":`...)
		b = appendString(b, r.KID)
		sep = true
	}
	if len(r.Sigs) > 0 {
		if sep {
			b = append(b, ',')
		}
		b = append(b, `"sigs":`...)
		b = appendSignatures(b, r.Sigs)
		sep = true
	}
	if r.Error != nil {
		if sep {
			b = append(b, ',')
		}
		b = append(b, `"error":`...)
		b = r.Error.appendJSON(b)
	}
	return append(b, '}')
}

// AppendJSON implements JSONAppender.
func (r VerifyBatchResponse) AppendJSON(b []byte) []byte {
	b = append(b, `{"all_ok":`...)
	b = strconv.AppendBool(b, r.AllOK)
	b = append(b, `,"results":`...)
	if r.Results == nil {
		b = append(b, "null"...)
		return appendCacheAge(b, r.CacheAgeMS)
	}
	b = append(b, '[')
	for i := range r.Results {
		if i > 0 {
			b = append(b, ',')
		}
		// As VerifyBatchResult.MarshalJSON: an error alone, or ok alone.
		if e := r.Results[i].Error; e != nil {
			b = append(b, `{"error":`...)
			b = e.appendJSON(b)
			b = append(b, '}')
			continue
		}
		b = append(b, `{"ok":`...)
		b = strconv.AppendBool(b, r.Results[i].OK)
		b = append(b, '}')
	}
	b = append(b, ']')
	return appendCacheAge(b, r.CacheAgeMS)
}

// appendCacheAge ends an object with its cache_age_ms member, if any.
func appendCacheAge(b []byte, age *int64) []byte {
	if age != nil {
		b = append(b, `,"cache_age_ms":`...)
		b = strconv.AppendInt(b, *age, 10)
	}
	return append(b, '}')
}

func (e *ItemError) appendJSON(b []byte) []byte {
	b = append(b, `{"code":`...)
	b = appendString(b, string(e.Code))
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	return append(b, '}')
}

func appendSignatures(b []byte, sigs []Signature) []byte {
	if sigs == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range sigs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"alg":`...)
		b = appendString(b, s.Alg)
		b = append(b, `,"signature_b64":`...)
		b = appendString(b, s.SignatureB64)
		b = append(b, '}')
	}
	return append(b, ']')
}

// appendString appends s as json.Marshal writes it. Kids, algorithm names
// and base64 need no escaping and are copied as they are; any other string
// (an error message, say) goes through encoding/json, so that the escaping
// is exactly the standard library's.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, err := json.Marshal(s)
			if err != nil { // a string always encodes
				panic("api: encoding a string: " + err.Error())
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
