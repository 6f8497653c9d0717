package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/internal/backup"
	"github.com/ron-kms/ron-kms/internal/keystore"
)

// checkBackup checks a 200 answer of GET /v1/kms/backup: a backup that
// verifies, whose records are exactly the store's, at its revision.
func checkBackup(t *testing.T, h *harness, r response) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q", ct)
	}
	br, err := backup.NewReader(bytes.NewReader(r.Raw))
	if err != nil {
		t.Fatalf("backup header: %v", err)
	}
	if hd := br.Header(); hd.KEK != backup.KEKRootKey || hd.Format != backup.Format {
		t.Errorf("header %+v", hd)
	}
	want := h.snapshot(t)
	var n int
	for {
		k, v, err := br.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("backup record %d: %v", n, err)
		}
		if n >= len(want.Items) || want.Items[n].Key != k || !bytes.Equal(want.Items[n].Value, v) {
			t.Fatalf("backup record %d (%q) is not the store's", n, k)
		}
		n++
	}
	tr, _ := br.Trailer()
	if n != len(want.Items) || tr.Revision != want.Revision {
		t.Fatalf("backup has %d records at revision %d; the store %d at %d", n, tr.Revision, len(want.Items), want.Revision)
	}
}

// TestBackupStreamsConsistently takes backups while keys are created: each
// one verifies, and each holds whole keys (metadata with its sealed seed).
func TestBackupStreamsConsistently(t *testing.T) {
	h := newHarness(t)
	h.createKey(t, "acme", "first", "ed25519") // so that every backup holds one
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			h.createKey(t, "acme", "load", "ed25519")
		}
	}()
	keys := 0
	for range 10 {
		r := h.do(t, "GET", "/v1/kms/backup", h.Admin, nil)
		if r.Status != 200 {
			t.Fatalf("backup: %d %s", r.Status, r.Raw)
		}
		br, err := backup.NewReader(bytes.NewReader(r.Raw))
		if err != nil {
			t.Fatal(err)
		}
		for {
			k, v, err := br.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(k, "k/") {
				continue
			}
			keys++
			// A key record holds its sealed seeds (key records v2).
			if vs, err := keystore.SealedVersions(v); err != nil || !slices.Contains(vs, 1) {
				t.Fatalf("backup holds the metadata of %s without its sealed seed: %v, %v", k[2:], vs, err)
			}
		}
	}
	cancel()
	<-done
	if keys == 0 {
		t.Fatal("no backup held a key")
	}
}
