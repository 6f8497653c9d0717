package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ron-kms/ron-kms/internal/audit"
	"github.com/ron-kms/ron-kms/internal/httpapi"
)

// auditKeySecret is the server secret whose 32 bytes are the audit key's
// Ed25519 seed; it is the key GET /v1/kms/audit/key serves (keystore
// ServerKeys).
const auditKeySecret = "audit-key"

// auditSink is where the server's audit records go: the durable log
// (*audit.Log) or, in amnesia mode, the process log (logSink).
type auditSink interface {
	httpapi.Auditor
	// Healthy is nil while records can be written; otherwise why not.
	Healthy() error
	Close() error
}

var _ auditSink = (*audit.Log)(nil)

// openAudit opens the audit log (SPEC §9) at <data-dir>/audit with the
// audit key, writes <data-dir>/audit.pub, and checks the store against the
// log's last checkpoint: a store whose generation went down was rolled back,
// and the server then refuses writes (s.rollback) unless the operator
// accepted it (--accept-rollback), which is recorded as op accept_rollback.
// It must run before anything writes the store, so that the generation the
// check reads is the one the data directory was left with.
func (s *Server) openAudit(ctx context.Context) error {
	if s.cfg.DisableAudit {
		s.log.Warn("the audit log is disabled (benchmark configuration): operations are not recorded")
		return nil
	}
	if s.cfg.Store == "memory" {
		s.log.Warn("amnesia mode: the audit log is not durable; audit records go to this process's log only (level info, msg \"audit\")")
		s.setAudit(&logSink{log: s.log, node: s.cfg.NodeID})
		return nil
	}
	seed, err := s.ks.ServerSecret(ctx, auditKeySecret, ed25519.SeedSize)
	if err != nil {
		return err
	}
	// audit.Open compares the generation with the last checkpoint's: that
	// comparison must see the store as it was at start, before this node's
	// keystore (or, on etcd, other nodes) wrote. Until Open returns the
	// generation is that one; afterwards, for checkpoints, the store's.
	var opened atomic.Bool
	gen := func() uint64 {
		if !opened.Load() {
			return s.startGen
		}
		return s.storeGeneration()
	}
	l, err := audit.Open(filepath.Join(s.cfg.DataDir, audit.DirName), audit.Options{
		AuditKeySeed:    seed,
		StoreGeneration: gen,
		AcceptRollback:  s.cfg.AcceptRollback,
		CheckpointEvery: s.cfg.AuditCheckpointEvery,
		Logger:          s.log,
		Node:            s.node,
	})
	opened.Store(true)
	clear(seed)
	if err != nil {
		return fmt.Errorf("server: opening the audit log: %w", err)
	}
	s.setAudit(l)
	if err := audit.WritePublicKeyFile(s.cfg.DataDir, l.PublicKey()); err != nil {
		return fmt.Errorf("server: writing %s: %w", audit.PublicKeyFile, err)
	}
	info := l.Info()
	switch rb := info.Rollback; {
	case rb != nil && info.RollbackAccepted:
		s.log.Warn("store rollback accepted (--accept-rollback): writes are allowed again",
			slog.Uint64("store_generation", rb.StoreGeneration), slog.Uint64("checkpoint_generation", rb.CheckpointGeneration),
			slog.Uint64("checkpoint", rb.Checkpoint))
		err := s.audit.AppendAll(ctx, []audit.Record{{Op: "accept_rollback", Result: audit.ResultOK, Actor: "operator"}})
		if err != nil {
			return fmt.Errorf("server: recording the accepted rollback: %w", err)
		}
	case rb != nil:
		s.rollback = rb
		s.log.Error("the store was rolled back: writes are refused until the server is started with --accept-rollback",
			slog.String("error", rb.Error()))
	case s.cfg.AcceptRollback:
		s.log.Warn("--accept-rollback given, but the store was not rolled back: nothing to accept")
	}
	return nil
}

// setAudit installs sink, through the test hook when there is one.
func (s *Server) setAudit(sink auditSink) {
	if s.cfg.wrapAudit != nil {
		sink = s.cfg.wrapAudit(sink)
	}
	s.audit = sink
}

// generationTimeout bounds the store read of storeGeneration, which runs
// on the audit log's writer for every checkpoint: with a store that does
// not answer (etcd without quorum) the log goes on with the last
// generation seen rather than wait for the store's full request timeout.
const generationTimeout = 250 * time.Millisecond

// storeGeneration is the store's generation counter for audit checkpoints:
// its revision, which grows with every write (with etcd, the cluster's
// revision, which also grows with other nodes' and other prefixes' writes,
// and is lower on a cluster restored from an older snapshot). When the
// store does not answer within generationTimeout it is the highest
// generation seen so far.
func (s *Server) storeGeneration() uint64 {
	g, _ := s.readGeneration(context.Background(), generationTimeout)
	return g
}

// readGeneration reads the store's revision (bounded by timeout unless it
// is 0), raises s.gen to it, and returns s.gen; on error, s.gen as it was.
func (s *Server) readGeneration(ctx context.Context, timeout time.Duration) (uint64, error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	rev, err := s.store.Revision(ctx)
	if err != nil || rev < 0 {
		return s.gen.Load(), err
	}
	for {
		old := s.gen.Load()
		if uint64(rev) <= old || s.gen.CompareAndSwap(old, uint64(rev)) {
			return max(old, uint64(rev)), nil
		}
	}
}

// refuseWrites is why the API must refuse writes, nil when it may write.
func (s *Server) refuseWrites() error {
	if s.rollback == nil {
		return nil
	}
	return fmt.Errorf("%v; start the server with --accept-rollback once the store is the one to keep", s.rollback)
}

// auditReady adds the audit log's and the rollback's readiness reasons.
func (s *Server) auditReady(reasons []string) []string {
	if s.audit != nil {
		if err := s.audit.Healthy(); err != nil {
			reasons = append(reasons, "audit log: "+err.Error())
		}
	}
	if err := s.refuseWrites(); err != nil {
		reasons = append(reasons, "store rollback, writes refused: "+err.Error())
	}
	return reasons
}

// auditScheduled records what a scheduler tick did (actor "scheduler").
// The actions are already done, so a record that cannot be written is only
// logged.
func (s *Server) auditScheduled(op string, kids []string) {
	if s.audit == nil || len(kids) == 0 {
		return
	}
	rs := make([]audit.Record, len(kids))
	for i, kid := range kids {
		rs[i] = audit.Record{Op: op, Kid: kid, Result: audit.ResultOK, Actor: "scheduler"}
	}
	if err := s.audit.AppendAll(context.Background(), rs); err != nil {
		s.log.Error("audit: a scheduler action could not be recorded", slog.String("op", op), slog.String("error", err.Error()))
	}
}

// logSink is the audit sink of amnesia mode, which writes nothing to disk:
// each record becomes one line of the process log. It numbers records but
// keeps no hash chain and signs no checkpoints: there is nothing durable to
// protect, and the audit key dies with the process.
type logSink struct {
	log  *slog.Logger
	node string
	mu   sync.Mutex
	seq  uint64
}

func (l *logSink) AppendAll(ctx context.Context, rs []audit.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range rs {
		if r.Op == "" || r.Result == "" {
			return errors.New("audit: invalid record: op and result are required")
		}
		l.seq++
		l.log.LogAttrs(ctx, slog.LevelInfo, "audit",
			slog.Uint64("seq", l.seq), slog.String("op", r.Op), slog.String("tenant", r.Tenant),
			slog.String("kid", r.Kid), slog.String("alg", r.Alg), slog.String("input_b3", fmt.Sprintf("%x", r.InputB3)),
			slog.String("result", r.Result), slog.String("code", r.Code),
			slog.String("request_id", r.RequestID), slog.String("actor", r.Actor),
			slog.Uint64("count", max(r.Count, 1)), slog.String("detail", r.Detail), slog.String("node", l.node))
	}
	return nil
}

func (l *logSink) Healthy() error { return nil }
func (l *logSink) Close() error   { return nil }

// auditor is the API's audit sink; a nil interface (not a nil pointer)
// when the audit log is disabled.
func (s *Server) auditor() httpapi.Auditor {
	if s.audit == nil {
		return nil
	}
	return s.audit
}
