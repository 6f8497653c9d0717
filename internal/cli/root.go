// Package cli is the ron-kms command line: `ron-kms serve` and the client
// commands built on the public client package.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/server"
)

// Main runs the command line with args (without the program name) and
// returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := NewRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			return int(ex)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "ron-kms: ") {
			msg = "ron-kms: " + msg
		}
		fmt.Fprintln(stderr, msg)
		return 1
	}
	return 0
}

// exitError ends the program with a status but no message (the command
// already printed what it had to say).
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// clientFlags are shared by every client command.
type clientFlags struct {
	addr      string
	tokenFile string
	dataDir   string
}

// NewRoot builds the command tree.
func NewRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ron-kms",
		Short: "Key custody and signing service",
		Long: `ron-kms keeps private keys and signs, verifies and wraps with them, so that
services never hold a private key.

"ron-kms serve" runs the server. Every other command is a client of a running
server: it finds the server in RON_KMS_ADDR (default ` + client.DefaultAddr + `) and the
token in RON_KMS_TOKEN, else in <data-dir>/admin.token.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	cf := &clientFlags{}
	root.PersistentFlags().StringVar(&cf.addr, "addr", "", "server address (default $RON_KMS_ADDR or "+client.DefaultAddr+")")
	root.PersistentFlags().StringVar(&cf.tokenFile, "token-file", "", "file holding the token (default: the token in $RON_KMS_TOKEN, else <data-dir>/admin.token)")
	root.PersistentFlags().StringVar(&cf.dataDir, "data-dir", "", "data directory (default $RON_KMS_DATA_DIR or ./ron-kms-data)")
	root.AddCommand(newServe(), newKeys(cf), newSign(cf), newVerify(cf),
		newWrap(cf), newUnwrap(cf), newDataKey(cf), newEncrypt(cf), newDecrypt(cf),
		newToken(cf), newVersion(cf), newBackup(cf), newRestore(cf), newMigrate(), newAudit(cf), newBench(cf))
	return root
}

func (cf *clientFlags) dir() string {
	if cf.dataDir != "" {
		return cf.dataDir
	}
	if d := os.Getenv("RON_KMS_DATA_DIR"); d != "" {
		return d
	}
	return server.Defaults().DataDir
}

// token finds the caller's token: --token-file, RON_KMS_TOKEN, then
// <data-dir>/admin.token.
func (cf *clientFlags) token() (string, error) {
	path := cf.tokenFile
	if path == "" {
		if t := os.Getenv("RON_KMS_TOKEN"); t != "" {
			return strings.TrimSpace(t), nil
		}
		path = filepath.Join(cf.dir(), server.AdminTokenFile)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("no token: set RON_KMS_TOKEN or --token-file (reading %s: %v)", path, errors.Unwrap(err))
	}
	return strings.TrimSpace(string(b)), nil
}

// client builds an API client from the flags and environment.
func (cf *clientFlags) client() (*client.Client, error) {
	tok, err := cf.token()
	if err != nil {
		return nil, err
	}
	return client.New(cf.address(), tok, nil)
}

func (cf *clientFlags) address() string {
	if cf.addr != "" {
		return cf.addr
	}
	if a := os.Getenv("RON_KMS_ADDR"); a != "" {
		return a
	}
	return client.DefaultAddr
}

// printJSON writes v indented, for people and for jq.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newVersion(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the server's build information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client.New(cf.address(), "", nil) // /version needs no token
			if err != nil {
				return err
			}
			v, err := c.Version(cmd.Context())
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), v)
		},
	}
}
