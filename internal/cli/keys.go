package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

func newKeys(cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Create, inspect, list and rotate keys",
	}
	cmd.AddCommand(newKeysCreate(cf), newKeysGet(cf), newKeysRotate(cf), newKeysList(cf))
	cmd.AddCommand(newKeysImport(cf), newKeysAttest(cf), newKeysSeed(cf))
	cmd.AddCommand(lifecycleCommands(cf)...)
	return cmd
}

func newKeysCreate(cf *clientFlags) *cobra.Command {
	var req api.CreateKeyRequest
	var labels []string
	var use string
	cmd := &cobra.Command{
		Use:   "create --tenant T --purpose P [--alg A | --use sign|wrap|encrypt]",
		Short: "Create a key and print it (JSON)",
		Long: `Create a key and print {kid, key} as JSON. The kid names version 1:
tenant/purpose/alg/uuid#v1. With --op-id the call is idempotent: repeating it
returns the same key instead of making a second one.

Algorithms: ed25519, ml-dsa-44, ml-dsa-65, ml-dsa-87, slh-dsa-sha2-128s and
mldsa65-ed25519 sign; x25519, ml-kem-768 and mlkem768-x25519 wrap data keys;
aes-256-gcm encrypts. Without --alg, --use picks the default of its kind:
sign → ed25519, wrap → mlkem768-x25519 (post-quantum hybrid), encrypt →
aes-256-gcm.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.Alg == "" {
				d, ok := defaultAlgs[use]
				if !ok {
					return fmt.Errorf("--use must be sign, wrap or encrypt, not %q", use)
				}
				req.Alg = d
			}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok {
					return fmt.Errorf("--label %q: want name=value", l)
				}
				if req.Labels == nil {
					req.Labels = map[string]string{}
				}
				req.Labels[k] = v
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			res, err := c.CreateKey(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVar(&req.Tenant, "tenant", "", "tenant (required)")
	cmd.Flags().StringVar(&req.Purpose, "purpose", "", "purpose (required)")
	cmd.Flags().StringVar(&req.Alg, "alg", "", "algorithm (default: the default of --use)")
	cmd.Flags().StringVar(&use, "use", "sign", "what the key is for when --alg is not given: sign, wrap or encrypt")
	cmd.Flags().StringVar(&req.OpID, "op-id", "", "idempotency key")
	cmd.Flags().StringArrayVar(&labels, "label", nil, "label name=value (repeatable)")
	cmd.MarkFlagRequired("tenant")
	cmd.MarkFlagRequired("purpose")
	return cmd
}

func newKeysGet(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Print a key's metadata and versions (JSON)",
		Long:  "Print a key's metadata: every version with its state and public key. NAME is tenant/purpose/alg/uuid (a #vN suffix is ignored).",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			k, err := c.GetKey(cmd.Context(), stripVersion(args[0]))
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), k)
		},
	}
}

func newKeysRotate(cf *clientFlags) *cobra.Command {
	var opID string
	cmd := &cobra.Command{
		Use:   "rotate NAME",
		Short: "Make a new current version of a key",
		Long:  "Make a new version of the key and make it current; older versions keep verifying. Prints {kid, previous}.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			res, err := c.RotateKey(cmd.Context(), stripVersion(args[0]), opID)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVar(&opID, "op-id", "", "idempotency key")
	return cmd
}

func newKeysList(cf *clientFlags) *cobra.Command {
	var o client.ListOptions
	var all bool
	cmd := &cobra.Command{
		Use:   "list [--tenant T [--purpose P]]",
		Short: "List the keys the token may see",
		Long:  "List keys, one page at a time (--limit, --page-token), or every page with --all. Prints JSON.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			var keys []api.KeyInfo
			for {
				page, err := c.ListKeys(cmd.Context(), o)
				if err != nil {
					return err
				}
				if !all {
					return printJSON(cmd.OutOrStdout(), page)
				}
				keys = append(keys, page.Keys...)
				if page.NextPageToken == "" {
					return printJSON(cmd.OutOrStdout(), api.ListKeysResponse{Keys: keys})
				}
				o.PageToken = page.NextPageToken
			}
		},
	}
	cmd.Flags().StringVar(&o.Tenant, "tenant", "", "only this tenant")
	cmd.Flags().StringVar(&o.Purpose, "purpose", "", "only this purpose (needs --tenant)")
	cmd.Flags().IntVar(&o.Limit, "limit", 0, "page size (default 100, at most 1000)")
	cmd.Flags().StringVar(&o.PageToken, "page-token", "", "next_page_token of the previous page")
	cmd.Flags().BoolVar(&all, "all", false, "fetch every page")
	return cmd
}

// defaultAlgs are the algorithms keys create picks per use.
var defaultAlgs = map[string]string{"sign": "ed25519", "wrap": "mlkem768-x25519", "encrypt": "aes-256-gcm"}

// stripVersion turns a kid into its key name.
func stripVersion(s string) string {
	name, _, _ := strings.Cut(s, "#")
	return name
}
