package server

import (
	"context"
	"crypto/fips140"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/alg"
	"github.com/ron-kms/ron-kms/internal/audit"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/fsutil"
	"github.com/ron-kms/ron-kms/internal/httpapi"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/metrics"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/sig"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/boltstore"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

// File names inside the data directory.
const (
	DBFile         = "kms.db"
	RootKeyFile    = "root.key"
	ParamsFile     = "kek.params"
	AdminTokenFile = "admin.token"
)

// tokenRootSecret is the name of the macaroon root secret among the server
// secrets.
const tokenRootSecret = "token-root"

// Server is an assembled ron-kms. Its methods are safe for concurrent use.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     storage.Store
	ks        *keystore.Keystore
	sched     *keystore.Scheduler
	api       *httpapi.Server
	sealer    *seal.AESGCM
	adminTk   string               // only in amnesia mode, where it is not written to disk
	kekParams []byte               // kek.params in passphrase mode, for backup headers
	node      string               // this node's id in the audit log; "" for none
	audit     auditSink            // nil only with Config.DisableAudit
	rollback  *audit.RollbackError // set when writes are refused (see openAudit)
	gen       atomic.Uint64        // the highest store generation seen (storeGeneration)
	startGen  uint64               // the generation at start, before this node wrote (the rollback check's)
}

// Open prepares the data directory, the store and the key-encryption key,
// and builds the API. On first start it writes <data-dir>/admin.token (0600).
//
// With the etcd store it first makes sure that the node may join: etcd
// answers, the prefix is a ron-kms deployment of its own (or empty), and
// this node's key-encryption key is the deployment's. Until then nothing is
// written, in etcd or in the data directory, and a refusal is one line
// that names the fix (see openEtcd).
func Open(ctx context.Context, cfg Config, log *slog.Logger) (_ *Server, err error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.openStore(ctx); err != nil {
		return nil, err
	}
	// The generation the rollback check compares, read before anything
	// else writes the store.
	if s.startGen, err = s.readGeneration(ctx, 0); err != nil {
		return nil, fmt.Errorf("server: reading the store's generation: %w", err)
	}
	s.ks, err = keystore.Open(ctx, keystore.Config{Store: s.store, Sealer: s.sealer, CacheSize: cfg.CacheSize,
		VerifyCacheTTL: cfg.VerifyCacheTTL, Log: log})
	if err != nil {
		return nil, err
	}
	// Before anything else may write the store: the rollback check reads
	// its generation.
	if err := s.openAudit(ctx); err != nil {
		return nil, err
	}
	if err := s.migrateRecords(ctx); err != nil {
		return nil, err
	}
	root, err := s.ks.ServerSecret(ctx, tokenRootSecret, 32)
	if err != nil {
		return nil, err
	}
	auth, err := captoken.NewAuthority(root, "ron-kms")
	clear(root)
	if err != nil {
		return nil, err
	}
	if err := s.ensureAdminToken(auth); err != nil {
		return nil, err
	}
	// The server's own keys (audit, attestation, import wrapping) are made
	// on first start, sealed like any key.
	if _, err := s.ks.ServerKeys(ctx); err != nil {
		return nil, err
	}
	if _, err := s.ks.ImportWrappingKey(ctx); err != nil {
		return nil, err
	}
	s.api, err = httpapi.New(s.ks, auth, metrics.New(), log, httpapi.Options{
		BodyLimit:       cfg.BodyLimit,
		MaxInflight:     cfg.MaxInflight,
		Build:           buildInfo(cfg.Store),
		Ready:           s.ready,
		VerifyModeFloor: cfg.VerifyModeFloor,
		BackupKEK:       s.backupKEK(),
		Audit:           s.auditor(),
		RefuseWrites:    s.refuseWrites(),
	})
	if err != nil {
		return nil, err
	}
	if s.rollback == nil {
		// A rolled-back store is not written, by the scheduler either.
		s.sched = keystore.NewScheduler(s.ks, cfg.SchedulerInterval, s.logTick)
		s.sched.Start()
	}
	return s, nil
}

// logTick logs what a scheduler tick did.
func (s *Server) logTick(rep keystore.TickReport, err error) {
	s.auditScheduled("auto_rotate", rep.Rotated)
	s.auditScheduled("erase", rep.Destroyed)
	for _, kid := range rep.Rotated {
		s.log.Info("rotated automatically", slog.String("kid", kid))
	}
	for _, kid := range rep.Destroyed {
		s.log.Info("destroyed a key version after its waiting period", slog.String("kid", kid))
	}
	for _, e := range rep.Errors {
		s.log.Warn("scheduler action failed; retried on the next tick", slog.String("error", e.Error()))
	}
	if err != nil {
		s.log.Warn("scheduler tick failed", slog.String("error", err.Error()))
	}
}

// openStore opens the configured store and its key-encryption key
// (s.store, s.sealer) and decides the node id.
func (s *Server) openStore(ctx context.Context) error {
	switch s.cfg.Store {
	case "memory":
		s.store = memstore.New()
		kek := make([]byte, seal.KEKSize)
		rand.Read(kek)
		return s.setSealer(kek)
	case "etcd":
		return s.openEtcd(ctx)
	}
	if err := s.prepareDataDir(); err != nil {
		return err
	}
	kek, err := s.loadKEK()
	if err != nil {
		return err
	}
	st, err := boltstore.Open(filepath.Join(s.cfg.DataDir, DBFile))
	if err != nil {
		clear(kek)
		return err
	}
	s.store = st
	if err := s.setSealer(kek); err != nil {
		return err
	}
	s.node, err = s.nodeID(false)
	return err
}

// setSealer makes the sealer from kek, and clears kek.
func (s *Server) setSealer(kek []byte) error {
	sealer, err := seal.NewAESGCM(kek)
	clear(kek)
	if err != nil {
		return err
	}
	s.sealer = sealer
	return nil
}

// prepareDataDir creates the data directory (0700) if it is missing. A
// data directory others can write to is refused; one they can only read is
// tightened to 0700, with a warning (fsutil.PrivateDir).
func (s *Server) prepareDataDir() error {
	was, err := fsutil.PrivateDir(s.cfg.DataDir)
	if err != nil {
		return fmt.Errorf("server: data directory: %w", err)
	}
	if was != 0 {
		s.log.Warn("the data directory was readable by group or others; its mode is now 0700",
			slog.String("dir", s.cfg.DataDir), slog.String("was", fmt.Sprintf("%04o", was)))
	}
	return nil
}

// loadKEK reads --kek-file or root.key, or derives the KEK from the
// passphrase, for the bolt store.
func (s *Server) loadKEK() ([]byte, error) {
	if s.cfg.KEKFile != "" {
		return seal.LoadKEKFile(s.cfg.KEKFile)
	}
	if s.cfg.PassphraseEnv != "" {
		pass, err := seal.PassphraseFromEnv(s.cfg.PassphraseEnv)
		if err != nil {
			return nil, err
		}
		defer clear(pass)
		params, _, err := seal.LoadOrCreatePassphraseParams(filepath.Join(s.cfg.DataDir, ParamsFile))
		if err != nil {
			return nil, err
		}
		s.kekParams = params.Marshal()
		return params.DeriveKEK(pass)
	}
	kek, created, err := seal.LoadOrCreateRootKey(filepath.Join(s.cfg.DataDir, RootKeyFile))
	if err != nil {
		return nil, err
	}
	if created {
		s.log.Info("created a new key-encryption key", slog.String("file", filepath.Join(s.cfg.DataDir, RootKeyFile)))
	}
	return kek, nil
}

// ensureAdminToken mints the admin token on first start. In amnesia mode it
// is kept in memory for the caller to show once.
func (s *Server) ensureAdminToken(auth *captoken.Authority) error {
	if s.cfg.Store == "memory" {
		tok, _, err := auth.Mint(captoken.Restrictions{})
		s.adminTk = tok
		return err
	}
	path := filepath.Join(s.cfg.DataDir, AdminTokenFile)
	if _, err := os.Stat(path); err == nil {
		if b, err := os.ReadFile(path); err == nil {
			s.warnRevokedAdmin(path, string(b))
		}
		return nil
	}
	tok, id, err := auth.Mint(captoken.Restrictions{})
	if err != nil {
		return err
	}
	err = fsutil.CreateFileAtomic(path, []byte(tok+"\n"))
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("server: writing %s: %w", path, err)
	}
	s.log.Info("wrote the admin token", slog.String("file", path), slog.String("token_id", id))
	return nil
}

// warnRevokedAdmin logs a warning when the admin token in path (its
// contents tok, a secret never logged) has been revoked: the operator gets a
// new one by removing the file and starting again.
func (s *Server) warnRevokedAdmin(path, tok string) {
	info, err := captoken.Inspect(strings.TrimSpace(tok))
	if err != nil || !s.ks.TokenRevoked(info.ID) {
		return
	}
	s.log.Warn("the admin token is revoked; to get a new one, stop the server, remove the file and start again",
		slog.String("file", path), slog.String("token_id", info.ID))
}

// NodeID is this node's id in its audit log ("" when it has none).
func (s *Server) NodeID() string { return s.node }

// AmnesiaAdminToken returns the admin token of a memory-store server (it is
// written nowhere); "" otherwise. It is a secret.
func (s *Server) AmnesiaAdminToken() string { return s.adminTk }

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return s.api }

// ready lists why the server is not ready. An unavailable store is not
// among them: the keystore reports it (httpapi lists it under degraded in
// /readyz while verify can be answered from the cache), so the store is
// checked here only while the keystore finds it healthy, through the
// keystore, whose failed calls mark it unhealthy.
func (s *Server) ready(ctx context.Context) []string {
	// The store's health is the keystore's (its probe reads the store twice
	// a second, and /readyz lists it under degraded), and the key-encryption
	// key was checked against the store at start: /readyz, which anyone may
	// call, costs no store read and no unsealing.
	return s.auditReady(nil)
}

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (up to ShutdownGrace) and
// returns.
//
// It speaks HTTP/1.1 and HTTP/2: over TLS the client picks one by ALPN
// ("h2", then "http/1.1"); on a plaintext listener a client that opens with
// the HTTP/2 preface gets h2c (prior knowledge, RFC 9113 §3.3), any other
// gets HTTP/1.1 exactly as before. The h2c upgrade dance of RFC 7540 §3.2
// is not offered. The timeouts and the header cap hold for both.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{
		Protocols:         &protocols,
		Handler:           s.api,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(s.cfg.TLSCert, s.cfg.TLSKey)
		if err != nil {
			return fmt.Errorf("server: TLS key pair: %w", err)
		}
		// The listener is wrapped here rather than by ServeTLS, so ALPN's
		// list is set here too: h2 first, as ServeTLS would.
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"}}
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	return err
}

// Close releases the keystore, the store and the key-encryption key. It
// writes the API's collapsed denials, then closes the audit log (a final
// signed checkpoint) before the store, so call it after Serve has
// returned: the HTTP server has drained by then.
func (s *Server) Close() error {
	if s.sched != nil {
		s.sched.Stop()
	}
	var aerr error
	if s.api != nil {
		if err := s.api.Close(); err != nil {
			aerr = fmt.Errorf("server: writing the collapsed denials to the audit log: %w", err)
		}
	}
	if s.audit != nil {
		if err := s.audit.Close(); err != nil {
			aerr = errors.Join(aerr, fmt.Errorf("server: closing the audit log: %w", err))
		}
	}
	if s.ks != nil {
		s.ks.Close()
	}
	if s.sealer != nil {
		s.sealer.Destroy()
	}
	if s.store != nil {
		return errors.Join(aerr, s.store.Close())
	}
	return aerr
}

// Version is the build version, set with -ldflags "-X ...server.Version=v1".
var Version = "dev"

func buildInfo(store string) api.BuildInfo {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return api.BuildInfo{Version: v, GoVersion: runtime.Version(), Algs: alg.Names(), Store: store,
		CompositeSigs: sig.CompositeDraft, FIPS140: fips140.Enabled()}
}

var _ io.Closer = (*Server)(nil)

// migrateRecords rewrites the store's version 1 key records as version 2
// (keystore.MigrateRecords) once the rollback check allows writes: a
// rolled-back store is not written, and keeps being read in both forms. A
// migration that did something is logged and audited (op
// migrate_key_records, Count the keys); records it left are logged, one
// line each, and keep reading as before.
func (s *Server) migrateRecords(ctx context.Context) error {
	if s.rollback != nil {
		return nil
	}
	rep, err := s.ks.MigrateRecords(ctx)
	for _, e := range rep.Left {
		s.log.Warn("key record left in version 1", slog.String("error", e.Error()))
	}
	if rep.Migrated > 0 {
		s.log.Info("key records migrated to version 2", slog.Int("keys", rep.Migrated))
		if s.audit != nil {
			if aerr := s.audit.AppendAll(ctx, []audit.Record{{Op: "migrate_key_records", Result: audit.ResultOK,
				Actor: "server", Count: uint64(rep.Migrated)}}); aerr != nil {
				return fmt.Errorf("server: recording the key record migration: %w", aerr)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("server: migrating key records to version 2 (%d done; the next start goes on): %w", rep.Migrated, err)
	}
	return nil
}
