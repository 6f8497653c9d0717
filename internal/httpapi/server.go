// Package httpapi is the HTTP face of ron-kms (SPEC §4): one handler per
// route, each doing decode → authorize → keystore → encode, and exactly one
// function, errorOf, that turns errors into the contract's status and code.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/metrics"
)

// Options configure a Server.
type Options struct {
	// BodyLimit caps request bodies in bytes; api.DefaultBodyLimit when 0.
	BodyLimit int64
	// MaxInflight bounds the API requests served at once; beyond it (or a
	// tenant's fair share of it) requests get 429 Backpressure (overload.go).
	// DefaultMaxInflight() when 0.
	MaxInflight int
	// Build is served at /version.
	Build api.BuildInfo
	// Ready returns the reasons the server is not ready (none when ready).
	Ready func(ctx context.Context) []string
	// Now is the clock for token expiry; time.Now when nil.
	Now func() time.Time
	// VerifyModeFloor is the loosest verify mode a request may ask for
	// ("or", "and" or "pq_only"); "and" when empty.
	VerifyModeFloor string
	// BackupKEK describes the key-encryption key for GET /v1/kms/backup;
	// the zero value makes that route 400 Unsupported.
	BackupKEK BackupKEK
	// Audit receives one record per API operation and per denial, before
	// the response is sent (see audit.go), except that the denials of
	// requests without a valid token are collapsed per source and window
	// (denials.go; Server.Close writes what is pending); nil records
	// nothing.
	Audit Auditor
	// RefuseWrites, when set, is why the store must not be written (a store
	// rollback, SPEC §9): the operations in refusedOnRollback answer 503
	// StoreUnavailable with this message.
	RefuseWrites error
}

// Server serves the API. Safe for concurrent use.
type Server struct {
	ks      *keystore.Keystore
	auth    *captoken.Authority
	metrics *metrics.Metrics
	log     *slog.Logger
	opts    Options
	floor   keystore.Mode
	mux     *http.ServeMux
	limiter *limiter
	denials *denialAggregator // nil without an audit log

	testHookServe func(tenant string, delta int) // tests: called around each admitted request
}

// New builds a Server over a keystore and a token authority, and makes auth
// refuse the tokens ks lists as revoked (captoken.Authority.SetRevocations),
// so that what the revoke route records is enforced. It fails only for an
// invalid VerifyModeFloor.
func New(ks *keystore.Keystore, auth *captoken.Authority, m *metrics.Metrics, log *slog.Logger, opts Options) (*Server, error) {
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = api.DefaultBodyLimit
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Ready == nil {
		opts.Ready = func(context.Context) []string { return nil }
	}
	if opts.VerifyModeFloor == "" {
		opts.VerifyModeFloor = "and"
	}
	floor, err := keystore.ParseMode(opts.VerifyModeFloor)
	if err != nil {
		return nil, fmt.Errorf("httpapi: verify mode floor %q: must be or, and or pq_only", opts.VerifyModeFloor)
	}
	if opts.MaxInflight <= 0 {
		opts.MaxInflight = DefaultMaxInflight()
	}
	auth.SetRevocations(ks)
	m.SetVerifyCacheAge(func() float64 { return float64(ks.CacheAge().Milliseconds()) })
	s := &Server{ks: ks, auth: auth, metrics: m, log: log, opts: opts, floor: floor, mux: http.NewServeMux(),
		limiter: newLimiter(opts.MaxInflight, maxQueueWait, opts.MaxInflight)}
	if opts.Audit != nil {
		s.denials = newDenialAggregator(denialWindow, maxDenialSources, opts.Audit.AppendAll, s.denialsLost)
	}
	s.routes()
	return s, nil
}

const keyPath = "/v1/kms/keys/{tenant}/{purpose}/{alg}/{uuid}"

func (s *Server) routes() {
	s.handle("POST /v1/kms/keys", "create", captoken.ScopeCreate, s.createKey)
	s.handle("GET /v1/kms/keys", "list", captoken.ScopeRead, s.listKeys)
	s.handle("GET "+keyPath, "get", captoken.ScopeRead, s.getKey)
	s.handle("POST "+keyPath+"/rotate", "rotate", captoken.ScopeRotate, s.rotateKey)
	s.handle("POST "+keyPath+"/config", "configure", captoken.ScopeAdmin, s.configureKey)
	s.handle("POST "+keyPath+"/versions/{n}/disable", "disable", captoken.ScopeAdmin, s.versionAction(keystore.ActionDisable))
	s.handle("POST "+keyPath+"/versions/{n}/enable", "enable", captoken.ScopeAdmin, s.versionAction(keystore.ActionEnable))
	s.handle("POST "+keyPath+"/versions/{n}/destroy", "destroy", captoken.ScopeAdmin, s.versionAction(keystore.ActionDestroy))
	s.handle("POST "+keyPath+"/versions/{n}/cancel-destroy", "cancel_destroy", captoken.ScopeAdmin, s.versionAction(keystore.ActionCancelDestroy))
	s.handle("POST /v1/kms/sign", "sign", captoken.ScopeSign, s.sign)
	s.handle("POST /v1/kms/verify", "verify", captoken.ScopeVerify, s.verify)
	s.handle("POST /v1/kms/sign/batch", "sign_batch", captoken.ScopeSign, s.signBatch)
	s.handle("POST /v1/kms/verify/batch", "verify_batch", captoken.ScopeVerify, s.verifyBatch)
	s.handle("POST /v1/kms/wrap", "wrap", captoken.ScopeWrap, s.wrapKey)
	s.handle("POST /v1/kms/unwrap", "unwrap", captoken.ScopeUnwrap, s.unwrapKey)
	s.handle("POST /v1/kms/encrypt", "encrypt", captoken.ScopeEncrypt, s.encrypt)
	s.handle("POST /v1/kms/decrypt", "decrypt", captoken.ScopeDecrypt, s.decrypt)
	s.handle("POST /v1/kms/tokens", "token_mint", captoken.ScopeAdmin, s.mintToken)
	s.handle("POST /v1/kms/tokens/revoke", "token_revoke", captoken.ScopeAdmin, s.revokeToken)
	s.handle("GET /v1/kms/backup", "backup", captoken.ScopeAdmin, s.backup)
	s.handle("GET /v1/kms/import/wrapping-key", "import_wrapping_key", captoken.ScopeCreate, s.importWrappingKey)
	s.handle("POST /v1/kms/keys/import", "import", captoken.ScopeCreate, s.importKey)
	s.handle("GET "+keyPath+"/attestation", "attest", captoken.ScopeRead, s.attestKey)
	s.handle("GET /v1/kms/audit/key", "audit_key", captoken.ScopeRead, s.auditKey)
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /livez", s.livez)
	s.mux.HandleFunc("GET /version", s.version)
	s.mux.Handle("GET /metrics", s.metrics.Handler())
}

// call is the per-request state handed to route handlers. A handler
// records what its audit record says (fact, or items for a batch) and
// buffers its answer with respond; handle appends the record and only then
// answers.
type call struct {
	grant *captoken.Grant // nil until the token is verified
	w     http.ResponseWriter
	r     *http.Request
	op    string

	fact    auditFact
	items   []auditFact // batch routes: one per item, replacing fact
	status  int
	resp    any
	audited bool // the record is already appended (streamed responses)
	clock   stageClock
}

type handlerFunc func(c *call) error

// handle registers an authenticated API route for operation op. The token
// (verified by serveLimited, before the request was admitted) and the
// route's scope are checked before the body is read; a request refused
// there counts in kms_rejected_total, any other failure in
// kms_failures_total. Every call, denied or not, is audited before it is
// answered (finish); the denials of requests without a valid token are
// collapsed per source (denials.go).
func (s *Server) handle(pattern, op string, scope captoken.Scope, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c := &call{w: w, r: r, op: op}
		s.stageStart(c)
		pathKeyFact(r, &c.fact)
		grant, err := s.requestAuth(r)
		if err == nil {
			c.grant = grant
			if !grant.HasScope(scope) {
				err = errorf(api.CodeNoCapability, "this token does not carry the scope %s", scope)
			}
		}
		if err != nil {
			code, _ := errorOf(err)
			s.metrics.Rejected.WithLabelValues(string(code)).Inc()
			s.finish(c, err)
			return
		}
		if s.opts.RefuseWrites != nil && refusedOnRollback[op] {
			err = errorf(api.CodeStoreUnavailable, "writes are refused: %v", s.opts.RefuseWrites)
		} else {
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.BodyLimit)
			err = h(c)
		}
		if err != nil {
			code, _ := errorOf(err)
			s.metrics.Failures.WithLabelValues(op, string(code)).Inc()
		}
		s.finish(c, err)
	})
}

// ServeHTTP implements http.Handler: request ids, metrics, logging, and the
// contract's 404 and 405 answers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := newRequestID()
	w.Header().Set("X-Request-Id", reqID)
	if corr := r.Header.Get("X-Corr-Id"); echoableCorrID(corr) {
		w.Header().Set("X-Corr-Id", corr)
	}
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, reqID))
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}

	_, pattern := s.mux.Handler(r)
	route := pattern
	if !canonicalPath(r.URL.Path) {
		// ServeMux would answer a redirect, which is not the contract's
		// envelope: a path that is not canonical names no route.
		route = "unmatched"
		s.writeError(sw, r, noRoute(r, "the path is not in canonical form"))
	} else if pattern == "" {
		route = "unmatched"
		if allow := s.allowed(r); allow != "" {
			sw.Header().Set("Allow", allow)
			s.writeError(sw, r, &httpError{code: api.CodeBadRequest, status: http.StatusMethodNotAllowed,
				msg: fmt.Sprintf("method %s is not allowed here; allowed: %s", r.Method, allow)})
		} else {
			s.writeError(sw, r, noRoute(r, "see the API under "+apiBase+" (SPEC §4)"))
		}
	} else {
		s.serveLimited(sw, r, pattern, s.mux) // the mux sets the path values
	}
	s.metrics.HTTPRequests.WithLabelValues(route, r.Method, strconv.Itoa(sw.status)).Inc()
	// Every operation is in the audit log already; a line per request is
	// for debugging (--log-level debug), except server failures. Writing it
	// at info cost a write(2) per request, a tenth of a sign's service time.
	level := slog.LevelDebug
	if sw.status >= 500 {
		level = slog.LevelWarn
	}
	if !s.log.Enabled(r.Context(), level) {
		return
	}
	s.log.LogAttrs(r.Context(), level, "request",
		slog.String("request_id", reqID),
		slog.String("route", route),
		slog.String("method", r.Method),
		slog.Int("status", sw.status),
		slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
	)
}

// apiBase is the base path of the API (SPEC §4).
const apiBase = "/v1/kms"

// noRoute is the 404 answer to a request that names no route, with why. The
// path is shown escaped and cut short, so that the message is ASCII and
// brief whatever the caller sent; the hint is about routes, not keys.
func noRoute(r *http.Request, why string) error {
	return &httpError{code: api.CodeNotFound,
		msg:  fmt.Sprintf("no route %s %s: %s", truncate(r.Method), truncate(r.URL.EscapedPath()), why),
		hint: "check the method and path against SPEC §4: the API is under " + apiBase + ", and /healthz, /livez, /readyz, /metrics and /version at the root"}
}

// maxCorrID bounds an X-Corr-Id the server echoes.
const maxCorrID = 128

// echoableCorrID reports whether a caller's X-Corr-Id is echoed: 1 to
// maxCorrID bytes of printable ASCII (0x20 to 0x7E). Any other is dropped,
// not refused: a correlation id is the caller's convenience, not part of
// the request, and echoing raw bytes would hand them to every log and
// proxy downstream.
func echoableCorrID(s string) bool {
	if s == "" || len(s) > maxCorrID {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// canonicalPath reports whether p is a path ServeMux serves without a
// redirect: rooted, without empty, "." or ".." segments.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if p[len(p)-1] == '/' && c != "/" {
		c += "/"
	}
	return c == p
}

// allowed lists the methods that do have a route for r's path.
func (s *Server) allowed(r *http.Request) string {
	var allow string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			if allow != "" {
				allow += ", "
			}
			allow += m
		}
	}
	return allow
}

type requestIDKey struct{}

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// authenticate checks the bearer token of Authorization (bearerToken).
func (s *Server) authenticate(r *http.Request) (*captoken.Grant, error) {
	tok, ok := bearerToken(r)
	if !ok {
		return nil, errorf(api.CodeUnauthenticated, "no bearer token: send Authorization: Bearer <token>")
	}
	return s.auth.Verify(tok, s.opts.Now())
}

// bearerToken returns the token of r's Authorization header, unverified:
// the scheme name Bearer in any case (RFC 9110 §11.1, SPEC §5), then one
// or more spaces, then the token (RFC 9110 §11.4). ok is false when there
// is none.
func bearerToken(r *http.Request) (tok string, ok bool) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimLeft(tok, " ")
	return tok, strings.EqualFold(scheme, "Bearer") && tok != ""
}
