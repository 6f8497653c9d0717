package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

func newKeysAttest(cf *clientFlags) *cobra.Command {
	var version uint32
	var verify bool
	var keyB64 string
	cmd := &cobra.Command{
		Use:   "attest NAME [--version N] [--verify] [--attestation-key B64]",
		Short: "Print the server's signed statement about a key version",
		Long: `Print the attestation of a key version as JSON: the statement (kid, version,
public_key_sha256, backend, exportable, origin, created_at, server), and the
statement bytes and the server's Ed25519 signature over exactly those bytes, in
base64. NAME is tenant/purpose/alg/uuid; the current version is attested unless
--version (or a #vN suffix) names another.

--verify checks the attestation offline: the signature against the
attestation key given with --attestation-key (base64, 32 bytes; pin it from
"GET /v1/kms/audit/key" out of band), or else the one the server reports at
/v1/kms/audit/key, and that the statement names this key and version. The
exit status is 0 only if the attestation verifies.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, v, hasV := strings.Cut(args[0], "#v")
			if hasV && version == 0 {
				n, err := queryVersionArg(v)
				if err != nil {
					return err
				}
				version = n
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			att, err := c.Attestation(cmd.Context(), name, version)
			if err != nil {
				return err
			}
			stmt, err := api.DecodeB64("statement_b64", att.StatementB64)
			if err != nil {
				return err
			}
			st, err := api.ParseAttestationStatement(stmt)
			if err != nil {
				return err
			}
			if verify {
				pub, err := attestationKey(cmd, c, keyB64)
				if err != nil {
					return err
				}
				vst, err := client.VerifyAttestation(att, pub)
				if err != nil {
					return err
				}
				if vname, _, _ := strings.Cut(vst.KID, "#"); vname != name || (version != 0 && vst.Version != version) {
					return fmt.Errorf("%w: the statement is about %s, not %s", client.ErrAttestation, vst.KID, args[0])
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "verified: %s attested by key %s\n", vst.KID, api.EncodeB64(pub))
			}
			return printJSON(cmd.OutOrStdout(), struct {
				Statement api.AttestationStatement `json:"statement"`
				api.AttestationResponse
			}{st, *att})
		},
	}
	cmd.Flags().Uint32Var(&version, "version", 0, "the version to attest (default: the current one)")
	cmd.Flags().BoolVar(&verify, "verify", false, "check the signature offline and exit non-zero if it fails")
	cmd.Flags().StringVar(&keyB64, "attestation-key", "", "the attestation public key to verify with (base64; default: the server's, from /v1/kms/audit/key)")
	return cmd
}

// attestationKey is the key --verify checks with: the pinned one if given,
// else the server's.
func attestationKey(cmd *cobra.Command, c *client.Client, keyB64 string) ([]byte, error) {
	if keyB64 != "" {
		return api.DecodeB64("--attestation-key", keyB64)
	}
	ak, err := c.AuditKey(cmd.Context())
	if err != nil {
		return nil, err
	}
	return api.DecodeB64("attestation_public_key_b64", ak.AttestationPublicKeyB64)
}

// queryVersionArg parses the N of a #vN suffix.
func queryVersionArg(s string) (uint32, error) {
	var n uint32
	if _, err := fmt.Sscan(s, &n); err != nil || n == 0 || fmt.Sprint(n) != s {
		return 0, fmt.Errorf("bad version suffix #v%s", s)
	}
	return n, nil
}
