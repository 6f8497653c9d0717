package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/storage"
)

// hostileRow is one request of the hostile-input table and the exact answer
// the contract requires.
type hostileRow struct {
	name         string
	method, path string
	token        string   // bearer token; "" sends none
	hdr          []string // extra headers, name/value pairs
	body         any      // string or []byte sent as is; other values JSON-encoded; nil for none
	status       int
	code         api.Code   // required for every non-2xx status
	allow        string     // the Allow header a 405 must carry
	items        []api.Code // batch answers: the code of each slot, "" for an item that ran
	check        func(t *testing.T, r response)
}

// route is one authenticated route of the API with a request that is valid
// in every respect but the one a generated row breaks. Adding a route to
// the API means adding it here (and its specific rows below).
type route struct {
	name         string
	method, path string
	scope        captoken.Scope
	body         any  // a valid body; nil for GET
	batch        int  // > 0: a batch route whose valid body has this many items
	emptyBodyOK  bool // an empty body is a valid request (rotate)
	tenantOnBody bool // the key's tenant is named by the request (not only by the token)
	serverWide   bool // names no key or tenant (the server's own public keys): a tenant token may call it
}

const maxBody = api.DefaultBodyLimit

// js encodes v as JSON for hand-built bodies.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func repeat(n int, s string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func codes(n int, c api.Code) []api.Code {
	out := make([]api.Code, n)
	for i := range out {
		out[i] = c
	}
	return out
}

// withToken is r sent with another token.
func withToken(r hostileRow, token string) hostileRow { r.token = token; return r }

// withCheck is r with a check of its answer.
func withCheck(r hostileRow, check func(t *testing.T, r response)) hostileRow {
	r.check = check
	return r
}

// b64n is the standard base64 of n zero bytes.
func b64n(n int) string { return api.EncodeB64(make([]byte, n)) }

// TestHostileInput sends every route hostile requests and checks the exact
// status and code, the error envelope, the request and correlation ids, and
// that nothing in the store changed.
func TestHostileInput(t *testing.T) {
	h := newHarness(t)
	f := newHostileFixture(t, h)
	routes, nameE, nameEB := f.routes, f.nameE, f.nameEB

	// The rows, in table order (see the hostile_*_test.go files).
	rows := hostileGeneratedRows(t, f)
	rows = append(rows, hostileKeyRows(t, f)...)
	rows = append(rows, hostileLifecycleRows(t, f)...)
	rows = append(rows, hostileSignRows(t, f)...)
	rows = append(rows, hostileAdminRows(t, f)...)
	rows = append(rows, hostileDataRows(t, f)...)
	rows = append(rows, hostileOtherAlgRows(t, f)...)
	rows = append(rows, hostileImportRows(t, f)...)

	// Create rows whose token is what is wrong (a token that may create, but
	// not this key).
	for i := range rows {
		switch rows[i].name {
		case "create/key-prefix token for another purpose":
			rows[i].token = h.mint(t, captoken.Restrictions{KeyPrefix: "acme/other/"})
			rows[i].body, rows[i].status, rows[i].code = routes[0].body, 403, api.CodeNoCapability
		case "create/alg-limited token":
			rows[i].token = h.mint(t, captoken.Restrictions{Algs: []string{"ml-dsa-65"}})
			rows[i].body, rows[i].status, rows[i].code = routes[0].body, 403, api.CodeNoCapability
		}
	}

	before := h.snapshot(t)
	seen := map[string]bool{}
	for i, row := range rows {
		if seen[row.name] {
			t.Fatalf("duplicate row name %q", row.name)
		}
		seen[row.name] = true
		if row.status == 0 || (row.status >= 300 && row.code == "") {
			t.Fatalf("row %q has no expectation", row.name)
		}
		t.Run(row.name, func(t *testing.T) {
			corr := fmt.Sprintf("corr-%d", i)
			r := h.do(t, row.method, row.path, row.token, row.body, append([]string{"X-Corr-Id", corr}, row.hdr...)...)
			checkCommon(t, r, corr)
			if r.Status != row.status {
				t.Fatalf("status = %d, want %d: %.300s", r.Status, row.status, r.Raw)
			}
			if r.Status >= 300 {
				checkEnvelope(t, r, row.code)
			}
			if row.status == http.StatusMethodNotAllowed {
				if got := r.Header.Get("Allow"); got != row.allow {
					t.Errorf("Allow = %q, want %q", got, row.allow)
				}
			} else if got := r.Header.Get("Allow"); got != "" {
				t.Errorf("unexpected Allow %q", got)
			}
			if row.items != nil {
				checkBatchSlots(t, r, row.items)
			}
			if row.check != nil {
				row.check(t, r)
			}
		})
	}
	// Nothing in the table may change the store, with one exception: a
	// successful encrypt (a control row) takes an encryption count, and the
	// keystore reserves counts in blocks under c/<kid>; a reservation is
	// bookkeeping, not a change of any key. The setup above already made
	// the first encryption with each current version, so no reservation is
	// expected here, but one is allowed: the c/ records are compared apart
	// and, when one moved, the store revision (which any write moves) is
	// not compared; every other record still is, with its own revision.
	after := h.snapshot(t)
	if !before.equal(after) {
		b, a := before.withoutCounters(), after.withoutCounters()
		if !reflect.DeepEqual(b.Items, a.Items) || reflect.DeepEqual(before.counters(), after.counters()) {
			t.Errorf("the hostile table changed the store (revision %d → %d): %v", before.Revision, after.Revision, before.diff(after))
		}
		for _, it := range after.counters() {
			if !strings.HasPrefix(it.Key, "c/"+nameE+"#v") && !strings.HasPrefix(it.Key, "c/"+nameEB+"#v") {
				t.Errorf("an encryption counter for a key no control row encrypted with: %s", it.Key)
			}
		}
	}
	t.Logf("%d rows", len(rows))
}

var requestIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)

// checkCommon checks what every answer carries: a request id, the echoed
// correlation id, and never a 500 or a redirect.
func checkCommon(t *testing.T, r response, corr string) {
	t.Helper()
	if r.Status >= 500 && r.Status != http.StatusServiceUnavailable {
		t.Errorf("status %d: %s", r.Status, r.Raw)
	}
	if r.Status >= 300 && r.Status < 400 {
		t.Errorf("redirect %d to %q", r.Status, r.Header.Get("Location"))
	}
	if id := r.Header.Get("X-Request-Id"); !requestIDRE.MatchString(id) {
		t.Errorf("X-Request-Id = %q", id)
	}
	if got := r.Header.Get("X-Corr-Id"); got != corr {
		t.Errorf("X-Corr-Id = %q, want %q echoed", got, corr)
	}
}

// counterPrefix is the store prefix of the keystore's encryption counters
// (keystore counterPath).
const counterPrefix = "c/"

// withoutCounters is the snapshot without the encryption counter records.
func (a storeState) withoutCounters() storeState {
	out := storeState{Revision: a.Revision}
	for _, it := range a.Items {
		if !strings.HasPrefix(it.Key, counterPrefix) {
			out.Items = append(out.Items, it)
		}
	}
	return out
}

// counters is the encryption counter records of the snapshot.
func (a storeState) counters() []storage.Item {
	var out []storage.Item
	for _, it := range a.Items {
		if strings.HasPrefix(it.Key, counterPrefix) {
			out = append(out, it)
		}
	}
	return out
}
