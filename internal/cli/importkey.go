package cli

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

func newKeysImport(cf *clientFlags) *cobra.Command {
	var req api.ImportKeyRequest
	var seedFile, pubFile string
	cmd := &cobra.Command{
		Use:   "import --tenant T --purpose P --alg A (--seed-file F | --public-key-file F)",
		Short: "Import a key made elsewhere: a private seed, or a public key to verify with",
		Long: `Import a key made elsewhere and print {kid, key} as JSON, like keys create.

--seed-file imports a private key: the file holds its 32-byte seed (the RFC 8032
Ed25519 seed, or the FIPS 204 ML-DSA seed ξ). The seed never leaves this machine
unsealed: the command fetches the server's import wrapping key
(GET /v1/kms/import/wrapping-key, an mlkem768-x25519 HPKE key), seals the seed
to it here (HPKE with HKDF-SHA256, AES-256-GCM and info "ron-kms/import/v1"),
sends only the sealed bytes, and clears its copy. The imported key signs and
rotates like any other; rotation makes a generated version.

--public-key-file imports a verify-only key: it verifies signatures but refuses
to sign or rotate (400 Unsupported).

Files hold hex (as RFC 8032 and Wycheproof print keys; surrounding whitespace
is ignored) or the raw bytes. Algorithms: ed25519, ml-dsa-44, ml-dsa-65,
ml-dsa-87. With --op-id the call is idempotent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			if pubFile != "" {
				pub, err := readKeyFile(pubFile)
				if err != nil {
					return err
				}
				req.PublicKeyB64 = api.EncodeB64(pub)
			} else {
				seed, err := readKeyFile(seedFile)
				if err != nil {
					return err
				}
				defer clear(seed)
				wk, err := c.ImportWrappingKey(cmd.Context())
				if err != nil {
					return err
				}
				req.WrappedPrivateB64, err = client.SealImport(wk, seed)
				if err != nil {
					return err
				}
			}
			res, err := c.ImportKey(cmd.Context(), req)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVar(&req.Tenant, "tenant", "", "tenant (required)")
	cmd.Flags().StringVar(&req.Purpose, "purpose", "", "purpose (required)")
	cmd.Flags().StringVar(&req.Alg, "alg", "", "algorithm: ed25519, ml-dsa-44, ml-dsa-65 or ml-dsa-87 (required)")
	cmd.Flags().StringVar(&seedFile, "seed-file", "", "file holding the 32-byte private seed (hex or raw); it is sealed before it is sent")
	cmd.Flags().StringVar(&pubFile, "public-key-file", "", "file holding the public key (hex or raw): makes a verify-only key")
	cmd.Flags().StringVar(&req.OpID, "op-id", "", "idempotency key")
	cmd.MarkFlagRequired("tenant")
	cmd.MarkFlagRequired("purpose")
	cmd.MarkFlagRequired("alg")
	cmd.MarkFlagsOneRequired("seed-file", "public-key-file")
	cmd.MarkFlagsMutuallyExclusive("seed-file", "public-key-file")
	return cmd
}

// readKeyFile reads a seed or public key written as hex (whitespace around
// it ignored) or as raw bytes. The result is the caller's to clear.
func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := bytes.TrimSpace(b)
	if len(t) > 0 && len(t)%2 == 0 && isHex(t) {
		out := make([]byte, len(t)/2)
		_, err := hex.Decode(out, t)
		clear(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		return out, nil
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
