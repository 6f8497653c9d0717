package httpapi

import (
	"net/http"
	"time"

	"github.com/ron-kms/ron-kms/internal/metrics"
)

// stageClock times the stages of one API call for
// kms_stage_latency_seconds (metrics.Stage): each mark observes the time
// since the previous one. time.Now carries a monotonic reading, so a wall
// clock step changes nothing. Used by the call's goroutine only.
type stageClock struct {
	last time.Time // zero: nothing to measure from
}

// start begins timing at the handler's start: it records the queue stage,
// from the token's verification (serveLimited) to now, if the request came
// through the limiter.
func (s *Server) stageStart(c *call) {
	now := time.Now()
	if a, ok := c.r.Context().Value(authKey{}).(*authResult); ok && !a.at.IsZero() {
		s.metrics.ObserveStage(metrics.StageQueue, now.Sub(a.at).Seconds())
	}
	c.clock.last = now
}

// stage records that c spent the time since the last mark in st.
func (s *Server) stage(c *call, st metrics.Stage) {
	now := time.Now()
	if !c.clock.last.IsZero() {
		s.metrics.ObserveStage(st, now.Sub(c.clock.last).Seconds())
	}
	c.clock.last = now
}

// restartStage moves the last mark to now: what follows is timed from
// here (the audit wait, measured on every route, not only those that mark
// their decode and operation).
func (s *Server) restartStage(c *call) { c.clock.last = time.Now() }

// authenticateTimed is authenticate, observed as the auth stage, and when
// it finished (the queue stage starts there).
func (s *Server) authenticateTimed(r *http.Request) (*authResult, error) {
	t0 := time.Now()
	grant, err := s.authenticate(r)
	a := &authResult{grant: grant, err: err, at: time.Now()}
	s.metrics.ObserveStage(metrics.StageAuth, a.at.Sub(t0).Seconds())
	return a, err
}
