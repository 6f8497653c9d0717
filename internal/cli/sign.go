package cli

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"lukechampine.com/blake3"

	"github.com/ron-kms/ron-kms/api"
)

// input is how sign and verify take what is signed: a file hashed locally
// with BLAKE3-256 (only the digest is sent), or a digest given in hex.
type input struct {
	file, payloadB3 string
}

func (in *input) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&in.file, "file", "", "the file that is signed; hashed here with BLAKE3-256, only the digest is sent ('-' for standard input)")
	cmd.Flags().StringVar(&in.payloadB3, "payload-b3", "", "BLAKE3-256 digest of the payload, 64 lower-case hex characters")
	cmd.MarkFlagsMutuallyExclusive("file", "payload-b3")
	cmd.MarkFlagsOneRequired("file", "payload-b3")
}

// digest returns payload_b3.
func (in *input) digest(cmd *cobra.Command) (string, error) {
	if in.payloadB3 != "" {
		if _, err := api.DecodePayloadB3(in.payloadB3); err != nil {
			return "", err
		}
		return in.payloadB3, nil
	}
	var r io.Reader = cmd.InOrStdin()
	if in.file != "-" {
		f, err := os.Open(in.file)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	h := blake3.New(32, nil)
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("reading %s: %w", in.file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func newSign(cf *clientFlags) *cobra.Command {
	var kid string
	var in input
	cmd := &cobra.Command{
		Use:   "sign --kid K (--file F | --payload-b3 HEX)",
		Short: "Sign a file's BLAKE3 digest; print the sign response (JSON)",
		Long: `Sign with the current version of key K (a key name, or the current kid).
--file is hashed locally with BLAKE3-256 and only the 32-byte digest is sent;
the signature is over those 32 bytes. The printed JSON {kid, sigs} names the
version that signed and is what "ron-kms verify --sig" reads.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := in.digest(cmd)
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			res, err := c.Sign(cmd.Context(), api.SignRequest{KID: kid, PayloadB3: d})
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVar(&kid, "kid", "", "key name or kid (required)")
	cmd.MarkFlagRequired("kid")
	in.flags(cmd)
	return cmd
}

func newVerify(cf *clientFlags) *cobra.Command {
	var kid, sigFile, mode string
	var in input
	cmd := &cobra.Command{
		Use:   "verify --kid K (--file F | --payload-b3 HEX) --sig FILE",
		Short: "Verify a signature; exit 0 only if it is valid",
		Long: `Verify the signature in FILE (the JSON printed by "ron-kms sign") over the
file's BLAKE3-256 digest. If K is a key name, the version named in FILE is
checked, so old signatures keep verifying after rotations. Prints the verify
response; the exit status is 0 for a valid signature and 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := os.ReadFile(sigFile)
			if err != nil {
				return err
			}
			var signed api.SignResponse
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&signed); err != nil || len(signed.Sigs) == 0 {
				return errors.New("--sig: want the JSON printed by ron-kms sign: {kid, sigs}")
			}
			ref := kid
			if !strings.Contains(kid, "#") && stripVersion(signed.KID) == kid {
				ref = signed.KID
			}
			d, err := in.digest(cmd)
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			req := api.VerifyRequest{KID: ref, PayloadB3: d, Sigs: signed.Sigs}
			if mode != "" {
				req.Policy = &api.VerifyPolicy{Mode: mode}
			}
			res, err := c.Verify(cmd.Context(), req)
			if err != nil {
				return err
			}
			if err := printJSON(cmd.OutOrStdout(), res); err != nil {
				return err
			}
			if !res.OK {
				return exitError(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kid, "kid", "", "key name or kid (required)")
	cmd.Flags().StringVar(&sigFile, "sig", "", "signature file: the JSON printed by ron-kms sign (required)")
	cmd.Flags().StringVar(&mode, "mode", "", "for hybrid keys: and (both components), or (either), pq_only (the ML-DSA one); default: the server's floor")
	cmd.MarkFlagRequired("kid")
	cmd.MarkFlagRequired("sig")
	in.flags(cmd)
	return cmd
}
