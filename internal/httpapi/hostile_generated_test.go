package httpapi

import (
	"encoding/base64"
	"strings"
	"testing"

	"gopkg.in/macaroon.v2"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

func allScopesBut(s captoken.Scope) []captoken.Scope {
	var out []captoken.Scope
	for _, sc := range captoken.AllScopes() {
		if sc != s {
			out = append(out, sc)
		}
	}
	return out
}

// addCaveat appends a raw first-party caveat to a token, as any holder can.
func addCaveat(t *testing.T, tok, cav string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	if err := m.AddFirstPartyCaveat([]byte(cav)); err != nil {
		t.Fatal(err)
	}
	out, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

// hostileGeneratedRows is, for every route, every way a token can be wrong
// and every way a body can be malformed.
func hostileGeneratedRows(t *testing.T, f *hostileFixture) []hostileRow {
	h, forged, expired, expiredAdmin, tampered, otherTenant := f.h, f.forged, f.expired, f.expiredAdmin, f.tampered, f.otherTenant
	unknownCaveat, routes := f.unknownCaveat, f.routes
	var rows []hostileRow
	add := func(r ...hostileRow) { rows = append(rows, r...) }

	// Generated rows: every route, every way a token can be wrong, and every
	// way a body can be malformed.
	for _, rt := range routes {
		base := hostileRow{method: rt.method, path: rt.path, body: rt.body}
		row := func(name, token string, status int, code api.Code) hostileRow {
			r := base
			r.name, r.token, r.status, r.code = rt.name+"/"+name, token, status, code
			return r
		}
		add(
			row("no token", "", 401, api.CodeUnauthenticated),
			row("garbage token", "not a token!", 401, api.CodeUnauthenticated),
			row("base64 garbage token", "AAAAAAAAAAAA", 401, api.CodeUnauthenticated),
			row("expired token", expired, 401, api.CodeUnauthenticated),
			row("expired attenuated admin token", expiredAdmin, 401, api.CodeUnauthenticated),
			row("forged token", forged, 401, api.CodeUnauthenticated),
			row("tampered token", tampered, 401, api.CodeUnauthenticated),
			row("token with padding", h.Admin+"=", 401, api.CodeUnauthenticated),
			row("under-scoped token", h.mint(t, captoken.Restrictions{Scopes: allScopesBut(rt.scope)}), 403, api.CodeNoCapability),
			row("unknown caveat", unknownCaveat, 401, api.CodeUnauthenticated),
		)
		r := row("basic auth", "", 401, api.CodeUnauthenticated)
		r.hdr = []string{"Authorization", "Basic YWRtaW46YWRtaW4="}
		add(r)
		r = row("empty bearer", "", 401, api.CodeUnauthenticated)
		r.hdr = []string{"Authorization", "Bearer "}
		add(r)
		r = row("token in query", "", 401, api.CodeUnauthenticated)
		if strings.Contains(r.path, "?") {
			r.path += "&access_token=" + h.Admin
		} else {
			r.path += "?access_token=" + h.Admin
		}
		add(r)

		// Another tenant's token.
		r = row("other tenant token", otherTenant, 403, api.CodeNoCapability)
		switch {
		case rt.batch > 0:
			// Authorization is per item: every slot fails, the batch runs.
			r.status, r.code, r.items = 200, "", codes(rt.batch, api.CodeNoCapability)
		case rt.serverWide:
			r.status, r.code = 200, ""
		}
		add(r)

		if rt.method != "POST" {
			continue
		}
		add(
			row("malformed JSON", h.Admin, 400, api.CodeBadRequest),
			row("truncated JSON", h.Admin, 400, api.CodeBadRequest),
			row("unknown field", h.Admin, 400, api.CodeBadRequest),
			row("unknown field, other case", h.Admin, 400, api.CodeBadRequest),
			row("trailing data", h.Admin, 400, api.CodeBadRequest),
			row("two objects", h.Admin, 400, api.CodeBadRequest),
			row("array body", h.Admin, 400, api.CodeBadRequest),
			row("string body", h.Admin, 400, api.CodeBadRequest),
			row("number body", h.Admin, 400, api.CodeBadRequest),
			row("invalid UTF-8 in field name", h.Admin, 400, api.CodeBadRequest),
			row("oversize body", h.Admin, 413, api.CodeTooLarge),
			row("oversize whitespace", h.Admin, 413, api.CodeTooLarge),
			row("4 MiB body", h.Admin, 413, api.CodeTooLarge),
		)
		valid := js(rt.body)
		n := len(rows)
		rows[n-13].body = `{"a":`
		rows[n-12].body = valid[:len(valid)-1]
		rows[n-11].body = valid[:len(valid)-1] + `,"zzz_unknown":1}`
		rows[n-10].body = strings.Replace(valid, `{"`, `{"OP_ID":"x","`, 1)
		rows[n-9].body = valid + "x"
		rows[n-8].body = valid + valid
		rows[n-7].body = `[` + valid + `]`
		rows[n-6].body = `"` + strings.ReplaceAll(valid, `"`, `\"`) + `"`
		rows[n-5].body = `42`
		rows[n-4].body = "{\"\xff\xfe\":1}"
		rows[n-3].body = `{"op_id":"` + strings.Repeat("a", maxBody) + `"}`
		rows[n-2].body = valid + strings.Repeat(" ", maxBody)
		rows[n-1].body = strings.Repeat("[", 4*maxBody)
		if rt.emptyBodyOK {
			// Rotate decodes into RotateRequest, which has op_id, and the
			// version routes into an empty object (whose valid body, {},
			// has no field to change the case of): the case of a field
			// name must not matter for it to be rejected.
			rows[n-10].body = `{"OP_ID":"x"}`
		}
		if !rt.emptyBodyOK {
			add(row("empty body", h.Admin, 400, api.CodeBadRequest), row("whitespace body", h.Admin, 400, api.CodeBadRequest))
			rows[len(rows)-2].body = ""
			rows[len(rows)-1].body = " \n\t "
		}
	}
	return rows
}
