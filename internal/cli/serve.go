package cli

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/server"
)

func newServe() *cobra.Command {
	cfg := server.Defaults()
	var configFile, logLevel, pprofListen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the ron-kms server",
		Long: `Run the ron-kms server.

On first start it creates the data directory (0700) with:
  kms.db        the embedded key store (bbolt); private keys only sealed
  root.key      the key-encryption key (0600), unless --kek-passphrase-env is set
  admin.token   a token with every scope (0600): keep it safe, mint narrower ones
  audit/        the hash-chained audit log: one record per operation and denial,
                durable before the answer; checkpoints signed by the audit key
  audit.pub     the audit public key ("ron-kms audit verify" checks the log)

If the store's generation is below the one the audit log last recorded (an
old copy of kms.db was put back), the server starts but refuses writes (503
StoreUnavailable, and /readyz says why) until it is started with
--accept-rollback.

Every flag can also be set as an environment variable RON_KMS_<FLAG> (upper
case, '-' as '_', e.g. RON_KMS_LISTEN) or as a key of a JSON config file given
with --config (e.g. {"listen": "127.0.0.1:9446"}). Precedence: flags, then
environment, then config file, then defaults.

--store memory runs in amnesia mode: nothing is written to disk, every key is
lost at exit, and the admin token is printed once on standard output. Its
audit records go to the process log (standard error) only.

--store etcd runs one node of a cluster: every node given the same
--etcd-endpoints and --etcd-prefix (default ` + server.DefaultEtcdPrefix + `) serves the same keys,
and any node serves any request. Every node must be given the cluster's
key-encryption key: --kek-file F (the same file on every node: 32 random
bytes, or 64 hex characters and a newline, mode 0600 or 0400, e.g. from
"openssl rand -hex 32"), or --kek-passphrase-env VAR (the same passphrase;
its Argon2id parameters are kept in etcd, under meta/kek.params). root.key
is never used with etcd. The first node marks the prefix as a ron-kms
deployment (meta/deployment, with a check value sealed under the key). A
node refuses to start, in one line naming the fix and writing nothing, when
etcd does not answer within 5s, when its key is not the cluster's, or when
the prefix holds keys of something else or another deployment. Client TLS
to etcd: --etcd-cacert, --etcd-cert and --etcd-key. The data directory then
holds only this node's audit log (and audit.pub), admin.token and node.id.

--node-id names the node in every audit record and checkpoint (default: the
id in <data-dir>/node.id, created on the first etcd start as "node-" and 8
random hex digits). "ron-kms audit verify --data-dir A --data-dir B" checks
several nodes' logs at once. With etcd, the store generation that checkpoints
record is the cluster's revision: a cluster restored from an older snapshot
is refused for writes until --accept-rollback, as an old kms.db is.

Listening on a non-loopback address without TLS is refused unless
--insecure-plaintext is given. SIGINT or SIGTERM stop the server after the
requests in flight have finished.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyConfig(cmd.Flags(), configFile); err != nil {
				return err
			}
			log, err := newLogger(cmd, logLevel)
			if err != nil {
				return err
			}
			return serve(cmd, cfg, pprofListen, log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "address to listen on (host:port; port 0 picks a free one)")
	f.StringVar(&configFile, "config", "", "JSON config file with flag names as keys")
	f.StringVar(&cfg.Store, "store", cfg.Store, "key store: bolt (embedded file <data-dir>/kms.db), etcd (a cluster shared by several nodes) or memory (amnesia)")
	f.StringSliceVar(&cfg.EtcdEndpoints, "etcd-endpoints", nil, "etcd members' client URLs, comma-separated (with --store etcd), e.g. http://10.0.0.1:2379,http://10.0.0.2:2379")
	f.StringVar(&cfg.EtcdPrefix, "etcd-prefix", cfg.EtcdPrefix, "prefix of every key of this deployment in etcd; ends in /")
	f.StringVar(&cfg.EtcdCACert, "etcd-cacert", "", "CA certificate (PEM) that signed the etcd members' certificates (default: the system pool for https:// endpoints)")
	f.StringVar(&cfg.EtcdCert, "etcd-cert", "", "client certificate (PEM) for etcd; with --etcd-key")
	f.StringVar(&cfg.EtcdKey, "etcd-key", "", "client private key (PEM) for etcd; with --etcd-cert")
	f.StringVar(&cfg.KEKFile, "kek-file", "", "read the key-encryption key from this file (32 raw bytes, or 64 hex characters and a newline; mode 0600 or 0400) instead of root.key; with --store etcd, the same file on every node")
	f.StringVar(&cfg.NodeID, "node-id", "", "this node's id in its audit records and checkpoints (default: <data-dir>/node.id, created on the first etcd start)")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "TLS certificate file (PEM)")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	f.BoolVar(&cfg.InsecurePlaintext, "insecure-plaintext", false, "allow a non-loopback listener without TLS")
	f.StringVar(&cfg.PassphraseEnv, "kek-passphrase-env", "", "derive the key-encryption key (Argon2id) from the passphrase in this environment variable instead of root.key; its parameters are in <data-dir>/kek.params, or with --store etcd in the store")
	f.Int64Var(&cfg.BodyLimit, "body-limit", cfg.BodyLimit, "request body cap in bytes")
	f.IntVar(&cfg.MaxInflight, "max-inflight", cfg.MaxInflight, "API requests served at once, each tenant getting a fair share; beyond it 429 Backpressure (0: 16 × GOMAXPROCS, at least 128)")
	f.IntVar(&cfg.CacheSize, "cache-size", 0, "keys kept unsealed in memory (default 100000)")
	f.Var((*cacheTTLFlag)(&cfg.VerifyCacheTTL), "verify-cache-ttl", "while the key store is unavailable, verify and public-key reads are answered from the cache for up to SOFT[,HARD] (past SOFT /readyz says so; past HARD, default twice SOFT, they answer 503)")
	f.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", cfg.ShutdownGrace, "how long in-flight requests may finish at shutdown")
	f.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout, "HTTP read-header timeout")
	f.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "HTTP read timeout")
	f.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout, "HTTP write timeout")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout, "HTTP keep-alive idle timeout")
	f.StringVar(&cfg.VerifyModeFloor, "verify-mode-floor", cfg.VerifyModeFloor, "loosest verify mode a request may ask for of a hybrid key: or, and or pq_only (pq_only > and > or)")
	f.DurationVar(&cfg.SchedulerInterval, "scheduler-interval", cfg.SchedulerInterval, "how often due key-version destructions and automatic rotations run (they also run at start)")
	f.IntVar(&cfg.AuditCheckpointEvery, "audit-checkpoint-every", cfg.AuditCheckpointEvery, "audit records between signed audit checkpoints (one is also written at start and at shutdown)")
	f.BoolVar(&cfg.AcceptRollback, "accept-rollback", false, "accept a key store older than the audit log's last checkpoint (an old kms.db put back) and allow writes again; recorded in the audit log")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&pprofListen, "pprof-listen", "", "also serve Go runtime profiles (net/http/pprof) on this loopback address, for performance work (off by default)")
	return cmd
}

func newLogger(cmd *cobra.Command, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %v", err)
	}
	return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: l})), nil
}

func serve(cmd *cobra.Command, cfg server.Config, pprofListen string, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if pprofListen != "" {
		if err := servePprof(ctx, pprofListen, log); err != nil {
			return err
		}
	}
	raiseGOMAXPROCS(log)
	tuneGC(cfg.CacheSize, log)
	srv, err := server.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	if cfg.Store == "memory" {
		log.Warn("amnesia mode: the store lives in memory only; nothing is written to disk and every key is lost at exit")
		fmt.Fprintf(cmd.OutOrStdout(), "admin token (amnesia mode, shown once): %s\n", srv.AmnesiaAdminToken())
	}
	attrs := []any{slog.String("addr", scheme+"://"+ln.Addr().String()),
		slog.String("store", cfg.Store), slog.String("data_dir", cfg.DataDir)}
	if cfg.Store == "etcd" {
		attrs = append(attrs, slog.String("etcd_prefix", cfg.EtcdPrefix))
	}
	if id := srv.NodeID(); id != "" {
		attrs = append(attrs, slog.String("node_id", id))
	}
	log.Info("serving", attrs...)
	err = srv.Serve(ctx, ln)
	log.Info("stopped")
	return err
}

// applyConfig fills every flag the command line did not set from
// RON_KMS_<FLAG>, then from the JSON config file.
func applyConfig(fs *pflag.FlagSet, file string) error {
	if file == "" {
		file = os.Getenv("RON_KMS_CONFIG")
	}
	fileVals := map[string]json.RawMessage{}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--config: %w", err)
		}
		if err := json.Unmarshal(b, &fileVals); err != nil {
			return fmt.Errorf("--config %s: not a JSON object: %v", file, err)
		}
		for k := range fileVals {
			if fs.Lookup(k) == nil || k == "config" {
				return fmt.Errorf("--config %s: unknown setting %q", file, k)
			}
		}
	}
	var ferr error
	fs.VisitAll(func(f *pflag.Flag) {
		if ferr != nil || f.Changed || f.Name == "config" {
			return
		}
		env := "RON_KMS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := os.Getenv(env); v != "" {
			if err := f.Value.Set(v); err != nil {
				ferr = fmt.Errorf("%s: %v", env, err)
			}
			return
		}
		raw, ok := fileVals[f.Name]
		if !ok {
			return
		}
		// A list (for --etcd-endpoints) may be a JSON array of strings.
		var list []string
		if sv, ok := f.Value.(pflag.SliceValue); ok && json.Unmarshal(raw, &list) == nil {
			if err := sv.Replace(list); err != nil {
				ferr = fmt.Errorf("--config %s: %s: %v", file, f.Name, err)
			}
			return
		}
		// Strings are unquoted; numbers and booleans are used as written.
		v := string(raw)
		var str string
		if json.Unmarshal(raw, &str) == nil {
			v = str
		}
		if err := f.Value.Set(v); err != nil {
			ferr = fmt.Errorf("--config %s: %s: %v", file, f.Name, err)
		}
	})
	return ferr
}

// fsyncHeadroom is how many Ps serve adds to GOMAXPROCS: one each for the
// audit log's writer and the store's committer while they wait in fsync.
const fsyncHeadroom = 2

// raiseGOMAXPROCS gives the Go scheduler fsyncHeadroom Ps more than the
// CPUs the process may use, unless GOMAXPROCS is set in the environment.
//
// fsync(2) blocks in the kernel for a millisecond or more, and Go does not
// know it will: the thread in the system call keeps its P until the
// runtime's monitor takes it back, which can take up to 10 ms. On a server
// with one CPU (GOMAXPROCS 1) every request then waits while the audit log
// syncs, and the group commit that should share one fsync between the
// requests that arrive meanwhile gets nothing to share: measured on one
// CPU, 1,500 signatures/s with p99 0.2 to 0.9 s, against 4,500 to 5,900/s
// and p99 25 to 45 ms with spare Ps. Extra Ps cost nothing while idle.
func raiseGOMAXPROCS(log *slog.Logger) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	n := runtime.GOMAXPROCS(0) + fsyncHeadroom
	runtime.GOMAXPROCS(n)
	log.Debug("GOMAXPROCS raised for fsync headroom", slog.Int("gomaxprocs", n))
}

// GC settings of serve (tuneGC).
const (
	gcPercent = 400
	// gcBaseBytes is the memory limit's allowance for everything but the
	// key cache; gcBytesPerKey its allowance per cached key (a cached
	// Ed25519 key with a label, its record, parsed public key and
	// unsealed private key, takes 1,445 bytes of heap:
	// keystore.BenchmarkCachedKeyBytes; larger keys are rarer). With the
	// default cache of 100,000 keys the limit is 242 MiB, so that the
	// process's anonymous memory stays within 256 MiB however many keys
	// are in use (DECISIONS.md, "Key records v2").
	gcBaseBytes   = 96 << 20
	gcBytesPerKey = 1536
)

// tuneGC lets the heap grow to five times what is live (GOGC 400) instead
// of twice, within a soft memory limit sized to the key cache, unless GOGC
// or GOMEMLIMIT is set in the environment.
//
// A server's live heap is small (a few MB besides the key cache) and every
// request allocates a few KB, so with the default the collector ran every
// 150 ms, each cycle taking the CPU from requests for 5 ms: on one CPU at
// half the maximum signing rate, p99 5.5 to 8.4 ms with the default, 2.2 to
// 3.0 ms with GOGC 400 (memory store). The limit keeps a server with a full
// cache from growing to five times its cache: the collector works harder
// near it instead.
func tuneGC(cacheSize int, log *slog.Logger) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if cacheSize <= 0 {
		cacheSize = keystore.DefaultCacheSize
	}
	limit := int64(gcBaseBytes) + int64(cacheSize)*gcBytesPerKey
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(limit)
	log.Debug("garbage collector tuned", slog.Int("gogc", gcPercent), slog.Int64("memory_limit", limit))
}

// cacheTTLFlag is --verify-cache-ttl: SOFT or SOFT,HARD (keystore.ParseCacheTTL).
type cacheTTLFlag keystore.CacheTTL

func (f *cacheTTLFlag) String() string { return keystore.CacheTTL(*f).String() }

func (f *cacheTTLFlag) Set(s string) error {
	t, err := keystore.ParseCacheTTL(s)
	if err != nil {
		return err
	}
	*f = cacheTTLFlag(t)
	return nil
}

func (f *cacheTTLFlag) Type() string { return "SOFT[,HARD]" }
