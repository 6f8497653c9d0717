package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/backup"
	"github.com/ron-kms/ron-kms/internal/deployment"
	"github.com/ron-kms/ron-kms/internal/fsutil"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/server"
	"github.com/ron-kms/ron-kms/internal/storecopy"
)

// backupSummary is what backup and restore print.
type backupSummary struct {
	File           string `json:"file,omitempty"`
	DataDir        string `json:"data_dir,omitempty"`
	Bytes          int64  `json:"bytes,omitempty"`
	Items          int64  `json:"items"`
	Revision       int64  `json:"revision"`
	CreatedAt      string `json:"created_at"`
	KEK            string `json:"kek"`
	KEKID          string `json:"kek_id"`
	Server         string `json:"server"`
	RootKeyChecked *bool  `json:"root_key_checked,omitempty"`
}

func summarize(h backup.Header, t backup.Trailer) backupSummary {
	return backupSummary{Items: t.Items, Revision: t.Revision, CreatedAt: h.CreatedAt, KEK: h.KEK, KEKID: h.KEKID, Server: h.Server}
}

func newBackup(cf *clientFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Save a consistent backup of the server's store (admin); keys stay sealed",
		Long: `Ask the running server for a snapshot of its whole store and write it to FILE
(mode 0600; FILE must not exist). The snapshot is one consistent view, taken
while the server keeps serving. Private keys stay sealed under the server's
key-encryption key, which is never in the backup: keep root.key (or the
passphrase) safe separately, since a backup cannot be restored without it.

The file is checked (format, order, SHA-256 trailer) before it is put in
place. Backing up needs an unrestricted admin token. See "ron-kms restore".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("backup: --out FILE is required")
			}
			if _, err := os.Lstat(out); err == nil {
				return fmt.Errorf("backup: %s already exists; choose a new file", out)
			}
			tok, err := cf.token()
			if err != nil {
				return err
			}
			// No overall timeout: a big store takes a while (the server
			// bounds the stream itself).
			c, err := client.New(cf.address(), tok, &http.Client{})
			if err != nil {
				return err
			}
			var (
				n    int64
				h    backup.Header
				tr   backup.Trailer
				verr error
			)
			err = writeFileAtomic(out, func(f *os.File) error {
				if n, err = c.Backup(cmd.Context(), f); err != nil {
					return err
				}
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					return err
				}
				h, tr, verr = backup.Verify(f)
				return verr
			})
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			s := summarize(h, tr)
			s.File, s.Bytes = out, n
			return printJSON(cmd.OutOrStdout(), s)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the backup to (must not exist)")
	return cmd
}

// writeFileAtomic creates path with mode 0600 from what fill writes into a
// temporary file beside it, fsynced, then linked into place (never
// replacing a file that appeared meanwhile). On error nothing is left.
func writeFileAtomic(path string, fill func(*os.File) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return err
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists", path)
		}
		if _, statErr := os.Lstat(path); statErr == nil {
			return fmt.Errorf("%s already exists", path)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return err
		}
	}
	return fsutil.SyncDir(dir)
}

func newRestore(cf *clientFlags) *cobra.Command {
	var (
		in, rootKey string
		tgt         etcdTarget
	)
	cmd := &cobra.Command{
		Use:   "restore --in FILE (--data-dir DIR [--root-key FILE] | --to etcd://HOST:PORT,... --etcd-prefix P)",
		Short: "Restore a backup into a new, empty data directory or etcd prefix (offline)",
		Long: `Write the backup FILE into DIR/kms.db, or with --to into an etcd prefix. The
whole file is checked before anything is written: a truncated or edited
backup is refused and nothing is created.

Into a data directory: DIR must be absent or empty (or hold only the
original root.key); an existing kms.db is never touched. No server may run on
DIR. The keys inside stay sealed, so the restored server needs the same
key-encryption key as the old one:
  - root.key: give --root-key with a copy of the old root.key; it is checked
    against the backup and copied to DIR/root.key (0600);
  - passphrase: DIR/kek.params is written from the backup; start the server
    with the same --kek-passphrase-env passphrase.
A wrong key is refused when "ron-kms serve --data-dir DIR" starts.

Into etcd (--to etcd://HOST:PORT,... or etcds:// for TLS, --etcd-prefix P):
exactly as "ron-kms migrate" copies, and with its rules: P must be empty,
each key is written with a must-not-exist condition in transactions of at
most 128 operations and 1 MiB, everything is read back and compared (counts
and SHA-256 digest printed), and the deployment marker is written last. A
passphrase backup's parameters go to meta/kek.params. Every node is then
started with the old key-encryption key (--kek-file F with a copy of the old
root.key, or --kek-passphrase-env).

Tokens of the old server keep working; the first start writes a new
admin.token in the data directory as well.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" {
				return errors.New("restore: --in FILE is required")
			}
			f, err := os.Open(in)
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			defer f.Close()
			if tgt.to != "" {
				if cf.dataDir != "" || rootKey != "" {
					return errors.New("restore: --to writes an etcd prefix, not a data directory: --data-dir and --root-key do not apply (give each node the old key with --kek-file)")
				}
				res, err := restoreEtcd(cmd.Context(), f, in, &tgt)
				if err != nil {
					return err
				}
				if err := printJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
				printNextSteps(cmd.ErrOrStderr(), "restored", res, &tgt, "")
				return nil
			}
			if tgt.prefix != "" || tgt.cacert != "" || tgt.cert != "" || tgt.key != "" {
				return errors.New("restore: --etcd-prefix and the --etcd-* TLS flags go with --to")
			}
			dir := cf.dir()
			res, err := server.Restore(cmd.Context(), f, server.RestoreOptions{DataDir: dir, RootKey: rootKey})
			if err != nil {
				return err
			}
			s := summarize(res.Header, backup.Trailer{Items: res.Items, Revision: res.Revision})
			s.DataDir, s.RootKeyChecked = dir, &res.RootKeyChecked
			if err := printJSON(cmd.OutOrStdout(), s); err != nil {
				return err
			}
			switch {
			case res.Header.KEK == backup.KEKPassphrase:
				fmt.Fprintf(cmd.ErrOrStderr(), "restored; start the server with the passphrase of the old one: ron-kms serve --data-dir %s --kek-passphrase-env NAME\n", dir)
			case !res.RootKeyChecked:
				fmt.Fprintf(cmd.ErrOrStderr(), "restored; copy the old root.key to %s (mode 0600) before starting the server, or it will refuse to start\n", filepath.Join(dir, server.RootKeyFile))
			default:
				fmt.Fprintf(cmd.ErrOrStderr(), "restored; start the server: ron-kms serve --data-dir %s\n", dir)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "backup file to restore")
	cmd.Flags().StringVar(&rootKey, "root-key", "", "copy of the original root.key, checked and copied into the data directory")
	tgt.flags(cmd, "restore into this etcd cluster instead of a data directory: etcd://HOST:PORT,... (plaintext) or etcds://HOST:PORT,... (TLS)")
	return cmd
}

// restoreEtcd copies the backup in f into the etcd target: the whole file
// is checked first (nothing is written for a damaged one), then read again
// into the prefix by storecopy, which checks it once more as it goes.
func restoreEtcd(ctx context.Context, f io.ReadSeeker, name string, tgt *etcdTarget) (*copyResult, error) {
	start := time.Now()
	if _, err := tgt.check(); err != nil {
		return nil, fmt.Errorf("restore refused, nothing was written: %w", err)
	}
	hdr, hasCheck, err := verifyBackup(f)
	if err != nil {
		return nil, fmt.Errorf("restore refused, nothing was written: %w", err)
	}
	if !hasCheck {
		return nil, fmt.Errorf("restore refused, nothing was written: the backup holds no KEK check value (%s): it is not the backup of a ron-kms store", deployment.KEKCheckKey)
	}
	var extra map[string][]byte
	kek := kekRootKey
	if hdr.KEK == backup.KEKPassphrase {
		params, err := seal.ParsePassphraseParams(hdr.KEKParams)
		if err != nil {
			return nil, fmt.Errorf("restore refused, nothing was written: kek_params in the backup: %w", err)
		}
		kek, extra = kekPassphrase, map[string][]byte{deployment.ParamsKey: params.Marshal()}
	}
	u, dst, err := tgt.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("restore refused, nothing was written: %w", err)
	}
	defer dst.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	r, err := backup.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	marker := deployment.New(deployment.ByRestore, time.Now())
	rep, err := storecopy.Copy(ctx, dst, storecopy.FromBackup(r), storecopy.Options{Marker: marker.Marshal(), Extra: extra})
	if err != nil {
		return nil, tgt.copyFailed("restore", u, rep, err)
	}
	return &copyResult{From: name, To: u.String(), Prefix: tgt.prefix, KEK: kek, KEKID: hdr.KEKID,
		Source: rep.Source, Target: rep.Target, Added: rep.Added, Applies: rep.Applies, Marker: rep.Marker,
		Duration: time.Since(start).Round(time.Millisecond).String()}, nil
}

// verifyBackup reads the whole backup and checks it (backup.Verify), and
// reports whether it holds the KEK check value every ron-kms store has.
func verifyBackup(r io.Reader) (backup.Header, bool, error) {
	br, err := backup.NewReader(r)
	if err != nil {
		return backup.Header{}, false, err
	}
	hasCheck := false
	for {
		k, _, err := br.Next()
		if err == io.EOF {
			return br.Header(), hasCheck, nil
		}
		if err != nil {
			return backup.Header{}, false, err
		}
		hasCheck = hasCheck || k == deployment.KEKCheckKey
	}
}
