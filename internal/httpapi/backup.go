package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/backup"
)

// BackupKEK describes the server's key-encryption key for the header of a
// backup. None of it is secret; the KEK itself is never in a backup.
type BackupKEK struct {
	// Source is backup.KEKRootKey or backup.KEKPassphrase; "" means this
	// server cannot be backed up usefully (amnesia mode: its KEK lives only
	// in memory).
	Source string
	// ID is the KEK id (seal.AESGCM.KEKID) in lower-case hex.
	ID string
	// Params is the passphrase KDF parameter file (kek.params), for
	// KEKPassphrase.
	Params []byte
}

// backupWriteWindow is how long a backup may take to stream: it replaces
// the server's write timeout for this route and bounds how long a slow
// client can keep the store's read view open.
const backupWriteWindow = 10 * time.Minute

// backup: GET /v1/kms/backup (kms:admin, unrestricted token only). It
// streams a ron-kms-backup/v1 file (package backup) of one consistent
// snapshot of the store. Records are copied as stored, so sealed seeds stay
// sealed. An error before the first byte is the usual envelope; an error
// after it aborts the connection, and the file lacks its trailer.
func (s *Server) backup(c *call) error {
	if !c.grant.Unrestricted() {
		return errorf(api.CodeNoCapability, "a backup holds every tenant's keys: it needs an unrestricted admin token")
	}
	if c.r.URL.RawQuery != "" {
		return errorf(api.CodeBadRequest, "backup takes no query parameters")
	}
	kek := s.opts.BackupKEK
	if kek.Source == "" {
		return errorf(api.CodeUnsupported, "this server keeps its key-encryption key only in memory (amnesia mode): a backup could never be restored")
	}
	hdr := backup.Header{
		CreatedAt: s.opts.Now().UTC().Truncate(time.Second).Format(time.RFC3339),
		KEK:       kek.Source,
		KEKID:     kek.ID,
		Server:    s.opts.Build.Version,
	}
	if len(kek.Params) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, kek.Params); err != nil {
			return err
		}
		hdr.KEKParams = buf.Bytes()
	}
	// The audit record is appended before the first byte goes out: the
	// route streams, so it cannot wait for the end to be audited.
	out := &backupResponse{w: c.w, before: func() error { return s.auditNow(c) }}
	bw := bufio.NewWriterSize(out, 64<<10)
	w, err := backup.NewWriter(bw, hdr)
	if err != nil {
		return err // a server misconfiguration: Internal
	}
	// The server's write timeout is for small answers; this one may be big.
	_ = http.NewResponseController(c.w).SetWriteDeadline(time.Now().Add(backupWriteWindow))

	var items int64
	rev, err := s.ks.Snapshot(c.r.Context(), func(key string, value []byte) error {
		items++
		return w.Add(key, value)
	})
	if err == nil {
		err = w.Close(rev)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if !out.started {
			return err
		}
		// The 200 is gone: cut the connection, so the client sees an error
		// and not a file that merely lacks its trailer.
		s.log.LogAttrs(c.r.Context(), slog.LevelError, "backup failed while streaming",
			slog.String("request_id", requestID(c.r.Context())), slog.String("error", err.Error()))
		panic(http.ErrAbortHandler)
	}
	s.metrics.Ops.WithLabelValues("backup", "").Inc()
	s.log.LogAttrs(c.r.Context(), slog.LevelInfo, "backup",
		slog.String("request_id", requestID(c.r.Context())),
		slog.Int64("items", items), slog.Int64("revision", rev))
	return nil
}

// backupResponse sends the success headers with the first byte of the body.
type backupResponse struct {
	w       http.ResponseWriter
	before  func() error // called once, before the first byte; its error stops the response
	started bool
}

func (b *backupResponse) Write(p []byte) (int, error) {
	if !b.started {
		if err := b.before(); err != nil {
			return 0, err
		}
		b.started = true
		h := b.w.Header()
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Content-Disposition", `attachment; filename="ron-kms.backup"`)
		h.Set("Cache-Control", "no-store")
		b.w.WriteHeader(http.StatusOK)
	}
	return b.w.Write(p)
}
