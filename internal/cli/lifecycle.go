package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// lifecycleCommands are the keys subcommands that configure a key and move
// its versions between states.
func lifecycleCommands(cf *clientFlags) []*cobra.Command {
	return []*cobra.Command{
		newKeysConfig(cf),
		newVersionCommand(cf, "disable", "Disable a version: it then neither verifies, unwraps nor decrypts",
			"Disable version N of the key. A disabled version verifies nothing (verify answers ok:false), and neither unwraps nor decrypts, until it is enabled again. The current version cannot be disabled: rotate first.",
			(*client.Client).DisableVersion),
		newVersionCommand(cf, "enable", "Enable a disabled version again",
			"Enable a disabled version of the key: it verifies, unwraps and decrypts again (if it is not below min_verify_version).",
			(*client.Client).EnableVersion),
		newVersionCommand(cf, "destroy", "Schedule the erasure of a version's private key",
			"Schedule the erasure of version N's private key after the key's waiting period (destroy_waiting_days, default 7). Until then the version is destroy_scheduled, unusable, and cancel-destroy brings it back as disabled. After it the private key is gone for good; the public key stays on record. The current version cannot be destroyed.",
			(*client.Client).DestroyVersion),
		newVersionCommand(cf, "cancel-destroy", "Cancel a scheduled destruction (the version stays disabled)",
			"Cancel the scheduled destruction of version N. The version is left disabled; enable it to use it again.",
			(*client.Client).CancelDestroy),
	}
}

func newKeysConfig(cf *clientFlags) *cobra.Command {
	var minVerify, autoRotate, destroyWait uint32
	cmd := &cobra.Command{
		Use:   "config NAME [--min-verify-version N] [--auto-rotate-days N] [--destroy-waiting-days N]",
		Short: "Change a key's configuration and print the key (JSON)",
		Long: `Change a key's configuration; settings not given are left as they are.

  --min-verify-version N    versions below N neither verify, unwrap nor decrypt
                            (1 to the current version; it can be moved back down)
  --auto-rotate-days N      rotate automatically N days after the current version
                            was made (0 turns it off; at most 3650)
  --destroy-waiting-days N  waiting period of destructions requested from now on
                            (1 to 365, default 7)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var req api.ConfigureKeyRequest
			f := cmd.Flags()
			if f.Changed("min-verify-version") {
				req.MinVerifyVersion = &minVerify
			}
			if f.Changed("auto-rotate-days") {
				req.AutoRotateDays = &autoRotate
			}
			if f.Changed("destroy-waiting-days") {
				req.DestroyWaitingDays = &destroyWait
			}
			if req == (api.ConfigureKeyRequest{}) {
				return errors.New("keys config: give at least one of --min-verify-version, --auto-rotate-days, --destroy-waiting-days")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			k, err := c.ConfigureKey(cmd.Context(), stripVersion(args[0]), req)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), k)
		},
	}
	cmd.Flags().Uint32Var(&minVerify, "min-verify-version", 0, "lowest version that verifies, unwraps and decrypts")
	cmd.Flags().Uint32Var(&autoRotate, "auto-rotate-days", 0, "rotate automatically after this many days (0: off)")
	cmd.Flags().Uint32Var(&destroyWait, "destroy-waiting-days", 0, "days between a destroy request and the erasure")
	return cmd
}

func newVersionCommand(cf *clientFlags, action, short, long string,
	do func(*client.Client, context.Context, string, uint32) (*api.KeyInfo, error)) *cobra.Command {
	var version uint32
	cmd := &cobra.Command{
		Use:   action + " NAME --version N",
		Short: short,
		Long:  long + " Prints the key (JSON).",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version == 0 {
				return errors.New("keys " + action + ": --version N is required (N ≥ 1)")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			k, err := do(c, cmd.Context(), stripVersion(args[0]), version)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), k)
		},
	}
	cmd.Flags().Uint32Var(&version, "version", 0, "the version number (required)")
	return cmd
}
