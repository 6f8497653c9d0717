package httpapi

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// notUTF8 are byte strings that are not UTF-8 (RFC 3629), each of which
// encoding/json would decode, replacing it with U+FFFD.
var notUTF8 = []struct{ name, b string }{
	{"overlong slash C0 AF", "\xc0\xaf"},
	{"overlong NUL C0 80", "\xc0\x80"},
	{"UTF-16 surrogate ED A0 80", "\xed\xa0\x80"},
	{"raw FF", "\xff"},
	{"lone continuation 80", "\x80"},
	{"truncated E2 82", "\xe2\x82"},
	{"past U+10FFFF F4 90 80 80", "\xf4\x90\x80\x80"},
}

// bodyCase is one body of a route: valid JSON but for the "@" it holds,
// which the test replaces with bytes that are not UTF-8; replaced with ok
// instead, it is a valid request.
type bodyCase struct {
	where string // what the "@" stands in
	body  string
	ok    string
}

// bodyRoute is a route that takes a JSON body, as registered (pattern), with
// the path the test sends it to and the status of a valid request.
type bodyRoute struct {
	pattern string
	path    string
	status  int
	cases   []bodyCase
}

// TestNotUTF8EveryBodyRoute sends every route that takes a JSON body bodies
// that are not UTF-8, in free-form strings, member names and between
// tokens. Each is 400 BadRequest in the envelope, and nothing changes: JSON
// text is UTF-8 (RFC 8259 §8.1), and encoding/json would instead have
// decoded them with U+FFFD in place of the bad bytes. Each body is first
// shown to be a valid request with the bad bytes replaced by good ones.
func TestNotUTF8EveryBodyRoute(t *testing.T) {
	h := newHarness(t)
	kid := h.createKey(t, "acme", "utf8", "ed25519")
	name := strings.TrimSuffix(kid, "#v1")
	payload := strings.Repeat("ab", 32)
	sig := h.signPayload(t, name, payload).Sigs[0].SignatureB64
	kidW := h.createKey(t, "acme", "utf8", "mlkem768-x25519")
	nameW := strings.TrimSuffix(kidW, "#v1")
	aad := api.EncodeB64([]byte("order=42"))
	env := h.wrapOK(t, h.Admin, api.WrapRequest{KID: nameW, Size: 32, AADB64: aad}).WrappedB64
	kidE := h.createKey(t, "acme", "utf8", "aes-256-gcm")
	nameE := strings.TrimSuffix(kidE, "#v1")
	ct := h.encryptOK(t, h.Admin, api.EncryptRequest{KID: nameE, PlaintextB64: "aGk=", AADB64: aad}).CiphertextB64
	edPub := api.EncodeB64(unhex(t, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))

	signItem := `{"kid":"` + name + `","payload_b3":"` + payload + `"}`
	verifyItem := `{"kid":"` + name + `","payload_b3":"` + payload + `","sigs":[{"alg":"ed25519","signature_b64":"` + sig + `"}]}`
	create := `"tenant":"acme","purpose":"utf8","alg":"ed25519"`
	keyPfx := "POST " + keyPath
	routes := []bodyRoute{
		{"POST /v1/kms/keys", "/v1/kms/keys", 201, []bodyCase{
			{"label value", `{` + create + `,"labels":{"team":"pay@"}}`, "é"},
			{"label name", `{` + create + `,"labels":{"te@am":"pay"}}`, "é"},
			{"op_id", `{` + create + `,"op_id":"op-@"}`, "1"},
			{"tenant", `{"tenant":"ac@me","purpose":"utf8","alg":"ed25519"}`, ""},
			{"between members", `{` + create + `@}`, " "},
		}},
		{keyPfx + "/rotate", "/v1/kms/keys/" + name + "/rotate", 200, []bodyCase{
			{"op_id", `{"op_id":"rot-@"}`, "1"},
			{"member name", `{"op_id@":"rot-2"}`, ""},
		}},
		{keyPfx + "/config", "/v1/kms/keys/" + name + "/config", 200, []bodyCase{
			{"after a number", `{"min_verify_version":1@}`, " "},
			{"member name", `{"min_verify_version@":1}`, ""},
		}},
		{keyPfx + "/versions/{n}/disable", "/v1/kms/keys/" + name + "/versions/1/disable", 200, []bodyCase{
			{"empty object", `{@}`, " "},
		}},
		{keyPfx + "/versions/{n}/enable", "/v1/kms/keys/" + name + "/versions/1/enable", 200, []bodyCase{
			{"empty object", `{@}`, " "},
		}},
		{keyPfx + "/versions/{n}/destroy", "/v1/kms/keys/" + name + "/versions/1/destroy", 200, []bodyCase{
			{"empty object", `{@}`, " "},
		}},
		{keyPfx + "/versions/{n}/cancel-destroy", "/v1/kms/keys/" + name + "/versions/1/cancel-destroy", 200, []bodyCase{
			{"empty object", `{@}`, " "},
		}},
		{"POST /v1/kms/sign", "/v1/kms/sign", 200, []bodyCase{
			{"op_id", `{"kid":"` + name + `","payload_b3":"` + payload + `","op_id":"sign-@"}`, "1"},
			{"message_b64", `{"kid":"` + name + `","message_b64":"aGk@"}`, "="},
			{"kid", `{"kid":"` + name + `@","payload_b3":"` + payload + `"}`, ""},
		}},
		{"POST /v1/kms/verify", "/v1/kms/verify", 200, []bodyCase{
			{"policy mode", `{"kid":"` + name + `","payload_b3":"` + payload + `","sigs":[{"alg":"ed25519","signature_b64":"` + sig + `"}],"policy":{"mode":"and@"}}`, ""},
			{"sig alg", `{"kid":"` + name + `","payload_b3":"` + payload + `","sigs":[{"alg":"ed25519@","signature_b64":"` + sig + `"}]}`, ""},
		}},
		{"POST /v1/kms/sign/batch", "/v1/kms/sign/batch", 200, []bodyCase{
			{"item op_id", `{"items":[` + signItem + `,{"kid":"` + name + `","payload_b3":"` + payload + `","op_id":"b-@"}]}`, "1"},
			{"between items", `{"items":[` + signItem + `,@` + signItem + `]}`, " "},
		}},
		{"POST /v1/kms/verify/batch", "/v1/kms/verify/batch", 200, []bodyCase{
			{"item kid", `{"items":[` + verifyItem + `,{"kid":"` + name + `@","payload_b3":"` + payload + `","sigs":[]}]}`, ""},
			{"item sig alg", `{"items":[` + verifyItem + `,{"kid":"` + name + `","payload_b3":"` + payload + `","sigs":[{"alg":"ed@25519","signature_b64":"` + sig + `"}]}]}`, ""},
		}},
		{"POST /v1/kms/tokens", "/v1/kms/tokens", 201, []bodyCase{
			{"key_prefix", `{"scopes":["kms:read"],"key_prefix":"acme/@","ttl":"1h"}`, "utf8/"},
			{"ttl", `{"scopes":["kms:read"],"ttl":"1h@"}`, ""},
			{"scope", `{"scopes":["kms:read@"],"ttl":"1h"}`, ""},
		}},
		{"POST /v1/kms/tokens/revoke", "/v1/kms/tokens/revoke", 200, []bodyCase{
			{"id", `{"id":"` + strings.Repeat("0", 31) + `@"}`, "1"},
		}},
		{"POST /v1/kms/wrap", "/v1/kms/wrap", 200, []bodyCase{
			{"aad_b64", `{"kid":"` + nameW + `","size":32,"aad_b64":"@"}`, aad},
		}},
		{"POST /v1/kms/unwrap", "/v1/kms/unwrap", 200, []bodyCase{
			{"aad_b64", `{"wrapped_b64":"` + env + `","aad_b64":"@"}`, aad},
		}},
		{"POST /v1/kms/encrypt", "/v1/kms/encrypt", 200, []bodyCase{
			{"aad_b64", `{"kid":"` + nameE + `","plaintext_b64":"aGk=","aad_b64":"@"}`, aad},
		}},
		{"POST /v1/kms/decrypt", "/v1/kms/decrypt", 200, []bodyCase{
			{"aad_b64", `{"ciphertext_b64":"` + ct + `","aad_b64":"@"}`, aad},
		}},
		{"POST /v1/kms/keys/import", "/v1/kms/keys/import", 201, []bodyCase{
			{"op_id", `{"tenant":"acme","purpose":"utf8","alg":"ed25519","public_key_b64":"` + edPub + `","op_id":"imp-@"}`, "1"},
		}},
	}

	// The table must know every route that takes a body: the POST patterns
	// registered in this package's source.
	var known []string
	for _, rt := range routes {
		known = append(known, rt.pattern)
	}
	registered := registeredPatterns(t, "POST ")
	slices.Sort(known)
	if !slices.Equal(known, registered) {
		t.Fatalf("the routes that take a body changed; this test knows\n\t%s\nbut the server registers\n\t%s",
			strings.Join(known, "\n\t"), strings.Join(registered, "\n\t"))
	}

	// Controls: each body with good bytes in place of the bad is valid.
	for _, rt := range routes {
		for _, bc := range rt.cases {
			if strings.Count(bc.body, "@") != 1 {
				t.Fatalf("%s %s: the body must hold one @", rt.pattern, bc.where)
			}
			if bc.ok == "" {
				continue // the field is checked strictly: no other bytes would do
			}
			r := h.do(t, "POST", rt.path, h.Admin, strings.Replace(bc.body, "@", bc.ok, 1))
			if r.Status != rt.status {
				t.Fatalf("control %s %s: %d %s", rt.pattern, bc.where, r.Status, r.Raw)
			}
		}
	}

	before, keysBefore := h.snapshot(t), h.do(t, "GET", "/v1/kms/keys", h.Admin, nil)
	for _, rt := range routes {
		for _, bc := range rt.cases {
			for _, bad := range notUTF8 {
				t.Run(strings.TrimPrefix(rt.pattern, "POST /v1/kms/")+"/"+bc.where+"/"+bad.name, func(t *testing.T) {
					r := h.do(t, "POST", rt.path, h.Admin, strings.Replace(bc.body, "@", bad.b, 1))
					if r.Status != http.StatusBadRequest {
						t.Fatalf("status %d, want 400: %.300s", r.Status, r.Raw)
					}
					checkEnvelope(t, r, api.CodeBadRequest)
					msg, _ := r.JSON["error"].(map[string]any)["message"].(string)
					if msg != "the request body is not valid UTF-8 (RFC 8259 §8.1)" {
						t.Errorf("message %q does not name the problem", msg)
					}
				})
			}
		}
	}
	if after := h.snapshot(t); !before.equal(after) {
		t.Errorf("bodies that are not UTF-8 changed the store: %v", before.diff(after))
	}
	if keysAfter := h.do(t, "GET", "/v1/kms/keys", h.Admin, nil); string(keysAfter.Raw) != string(keysBefore.Raw) {
		t.Errorf("the key list changed:\n%s\n%s", keysBefore.Raw, keysAfter.Raw)
	}
}

// registeredPatterns returns, sorted, the route patterns with prefix that
// this package's (non-test) source registers: the constant first argument
// of every call of a method named handle, Handle or HandleFunc (but the one
// inside handle, which registers its own argument).
func registeredPatterns(t *testing.T, prefix string) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]ast.Expr{}
	var calls []*ast.CallExpr
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				return n.Name.Name != "handle" || n.Recv == nil
			case *ast.GenDecl:
				if n.Tok == token.CONST {
					for _, s := range n.Specs {
						vs := s.(*ast.ValueSpec)
						for i, id := range vs.Names {
							if i < len(vs.Values) {
								consts[id.Name] = vs.Values[i]
							}
						}
					}
				}
			case *ast.CallExpr:
				if sel, ok := n.Fun.(*ast.SelectorExpr); ok && len(n.Args) > 0 {
					switch sel.Sel.Name {
					case "handle", "Handle", "HandleFunc":
						calls = append(calls, n)
					}
				}
			}
			return true
		})
	}
	var eval func(e ast.Expr) (string, bool)
	eval = func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if e.Kind == token.STRING {
				s, err := strconv.Unquote(e.Value)
				return s, err == nil
			}
		case *ast.Ident:
			if c, ok := consts[e.Name]; ok {
				return eval(c)
			}
		case *ast.ParenExpr:
			return eval(e.X)
		case *ast.BinaryExpr:
			if e.Op == token.ADD {
				a, ok1 := eval(e.X)
				b, ok2 := eval(e.Y)
				return a + b, ok1 && ok2
			}
		}
		return "", false
	}
	var out []string
	for _, c := range calls {
		p, ok := eval(c.Args[0])
		if !ok {
			t.Fatalf("%s: a route pattern that is not a constant string: the test cannot list the routes", fset.Position(c.Pos()))
		}
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no %q route registered: is the source where the test looks?", prefix)
	}
	slices.Sort(out)
	return out
}
