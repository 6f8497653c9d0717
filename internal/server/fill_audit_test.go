package server

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/audit"
)

// TestFillAudit is a tool for scripts/bench-startup, not a check: with
// RON_KMS_FILL_AUDIT=<data-dir> it opens that (stopped) server's data
// directory and appends sign records through the server's own audit log
// until the log holds RON_KMS_FILL_AUDIT_RECORDS records (default
// 10,000,000), with the usual checkpoints, so that start-up can be timed
// against a log of that size. Without the variable it skips.
func TestFillAudit(t *testing.T) {
	dir := os.Getenv("RON_KMS_FILL_AUDIT")
	if dir == "" {
		t.Skip("a tool for scripts/bench-startup: set RON_KMS_FILL_AUDIT to a data directory")
	}
	want := uint64(10_000_000)
	if s := os.Getenv("RON_KMS_FILL_AUDIT_RECORDS"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RON_KMS_FILL_AUDIT_RECORDS: %v", err)
		}
		want = n
	}
	cfg := Defaults()
	cfg.DataDir = dir
	srv, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := srv.audit.(*audit.Log)
	if !ok {
		t.Fatalf("the server's audit sink is %T, not the durable log", srv.audit)
	}
	const batch = 8192
	rs := make([]audit.Record, batch)
	for i := range rs {
		in := make([]byte, audit.HashSize)
		rand.Read(in)
		rs[i] = audit.Record{Op: "sign", Tenant: "default", Kid: "kms:default:fill:v1", Alg: "ed25519",
			InputB3: in, Result: audit.ResultOK, RequestID: "fill", Actor: "fill"}
	}
	start, from := time.Now(), l.Info().Seq
	for seq := from; seq < want; seq += batch {
		n := min(uint64(batch), want-seq)
		for i := range rs[:n] {
			rs[i].TS = time.Time{}
		}
		if err := l.AppendAll(context.Background(), rs[:n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("appended %d records in %v", want-min(from, want), time.Since(start).Round(time.Millisecond))
}
