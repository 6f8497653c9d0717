package httpapi

import (
	"net/http"
	"strings"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/keystore"
)

// healthz: GET /healthz. Cheap: the process is up and serving.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// livez: GET /livez. 200 while the process serves HTTP, whatever the state
// of its store: a liveness probe that restarts the process would not bring
// a lost store back, and would empty the cache that verify is answered
// from.
func (s *Server) livez(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz: GET /readyz (SPEC §10). 200 {"ready":true,"degraded":[...]} when
// the server can serve: an unavailable store is listed under degraded, with
// the reason and the cache's age, while verify can still be answered from
// the cache (until the hard TTL); past the soft TTL the reason says so.
// Otherwise 503 in the contract's error envelope (every non-2xx answer has
// that shape), code StoreUnavailable, with every reason in the message.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	reasons := s.opts.Ready(r.Context())
	h := s.ks.Health()
	degraded := []api.Degraded{}
	if !h.Healthy {
		if h.PastHardTTL() {
			reasons = append(reasons, "store: "+storeReason(h))
		} else {
			age := h.CacheAge.Milliseconds()
			degraded = append(degraded, api.Degraded{
				Component: "store", Reason: storeReason(h),
				Since: h.StaleSince.UTC().Format(time.RFC3339Nano), CacheAgeMS: &age,
			})
		}
	}
	if len(reasons) > 0 {
		s.writeError(w, r, errorf(api.CodeStoreUnavailable, "not ready: %s", strings.Join(reasons, "; ")))
		return
	}
	writeJSON(w, http.StatusOK, api.Readiness{Ready: true, Degraded: degraded})
}

// storeReason says what an unavailable store means for the API.
func storeReason(h keystore.Health) string {
	age := h.CacheAge.Round(time.Millisecond)
	switch {
	case h.PastHardTTL():
		return h.Reason + "; the verify cache is " + age.String() + " old, past its hard TTL " + h.TTL.Hard.String() + ": nothing is served"
	case h.PastSoftTTL():
		return h.Reason + "; the verify cache is " + age.String() + " old, older than its soft TTL " + h.TTL.Soft.String() +
			" (verify answers stop at the hard TTL " + h.TTL.Hard.String() + "); writes and private-key operations fail closed"
	}
	return h.Reason + "; writes and private-key operations fail closed, verify and public-key reads are answered from the cache (" + age.String() + " old)"
}

// version: GET /version.
func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.opts.Build)
}
