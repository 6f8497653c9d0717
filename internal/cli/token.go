package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

func newToken(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint, attenuate, inspect and revoke capability tokens",
		Long: `Tokens are macaroons. Their caveats (scope, tenant, key-prefix, alg, expires)
all must hold. Anyone can attenuate a token offline by adding caveats; nobody
can remove one. Minting a new root token needs the server and an unrestricted
admin token; so does revoking one.`,
	}
	cmd.AddCommand(newTokenMint(cf), newTokenAttenuate(cf), newTokenInspect(cf), newTokenRevoke(cf))
	return cmd
}

// restrictionFlags are the caveats mint and attenuate can add.
type restrictionFlags struct {
	scopes, algs      []string
	tenant, keyPrefix string
	ttl               time.Duration
}

func (r *restrictionFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&r.scopes, "scope", nil, "allowed scopes, e.g. kms:sign,kms:verify")
	cmd.Flags().StringVar(&r.tenant, "tenant", "", "only keys of this tenant")
	cmd.Flags().StringVar(&r.keyPrefix, "key-prefix", "", "only key names starting with this")
	cmd.Flags().StringSliceVar(&r.algs, "alg", nil, "only keys of these algorithms")
	cmd.Flags().DurationVar(&r.ttl, "ttl", 0, "expire after this long, e.g. 24h")
}

func newTokenMint(cf *clientFlags) *cobra.Command {
	var r restrictionFlags
	cmd := &cobra.Command{
		Use:   "mint [--scope S,...] [--tenant T] [--key-prefix P] [--alg A,...] [--ttl D]",
		Short: "Ask the server for a new token (admin only); prints the token",
		Long: `Ask the server for a new token with its own id, limited by the flags. It never
outlives your token: without --ttl it expires when yours does (never, for the
admin token), and a --ttl past that is refused. The token is printed on
standard output, its id (for the audit log and token revoke) on standard error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			req := api.MintTokenRequest{Scopes: r.scopes, Tenant: r.tenant, KeyPrefix: r.keyPrefix, Algs: r.algs}
			if r.ttl != 0 {
				req.TTL = r.ttl.String()
			}
			res, err := c.MintToken(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "token id %s\n", res.ID)
			return nil
		},
	}
	r.add(cmd)
	return cmd
}

func newTokenAttenuate(cf *clientFlags) *cobra.Command {
	var r restrictionFlags
	cmd := &cobra.Command{
		Use:   "attenuate [--scope S,...] [--tenant T] [--key-prefix P] [--alg A,...] [--ttl D]",
		Short: "Narrow your token offline; prints the new token",
		Long: `Add caveats to the token (RON_KMS_TOKEN, --token-file, or <data-dir>/admin.token)
without asking the server. The result can do at most what the original could.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := cf.token()
			if err != nil {
				return err
			}
			res := captoken.Restrictions{Tenant: r.tenant, KeyPrefix: r.keyPrefix, Algs: r.algs}
			for _, s := range r.scopes {
				res.Scopes = append(res.Scopes, captoken.Scope(s))
			}
			if r.ttl < 0 {
				return fmt.Errorf("--ttl must be positive")
			}
			if r.ttl > 0 {
				res.Expires = time.Now().Add(r.ttl)
			}
			out, err := captoken.Attenuate(tok, res)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	r.add(cmd)
	return cmd
}

func newTokenInspect(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect [TOKEN]",
		Short: "Print a token's id and caveats (does not check its signature)",
		Long:  "Print the id, location and caveats of TOKEN (or of your token). The signature is not checked: only the server can do that.",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var tok string
			if len(args) == 1 {
				tok = strings.TrimSpace(args[0])
			} else {
				t, err := cf.token()
				if err != nil {
					return err
				}
				tok = t
			}
			info, err := captoken.Inspect(tok)
			if err != nil {
				return err
			}
			if info.Caveats == nil {
				info.Caveats = []string{}
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{
				"id": info.ID, "location": info.Location, "caveats": info.Caveats,
			})
		},
	}
}

func newTokenRevoke(cf *clientFlags) *cobra.Command {
	var id string
	cmd := &cobra.Command{
		Use:   "revoke --id ID",
		Short: "Revoke a token and every attenuation of it (admin only)",
		Long: `Revoke the token whose id is ID (32 hex digits: token mint prints it, token
inspect shows it). From then on the server, every node of it, refuses that
token and every token attenuated from it (they share its id) with
Unauthenticated. A revocation is stored and audited, and cannot be undone.
Revoking an id twice, or an id that names no token, succeeds too.

Revoking the admin token locks its holders out: to get a new one, stop the
server, remove <data-dir>/admin.token and start it again.`,
		Example: "  ron-kms token revoke --id 3f9c2b6e0d1a4c8f9e7b5a3c1d2e4f60",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			res, err := c.RevokeToken(cmd.Context(), strings.TrimSpace(id))
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "id of the token to revoke (token inspect shows it)")
	cmd.MarkFlagRequired("id")
	return cmd
}
