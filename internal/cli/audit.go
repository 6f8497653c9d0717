package cli

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/internal/audit"
)

func newAudit(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify and read the audit log, offline",
		Long: `The audit log is <data-dir>/` + audit.DirName + `/: one hash-chained line per operation, with
checkpoints signed by the server's audit key (public half in <data-dir>/` + audit.PublicKeyFile + `).
These commands read the files directly; they need no server.`,
	}
	cmd.AddCommand(newAuditVerify(cf), newAuditTail(cf))
	return cmd
}

func newAuditVerify(cf *clientFlags) *cobra.Command {
	var keyB64 string
	var strict bool
	var dirs []string
	cmd := &cobra.Command{
		Use:   "verify [--data-dir D]... [--audit-key B64] [--strict]",
		Short: "Check whole audit logs: chain, sequence and signed checkpoints",
		Long: `Check every file of <data-dir>/` + audit.DirName + `/ in order: each line is canonical, each
record's seq follows the last and its hash chains to the one before, and each
checkpoint is signed by the audit key, follows the last one and matches the
chain where it stands. The audit key is read from <data-dir>/` + audit.PublicKeyFile + `
unless --audit-key gives it (base64, as GET /v1/kms/audit/key serves it).

Every node of a cluster keeps its own log in its own data directory: give
--data-dir once per node to check them all in one call. Each log is checked
and reported on its own line (prefixed with its data directory when there
are several), naming the node ids its records carry.

The exit status is 0 only if every log is intact; otherwise the first line
of each log that does not fit is named (file, line, seq). A log that does
not end with a close checkpoint (the server is running or crashed) or ends
with a torn line is intact but gets a warning; --strict makes warnings fail
too.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(dirs) == 0 {
				dirs = []string{cf.dir()}
			}
			intact := 0
			for _, d := range dirs {
				prefix := ""
				if len(dirs) > 1 {
					prefix = d + ": "
				}
				if verifyAuditDir(cmd, d, prefix, keyB64, strict) {
					intact++
				}
			}
			if len(dirs) > 1 {
				if intact == len(dirs) {
					fmt.Fprintf(cmd.OutOrStdout(), "all %d audit logs intact\n", len(dirs))
				} else {
					fmt.Fprintf(cmd.ErrOrStderr(), "%d of %d audit logs intact\n", intact, len(dirs))
				}
			}
			if intact != len(dirs) {
				return exitError(1)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&dirs, "data-dir", nil, "data directory whose audit log to check; repeat it for several nodes (default $RON_KMS_DATA_DIR or ./ron-kms-data)")
	cmd.Flags().StringVar(&keyB64, "audit-key", "", "audit public key, base64 (default: read <data-dir>/"+audit.PublicKeyFile+")")
	cmd.Flags().BoolVar(&strict, "strict", false, "fail on warnings too (log not closed cleanly, torn last line)")
	return cmd
}

// verifyAuditDir checks the audit log of one data directory and reports on
// it, each line starting with prefix. It returns whether the log passed
// (intact, and without warnings under strict).
func verifyAuditDir(cmd *cobra.Command, dataDir, prefix, keyB64 string, strict bool) bool {
	out, errw := cmd.OutOrStdout(), cmd.ErrOrStderr()
	pub, err := auditKey(dataDir, keyB64)
	if err != nil {
		fmt.Fprintf(errw, "%saudit log not checked: %v\n", prefix, err)
		return false
	}
	r, err := audit.Verify(filepath.Join(dataDir, audit.DirName), pub)
	var ve *audit.VerifyError
	if errors.As(err, &ve) {
		fmt.Fprintf(errw, "%saudit log BROKEN: %s line %d: seq %d: %s\n", prefix, ve.File, ve.Line, ve.Seq, ve.Reason)
		fmt.Fprintf(errw, "%s(%d records and %d checkpoints before it verified)\n", prefix, r.Records, r.Checkpoints)
		return false
	}
	if err != nil {
		fmt.Fprintf(errw, "%saudit log not checked: %v\n", prefix, err)
		return false
	}
	for _, w := range r.Warnings {
		fmt.Fprintf(errw, "%swarning: %s\n", prefix, w)
	}
	fmt.Fprintf(out, "%saudit log intact: %d files, %d records, %d checkpoints, last seq %d (hash %s), store generation %d",
		prefix, r.Files, r.Records, r.Checkpoints, r.LastSeq, hex.EncodeToString(r.LastHash[:]), r.StoreGeneration)
	if r.UnsignedRecords > 0 {
		fmt.Fprintf(out, ", %d records after the last checkpoint", r.UnsignedRecords)
	}
	switch len(r.Nodes) {
	case 0:
	case 1:
		fmt.Fprintf(out, ", node %s", dash(r.Nodes[0]))
	default:
		quoted := make([]string, len(r.Nodes))
		for i, n := range r.Nodes {
			quoted[i] = dash(n)
		}
		fmt.Fprintf(out, ", nodes %s", strings.Join(quoted, " "))
	}
	fmt.Fprintln(out)
	return !strict || len(r.Warnings) == 0
}

// auditKey returns the audit public key from --audit-key or the data dir.
func auditKey(dataDir, keyB64 string) ([]byte, error) {
	if keyB64 == "" {
		return audit.ReadPublicKeyFile(dataDir)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(keyB64)
	if err != nil || len(b) != 32 {
		return nil, errors.New("--audit-key is not 32 bytes of standard base64")
	}
	return b, nil
}

func newAuditTail(cf *clientFlags) *cobra.Command {
	var follow bool
	var n int
	var poll time.Duration
	cmd := &cobra.Command{
		Use:   "tail [--data-dir D] [-n N] [-f]",
		Short: "Print the last audit records, one line each; -f follows",
		Long: `Print the last N records of <data-dir>/` + audit.DirName + `/ (all with -n -1), one line
each: seq, time, op, kid, result and error code ("-" when empty), then
node=ID when the record carries the id of the node that wrote it, count=N
for a record standing for N collapsed denials, detail=... for what a token
mint or revocation recorded (token id and caveats, never the token), and
the checkpoints among them. A batch request is one record (count=N, result
ok or partial) followed by one indented line per item, in request order:
"  item I kid result code input_b3". With -f, keep printing new records as they are
written (the files are polled) until interrupted. tail does not check the
chain: use "ron-kms audit verify" for that.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			return audit.Tail(ctx, filepath.Join(cf.dir(), audit.DirName), n, follow, poll, func(e audit.Entry) error {
				if c := e.Checkpoint; c != nil {
					node := ""
					if c.Node != "" {
						node = ", node " + dash(c.Node)
					}
					_, err := fmt.Fprintf(out, "-- checkpoint %d (%s) at seq %d, store generation %d%s, %s\n",
						c.N, c.Reason, c.Seq, c.StoreGeneration, node, c.TS.Format(time.RFC3339Nano))
					return err
				}
				return printAuditRecord(out, e.Record)
			})
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new records")
	cmd.Flags().IntVarP(&n, "lines", "n", 10, "how many records to print first (-1: all)")
	cmd.Flags().DurationVar(&poll, "poll", time.Second, "how often -f looks for new records")
	return cmd
}

// printAuditRecord prints r as audit tail shows it: one line, then for a
// batch record one indented line per item.
func printAuditRecord(out io.Writer, r *audit.Record) error {
	extra := ""
	if r.Node != "" {
		extra += " node=" + dash(r.Node)
	}
	if r.Count != 0 {
		extra += " count=" + strconv.FormatUint(r.Count, 10)
	}
	if r.Detail != "" {
		extra += " detail=" + dash(r.Detail)
	}
	if _, err := fmt.Fprintf(out, "%d %s %s %s %s %s%s\n", r.Seq, r.TS.Format(time.RFC3339Nano),
		dash(r.Op), dash(r.Kid), dash(r.Result), dash(r.Code), extra); err != nil {
		return err
	}
	for i, it := range r.Items {
		if _, err := fmt.Fprintf(out, "  item %d %s %s %s %s\n", i+1, dash(it.Kid), dash(it.Result), dash(it.Code),
			dash(hex.EncodeToString(it.InputB3))); err != nil {
			return err
		}
	}
	return nil
}

// dash makes a field safe to print on one line: "-" when empty, quoted when
// it holds spaces or unprintable characters (a kid in a denial record is
// whatever the caller sent).
func dash(s string) string {
	if s == "" {
		return "-"
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r == ' ' || !unicode.IsPrint(r) }) {
		return strconv.Quote(s)
	}
	return s
}
