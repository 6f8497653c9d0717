package httpapi

import (
	"net/http"
	"strings"

	"github.com/ron-kms/ron-kms/api"
)

// healthz: GET /healthz. Cheap: the process is up and serving.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz: GET /readyz. 200 {"ready":true} when ready; otherwise 503 in the
// contract's error envelope (every non-2xx answer has that shape), code
// StoreUnavailable, with every reason in the message.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if reasons := s.opts.Ready(r.Context()); len(reasons) > 0 {
		s.writeError(w, r, errorf(api.CodeStoreUnavailable, "not ready: %s", strings.Join(reasons, "; ")))
		return
	}
	writeJSON(w, http.StatusOK, api.Readiness{Ready: true})
}

// version: GET /version.
func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.opts.Build)
}
