package deployment_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/deployment"
)

// seeds are markers as New writes them, and near misses.
var seeds = []string{
	`{"format":"ron-kms-deployment/v1","id":"0123456789abcdef","created_at":"2026-01-02T03:04:05Z","created_by":"migrate"}`,
	`{"format":"ron-kms-deployment/v1","id":"fedcba9876543210","created_at":"2026-07-30T23:59:59Z","created_by":"serve"}`,
	`{"format":"ron-kms-deployment/v1","id":"00000000ffffffff","created_at":"2030-12-31T00:00:00Z","created_by":"restore"}`,
	`{"format":"ron-kms-deployment/v1", "id":"0123456789abcdef","created_at":"2026-01-02T03:04:05Z","created_by":"migrate"}`,
	`{"format":"ron-kms-deployment/v1","id":"0123456789ABCDEF","created_at":"2026-01-02T03:04:05Z","created_by":"migrate"}`,
	`{"format":"ron-kms-deployment/v1","id":"0123456789abcdef","created_at":"2026-01-02T03:04:05+01:00","created_by":"migrate"}`,
	`{"format":"ron-kms-deployment/v2","id":"0123456789abcdef","created_at":"2026-01-02T03:04:05Z","created_by":"migrate"}`,
	`{"format":"ron-kms-deployment/v1","id":"0123456789abcdef","created_at":"2026-01-02T03:04:05Z","created_by":"migrate","x":1}`,
	`{}`,
}

func TestNewParse(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))
	for _, by := range []string{deployment.ByServe, deployment.ByMigrate, deployment.ByRestore} {
		m := deployment.New(by, now)
		b := m.Marshal()
		got, err := deployment.Parse(b)
		if err != nil || got != m {
			t.Fatalf("Parse(Marshal(%+v)) = %+v, %v", m, got, err)
		}
		if m.CreatedAt != "2026-01-02T02:04:05Z" || m.CreatedBy != by || len(m.ID) != 16 {
			t.Errorf("New = %+v", m)
		}
	}
	if a, b := deployment.New(deployment.ByServe, now), deployment.New(deployment.ByServe, now); a.ID == b.ID {
		t.Error("two markers share an id")
	}
	for _, s := range seeds[3:] {
		if _, err := deployment.Parse([]byte(s)); !errors.Is(err, deployment.ErrMarker) {
			t.Errorf("Parse(%s) = %v, want ErrMarker", s, err)
		}
	}
	_, err := deployment.Parse([]byte(strings.Replace(seeds[0], "migrate", "someone", 1)))
	if !errors.Is(err, deployment.ErrMarker) || !strings.Contains(err.Error(), "created_by") {
		t.Errorf("unknown created_by: %v", err)
	}
}

// FuzzParse: a marker that parses re-encodes to the same bytes; anything
// else wraps ErrMarker.
func FuzzParse(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := deployment.Parse(b)
		if err != nil {
			if !errors.Is(err, deployment.ErrMarker) {
				t.Fatalf("Parse error %v does not wrap ErrMarker", err)
			}
			return
		}
		if !bytes.Equal(m.Marshal(), b) {
			t.Fatalf("Parse(%q) re-encodes to %q", b, m.Marshal())
		}
	})
}
