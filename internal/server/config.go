// Package server assembles a running ron-kms from its configuration: the
// data directory, the store, the key-encryption key, the token authority,
// the keystore and the HTTP API, with the listener's TLS and timeouts.
package server

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ron-kms/ron-kms/internal/keystore"
)

// Config is everything `ron-kms serve` can be told.
type Config struct {
	// DataDir holds kms.db, root.key (or kek.params) and admin.token.
	DataDir string
	// Listen is the TCP address to serve on.
	Listen string
	// Store is "bolt" (the embedded file, default) or "memory" (amnesia: RAM
	// only, nothing written to disk).
	Store string
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert, TLSKey string
	// InsecurePlaintext allows a non-loopback listener without TLS.
	InsecurePlaintext bool
	// PassphraseEnv names an environment variable holding a passphrase from
	// which the key-encryption key is derived (Argon2id) instead of root.key.
	PassphraseEnv string
	// BodyLimit caps request bodies in bytes.
	BodyLimit int64
	// MaxInflight bounds the API requests served at once (each tenant gets a
	// fair share); beyond it requests get 429 Backpressure. 0 means
	// httpapi.DefaultMaxInflight(): 16 × GOMAXPROCS, at least 128.
	MaxInflight int
	// ShutdownGrace bounds how long in-flight requests may finish at shutdown.
	ShutdownGrace time.Duration
	// Timeouts of the HTTP server.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// CacheSize bounds the in-memory key cache.
	CacheSize int
	// VerifyCacheTTL bounds how long verify and public-key reads are
	// answered from the cache while the store is unavailable
	// (--verify-cache-ttl SOFT[,HARD]; default 5m, hard twice the soft).
	// The zero value means the default.
	VerifyCacheTTL keystore.CacheTTL
	// VerifyModeFloor is the loosest verify mode a request may ask for of a
	// composite key: or, and (default) or pq_only.
	VerifyModeFloor string
	// SchedulerInterval is how often the lifecycle scheduler performs due
	// destructions and automatic rotations (it also runs once at start).
	SchedulerInterval time.Duration
	// AuditCheckpointEvery is the number of audit records between signed
	// checkpoints (SPEC §9; default 1000).
	AuditCheckpointEvery int
	// AcceptRollback lets a server whose store is older than the audit log's
	// last checkpoint (an old kms.db put back) accept writes again. The
	// acceptance is itself audited (op accept_rollback).
	AcceptRollback bool
	// DisableAudit runs without an audit log. No flag sets it: it exists
	// only so that benchmarks can measure what the audit log costs.
	DisableAudit bool

	// wrapAudit, for tests, wraps the audit sink (to inject failures).
	wrapAudit func(auditSink) auditSink
}

// Defaults returns the default configuration.
func Defaults() Config {
	return Config{
		DataDir:           "./ron-kms-data",
		Listen:            "127.0.0.1:9446",
		Store:             "bolt",
		BodyLimit:         1 << 20,
		ShutdownGrace:     15 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		VerifyModeFloor:   "and",
		VerifyCacheTTL:    keystore.DefaultCacheTTL,
		SchedulerInterval: time.Minute,

		AuditCheckpointEvery: 1000,
	}
}

// Check validates the configuration.
func (c *Config) Check() error {
	switch c.Store {
	case "bolt", "memory":
	default:
		return fmt.Errorf("server: --store must be bolt or memory, not %q", c.Store)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("server: --tls-cert and --tls-key go together")
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("server: --listen %q: %v", c.Listen, err)
	}
	if c.TLSCert == "" && !c.InsecurePlaintext && !isLoopback(host) {
		return fmt.Errorf("server: refusing to listen on %s without TLS: give --tls-cert and --tls-key, or --insecure-plaintext if a proxy in front terminates TLS", c.Listen)
	}
	switch c.VerifyModeFloor {
	case "or", "and", "pq_only":
	default:
		return fmt.Errorf("server: --verify-mode-floor must be or, and or pq_only, not %q", c.VerifyModeFloor)
	}
	if c.VerifyCacheTTL != (keystore.CacheTTL{}) {
		if err := c.VerifyCacheTTL.Check(); err != nil {
			return fmt.Errorf("server: --verify-cache-ttl: %v", err)
		}
	}
	if c.SchedulerInterval < time.Second {
		return errors.New("server: --scheduler-interval must be at least 1s")
	}
	if c.AuditCheckpointEvery < 0 {
		return errors.New("server: --audit-checkpoint-every must be at least 1 (0: the default, 1000)")
	}
	if c.MaxInflight < 0 {
		return errors.New("server: --max-inflight must be 0 (sized to the machine) or more")
	}
	if c.BodyLimit < 1024 {
		return errors.New("server: --body-limit must be at least 1024 bytes")
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
