package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/internal/deployment"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/server"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/boltstore"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
	"github.com/ron-kms/ron-kms/internal/storecopy"
)

// etcdTarget holds the flags that name the etcd prefix a copy writes
// (migrate, restore --to).
type etcdTarget struct {
	to, prefix        string
	cacert, cert, key string
}

func (e *etcdTarget) flags(cmd *cobra.Command, toHelp string) {
	cmd.Flags().StringVar(&e.to, "to", "", toHelp)
	cmd.Flags().StringVar(&e.prefix, "etcd-prefix", "", "etcd key prefix of the deployment, ending in / (the serve --etcd-prefix of every node)")
	cmd.Flags().StringVar(&e.cacert, "etcd-cacert", "", "PEM file of the CA that signed the etcd members' certificates (etcds://; default: the system pool)")
	cmd.Flags().StringVar(&e.cert, "etcd-cert", "", "PEM client certificate for etcd (etcds://, with --etcd-key)")
	cmd.Flags().StringVar(&e.key, "etcd-key", "", "PEM private key of --etcd-cert")
}

// check parses and checks the flags, without connecting.
func (e *etcdTarget) check() (storecopy.EtcdTarget, error) {
	u, err := etcdstore.ParseURL(e.to)
	if err != nil {
		return storecopy.EtcdTarget{}, err
	}
	t := storecopy.EtcdTarget{URL: u, Prefix: e.prefix}
	if e.cacert != "" || e.cert != "" || e.key != "" {
		t.TLS = &etcdstore.TLSFiles{CACert: e.cacert, Cert: e.cert, Key: e.key}
	}
	if err := storecopy.CheckTarget(t); err != nil {
		return storecopy.EtcdTarget{}, err
	}
	return t, nil
}

// open parses the flags and opens the target; nothing is written.
func (e *etcdTarget) open(ctx context.Context) (*etcdstore.URL, *etcdstore.Store, error) {
	t, err := e.check()
	if err != nil {
		return nil, nil, err
	}
	st, err := storecopy.OpenEtcd(ctx, t)
	if err != nil {
		return nil, nil, err
	}
	return t.URL, st, nil
}

// tlsArgs are the TLS flags given, spelled for the command named by style
// ("serve" or "etcdctl").
func (e *etcdTarget) tlsArgs(style string) string {
	var b strings.Builder
	for _, f := range []struct{ serve, etcdctl, v string }{
		{"--etcd-cacert", "--cacert", e.cacert}, {"--etcd-cert", "--cert", e.cert}, {"--etcd-key", "--key", e.key},
	} {
		if f.v == "" {
			continue
		}
		name := f.serve
		if style == "etcdctl" {
			name = f.etcdctl
		}
		fmt.Fprintf(&b, " %s %s", name, shellQuote(f.v))
	}
	return b.String()
}

// cleanHint is the command that removes a partial copy.
func (e *etcdTarget) cleanHint(u *etcdstore.URL) string {
	return fmt.Sprintf("etcdctl --endpoints=%s%s del --prefix %s", strings.Join(u.Endpoints(), ","), e.tlsArgs("etcdctl"), shellQuote(e.prefix))
}

// copyFailed explains an error of storecopy.Copy: a refused target, or a
// copy that may have left items behind.
func (e *etcdTarget) copyFailed(what string, u *etcdstore.URL, rep *storecopy.Report, err error) error {
	var ne *storecopy.NotEmptyError
	switch {
	case errors.As(err, &ne) && ne.Interrupted:
		return fmt.Errorf("%s refused, nothing was written: etcd prefix %q at %s is not empty: %v; remove it and run again: %s",
			what, e.prefix, u, err, e.cleanHint(u))
	case errors.As(err, &ne):
		return fmt.Errorf("%s refused, nothing was written: etcd prefix %q at %s is not empty: %v; %s writes only into an empty prefix: choose another --etcd-prefix",
			what, e.prefix, u, err, what)
	case rep != nil && rep.Written:
		return fmt.Errorf("%s failed: %v; etcd prefix %q may hold part of the copy, without a deployment marker, so no node will start on it; remove it before trying again: %s",
			what, err, e.prefix, e.cleanHint(u))
	default:
		return fmt.Errorf("%s failed, nothing was written: %w", what, err)
	}
}

// copyResult is what migrate and restore --to print.
type copyResult struct {
	From     string             `json:"from"`
	To       string             `json:"to"`
	Prefix   string             `json:"prefix"`
	KEK      string             `json:"kek"`
	KEKID    string             `json:"kek_id,omitempty"`
	Source   storecopy.Summary  `json:"source"`
	Target   storecopy.Summary  `json:"target"`
	Added    []string           `json:"added"`
	Applies  int                `json:"applies"`
	Marker   *deployment.Marker `json:"deployment"`
	Duration string             `json:"duration"`
}

// KEK sources as migrate names them.
const (
	kekRootKey    = "root.key"
	kekPassphrase = "passphrase"
	kekEither     = "root.key or passphrase"
	kekUnknown    = "unknown"
)

func newMigrate() *cobra.Command {
	var (
		from string
		tgt  etcdTarget
	)
	cmd := &cobra.Command{
		Use:   "migrate --from DATA_DIR --to etcd://HOST:PORT,... --etcd-prefix P",
		Short: "Copy a stopped single node's store into an empty etcd prefix (keys stay sealed)",
		Long: `Copy every item of DATA_DIR/kms.db, as stored, into the etcd prefix P, so that
a cluster of nodes (ron-kms serve --store etcd) serves the same keys, versions,
tokens and idempotency records. The server of DATA_DIR must be stopped: the
store is opened read-only under a shared lock, and a running server's lock
is refused. DATA_DIR is not changed.

The target is an etcd URL: etcd://HOST:PORT[,HOST:PORT...] for plaintext,
etcds://... for TLS (with --etcd-cacert, else the system CA pool, and
--etcd-cert/--etcd-key for a client certificate). P must end in "/", and hold
nothing: a prefix with even one key is refused, as is one inside another
deployment. Every key is written with a must-not-exist condition, in etcd
transactions of at most 128 operations and 1 MiB; then everything is read
back and compared, and the counts and SHA-256 digest of the source and of the
target are printed (identical). The deployment marker (meta/deployment) is
written last: an interrupted migrate leaves a prefix without one, which no
node starts on and a new migrate refuses; remove it with
"etcdctl del --prefix P" and run again.

Private keys stay sealed: the key-encryption key is neither read nor needed.
Every node must then be given DATA_DIR's KEK: --kek-file with a copy of
DATA_DIR/root.key (mode 0600), or --kek-passphrase-env with the same
passphrase (its Argon2id parameters, DATA_DIR/kek.params, are copied to
meta/kek.params). Retire DATA_DIR afterwards: two stores serving the same
keys would diverge.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" {
				return errors.New("migrate: --from DATA_DIR is required")
			}
			if tgt.to == "" {
				return errors.New("migrate: --to etcd://HOST:PORT,... is required")
			}
			res, err := migrate(cmd.Context(), from, &tgt)
			if err != nil {
				return err
			}
			if err := printJSON(cmd.OutOrStdout(), res); err != nil {
				return err
			}
			printNextSteps(cmd.ErrOrStderr(), "migrated", res, &tgt, from)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "data directory of the stopped single-node server (holding kms.db)")
	tgt.flags(cmd, "etcd cluster to copy into: etcd://HOST:PORT,... (plaintext) or etcds://HOST:PORT,... (TLS)")
	return cmd
}

// migrate copies the store of the data directory dir into the target.
func migrate(ctx context.Context, dir string, tgt *etcdTarget) (*copyResult, error) {
	start := time.Now()
	if _, err := tgt.check(); err != nil {
		return nil, fmt.Errorf("migrate refused, nothing was written: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("migrate: --from: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("migrate: --from %s is not a directory: give the data directory that holds %s", dir, server.DBFile)
	}
	dbPath := filepath.Join(dir, server.DBFile)
	if _, err := os.Stat(dbPath); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("migrate: %s has no %s: is it the data directory of a single-node server?", dir, server.DBFile)
	}
	src, err := boltstore.OpenReadOnly(dbPath)
	if err != nil {
		return nil, fmt.Errorf("migrate refused, nothing was written: %w", err)
	}
	defer src.Close()
	if _, err := src.Get(ctx, deployment.KEKCheckKey); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return nil, fmt.Errorf("migrate refused, nothing was written: %s holds no KEK check value (%s): it is not a store a ron-kms server has opened", dbPath, deployment.KEKCheckKey)
		}
		return nil, fmt.Errorf("migrate refused, nothing was written: %w", err)
	}
	kek, extra, err := dataDirKEK(dir)
	if err != nil {
		return nil, fmt.Errorf("migrate refused, nothing was written: %w", err)
	}

	u, dst, err := tgt.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate refused, nothing was written: %w", err)
	}
	defer dst.Close()
	marker := deployment.New(deployment.ByMigrate, time.Now())
	rep, err := storecopy.Copy(ctx, dst, storecopy.FromSnapshot(src), storecopy.Options{Marker: marker.Marshal(), Extra: extra})
	if err != nil {
		return nil, tgt.copyFailed("migrate", u, rep, err)
	}
	return &copyResult{From: dbPath, To: u.String(), Prefix: tgt.prefix, KEK: kek,
		Source: rep.Source, Target: rep.Target, Added: rep.Added, Applies: rep.Applies, Marker: rep.Marker,
		Duration: time.Since(start).Round(time.Millisecond).String()}, nil
}

// dataDirKEK says where the data directory's KEK comes from, and returns
// the passphrase parameters to copy (not secret). root.key is not read.
func dataDirKEK(dir string) (source string, extra map[string][]byte, err error) {
	_, rootErr := os.Stat(filepath.Join(dir, server.RootKeyFile))
	hasRoot := rootErr == nil
	paramsPath := filepath.Join(dir, server.ParamsFile)
	b, err := os.ReadFile(paramsPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if hasRoot {
			return kekRootKey, nil, nil
		}
		return kekUnknown, nil, nil
	case err != nil:
		return "", nil, err
	}
	params, err := seal.ParsePassphraseParams(b)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", paramsPath, err)
	}
	extra = map[string][]byte{deployment.ParamsKey: params.Marshal()}
	if hasRoot {
		return kekEither, extra, nil
	}
	return kekPassphrase, extra, nil
}

// printNextSteps tells the operator what the cluster needs now.
func printNextSteps(w io.Writer, done string, res *copyResult, tgt *etcdTarget, dataDir string) {
	u, _ := etcdstore.ParseURL(res.To)
	fmt.Fprintf(w, "%s %d items (%d keys) into etcd prefix %q; source and target sha256 %s\n",
		done, res.Target.Items, res.Target.Keys, res.Prefix, res.Target.SHA256)
	var kekFlag, serveKEK string
	root := "the old root.key"
	if dataDir != "" {
		root = filepath.Join(dataDir, server.RootKeyFile)
	}
	switch res.KEK {
	case kekRootKey:
		kekFlag, serveKEK = "--kek-file F, F a copy of "+root+" (mode 0600)", "--kek-file F"
	case kekPassphrase:
		kekFlag, serveKEK = "--kek-passphrase-env VAR, VAR holding the old passphrase (its parameters are in meta/kek.params)", "--kek-passphrase-env VAR"
	case kekEither:
		kekFlag, serveKEK = "--kek-file F, F a copy of "+root+" (mode 0600), or --kek-passphrase-env VAR if the server ran with a passphrase", "--kek-file F"
	default:
		kekFlag, serveKEK = "--kek-file F or --kek-passphrase-env VAR, with the key-encryption key the store was sealed under ("+dataDir+" holds neither root.key nor kek.params)", "--kek-file F"
	}
	fmt.Fprintf(w, "every node must be given the same key-encryption key: %s\n", kekFlag)
	fmt.Fprintf(w, "start each node with a data directory of its own: ron-kms serve --store etcd --etcd-endpoints %s --etcd-prefix %s%s %s --data-dir NODE_DIR\n",
		strings.Join(u.Hosts, ","), shellQuote(res.Prefix), tgt.tlsArgs("serve"), serveKEK)
	fmt.Fprintln(w, "tokens of the old server (its admin.token too) stay valid on every node")
	if dataDir != "" {
		fmt.Fprintf(w, "retire %s: never start a server on it again, or two stores would serve the same keys and diverge\n", dataDir)
	}
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:,=@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
