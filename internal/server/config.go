// Package server assembles a running ron-kms from its configuration: the
// data directory, the store, the key-encryption key, the token authority,
// the keystore and the HTTP API, with the listener's TLS and timeouts.
package server

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
)

// Config is everything `ron-kms serve` can be told.
type Config struct {
	// DataDir holds kms.db, root.key (or kek.params) and admin.token; with
	// the etcd store, only this node's audit log, admin.token and node.id.
	DataDir string
	// Listen is the TCP address to serve on.
	Listen string
	// Store is "bolt" (the embedded file, default), "etcd" (a cluster that
	// several nodes share, see EtcdEndpoints) or "memory" (amnesia: RAM
	// only, nothing written to disk).
	Store string
	// EtcdEndpoints are the client URLs of the etcd cluster's members
	// (--etcd-endpoints A,B,C); required with Store "etcd", refused
	// otherwise.
	EtcdEndpoints []string
	// EtcdPrefix is prepended to every key the node reads or writes in etcd
	// (default DefaultEtcdPrefix), so that one cluster can hold several
	// deployments. It must end in "/" and may not lie inside another
	// deployment's prefix, nor hold one.
	EtcdPrefix string
	// EtcdCACert, EtcdCert and EtcdKey are the PEM files of the client's TLS
	// to etcd: the CA that signed the members' certificates (else the
	// system pool) and a client certificate and key (both or neither).
	EtcdCACert, EtcdCert, EtcdKey string
	// KEKFile is a file holding the key-encryption key (32 raw bytes, or 64
	// hex characters and a newline; mode 0600 or 0400), read at start and
	// never written. With the etcd store every node is given the cluster's
	// key, so either KEKFile or PassphraseEnv is required; with bolt it
	// replaces root.key.
	KEKFile string
	// NodeID names this node in its audit records and checkpoints. Empty
	// means <data-dir>/node.id, which the etcd store creates on first start
	// ("node-" and 8 random hex digits); with bolt a node id is used only
	// when given or when node.id exists.
	NodeID string
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert, TLSKey string
	// InsecurePlaintext allows a non-loopback listener without TLS.
	InsecurePlaintext bool
	// PassphraseEnv names an environment variable holding a passphrase from
	// which the key-encryption key is derived (Argon2id) instead of root.key.
	// The Argon2id parameters (not secret) are in <data-dir>/kek.params,
	// or with the etcd store under meta/kek.params in the store, written by
	// the first node.
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
		EtcdPrefix:        DefaultEtcdPrefix,
		VerifyCacheTTL:    keystore.DefaultCacheTTL,
		SchedulerInterval: time.Minute,

		AuditCheckpointEvery: 1000,
	}
}

// Check validates the configuration.
func (c *Config) Check() error {
	switch c.Store {
	case "bolt", "memory", "etcd":
	default:
		return fmt.Errorf("server: --store must be bolt, etcd or memory, not %q", c.Store)
	}
	if err := c.checkEtcd(); err != nil {
		return err
	}
	if c.KEKFile != "" && c.PassphraseEnv != "" {
		return errors.New("server: give either --kek-file or --kek-passphrase-env, not both")
	}
	if c.KEKFile != "" && c.Store == "memory" {
		return errors.New("server: --kek-file does not apply to --store memory, whose key-encryption key lives and dies with the process")
	}
	if c.NodeID != "" {
		if err := CheckNodeID(c.NodeID); err != nil {
			return fmt.Errorf("server: --node-id: %w", err)
		}
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

// checkEtcd validates the etcd settings: required with --store etcd,
// refused with the other stores.
func (c *Config) checkEtcd() error {
	if c.Store != "etcd" {
		for _, f := range []struct{ name, val string }{
			{"--etcd-endpoints", strings.Join(c.EtcdEndpoints, ",")},
			{"--etcd-cacert", c.EtcdCACert}, {"--etcd-cert", c.EtcdCert}, {"--etcd-key", c.EtcdKey},
		} {
			if f.val != "" {
				return fmt.Errorf("server: %s is only for --store etcd", f.name)
			}
		}
		return nil
	}
	var eps []string
	for _, e := range c.EtcdEndpoints {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	c.EtcdEndpoints = eps
	if len(eps) == 0 {
		return errors.New("server: --store etcd needs --etcd-endpoints A,B,C (the client URLs of the etcd members)")
	}
	switch p := c.EtcdPrefix; {
	case p == "" || p == "/":
		return fmt.Errorf("server: --etcd-prefix %q would share the whole etcd cluster; give one of its own, such as %s", p, DefaultEtcdPrefix)
	case !strings.HasSuffix(p, "/"):
		return fmt.Errorf("server: --etcd-prefix %q must end in \"/\" (e.g. %q), so that it cannot overlap another deployment's", p, p+"/")
	case strings.IndexByte(p, 0) >= 0 || !utf8.ValidString(p):
		return errors.New("server: --etcd-prefix must be valid UTF-8 without NUL bytes")
	}
	if (c.EtcdCert == "") != (c.EtcdKey == "") {
		return errors.New("server: --etcd-cert and --etcd-key go together")
	}
	if c.KEKFile == "" && c.PassphraseEnv == "" {
		return errors.New("server: --store etcd needs the cluster's key-encryption key on every node: give --kek-file F or --kek-passphrase-env VAR (root.key is never used with etcd)")
	}
	return nil
}

// etcdTLS is the client TLS to etcd: the files given, or the system CA
// pool when an endpoint is https:// and no file is; nil for plain http.
func (c *Config) etcdTLS() *etcdstore.TLSFiles {
	if c.EtcdCACert != "" || c.EtcdCert != "" {
		return &etcdstore.TLSFiles{CACert: c.EtcdCACert, Cert: c.EtcdCert, Key: c.EtcdKey}
	}
	for _, e := range c.EtcdEndpoints {
		if strings.HasPrefix(e, "https://") {
			return &etcdstore.TLSFiles{}
		}
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
