package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// readInput reads a file, or standard input for "-".
func readInput(cmd *cobra.Command, path string, limit int64) ([]byte, error) {
	var r io.Reader = cmd.InOrStdin()
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// writeOutput writes b to a new file (0600) or, for "-", standard output.
func writeOutput(cmd *cobra.Command, path string, b []byte) error {
	if path == "-" {
		_, err := cmd.OutOrStdout().Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// sendCommand is what wrap and encrypt share: a key (--kid), an input file
// (--in) sent base64-encoded, and associated data (--aad).
type sendCommand struct {
	kid, in string
	aad     aadFlag
}

func (sc *sendCommand) flags(cmd *cobra.Command, kidHelp, inHelp string) {
	cmd.Flags().StringVar(&sc.kid, "kid", "", kidHelp)
	cmd.Flags().StringVar(&sc.in, "in", "", inHelp)
	cmd.MarkFlagRequired("kid")
	cmd.MarkFlagRequired("in")
	sc.aad.add(cmd)
}

// run reads --in (at most limit bytes), gives it base64-encoded to send
// with a client of the server, prints the answer as JSON, and clears the
// input it read.
func (sc *sendCommand) run(cmd *cobra.Command, cf *clientFlags, limit int64,
	send func(ctx context.Context, c *client.Client, inB64 string) (any, error)) error {
	in, err := readInput(cmd, sc.in, limit)
	if err != nil {
		return err
	}
	defer clear(in)
	c, err := cf.client()
	if err != nil {
		return err
	}
	res, err := send(cmd.Context(), c, api.EncodeB64(in))
	if err != nil {
		return err
	}
	return printJSON(cmd.OutOrStdout(), res)
}

// aadFlag is the optional associated data shared by the data commands.
type aadFlag struct{ text string }

func (a *aadFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&a.text, "aad", "", "associated data (text) bound to the result; the same must be given to open it")
}

func (a *aadFlag) b64() string {
	if a.text == "" {
		return ""
	}
	return api.EncodeB64([]byte(a.text))
}

func newWrap(cf *clientFlags) *cobra.Command {
	var sc sendCommand
	cmd := &cobra.Command{
		Use:   "wrap --kid K --in KEYFILE [--aad TEXT]",
		Short: "Wrap a data key with a KEM key (HPKE); prints the wrap response (JSON)",
		Long: `Seal the data key in KEYFILE ('-' for standard input, at most 1024 bytes) to the
current version of KEM key K (x25519, ml-kem-768 or mlkem768-x25519) with HPKE.
The printed wrapped_b64 envelope names the key version; "ron-kms unwrap" opens it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sc.run(cmd, cf, api.MaxDataKey, func(ctx context.Context, c *client.Client, in string) (any, error) {
				return c.Wrap(ctx, api.WrapRequest{KID: sc.kid, PlaintextKeyB64: in, AADB64: sc.aad.b64()})
			})
		},
	}
	sc.flags(cmd, "KEM key name or current kid (required)", "file holding the data key, '-' for standard input (required)")
	return cmd
}

func newDataKey(cf *clientFlags) *cobra.Command {
	var kid string
	var size int
	var aad aadFlag
	cmd := &cobra.Command{
		Use:   "datakey --kid K [--size 32] [--aad TEXT]",
		Short: "Generate a data key on the server; prints it with its envelope (JSON)",
		Long: `Ask the server for a fresh random data key of --size bytes, wrapped to KEM key K.
The response holds both plaintext_key_b64 (use it, then forget it) and
wrapped_b64 (store it beside your data; unwrap it when you need the key again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.client()
			if err != nil {
				return err
			}
			res, err := c.Wrap(cmd.Context(), api.WrapRequest{KID: kid, Size: size, AADB64: aad.b64()})
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), res)
		},
	}
	cmd.Flags().StringVar(&kid, "kid", "", "KEM key name or current kid (required)")
	cmd.Flags().IntVar(&size, "size", 32, "data key size in bytes (1 to 1024)")
	cmd.MarkFlagRequired("kid")
	aad.add(cmd)
	return cmd
}

func newUnwrap(cf *clientFlags) *cobra.Command {
	var envFile, out string
	var aad aadFlag
	cmd := &cobra.Command{
		Use:   "unwrap --envelope FILE --out KEYFILE [--aad TEXT]",
		Short: "Open a wrapped data key; writes the data key to KEYFILE",
		Long: `Open the envelope in FILE (the JSON printed by wrap or datakey, or the bare
wrapped_b64 text) and write the data key to KEYFILE (mode 0600; '-' for
standard output). The envelope names its key version, so it opens after any
number of rotations.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := readInput(cmd, envFile, 1<<20)
			if err != nil {
				return err
			}
			wrapped := extractField(b, "wrapped_b64")
			c, err := cf.client()
			if err != nil {
				return err
			}
			res, err := c.Unwrap(cmd.Context(), api.UnwrapRequest{WrappedB64: wrapped, AADB64: aad.b64()})
			if err != nil {
				return err
			}
			dk, err := api.DecodeB64("plaintext_key_b64", res.PlaintextKeyB64)
			if err != nil {
				return err
			}
			defer clear(dk)
			if err := writeOutput(cmd, out, dk); err != nil {
				return err
			}
			if out != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "unwrapped %d bytes with %s\n", len(dk), res.KID)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&envFile, "envelope", "", "file with the envelope (required)")
	cmd.Flags().StringVar(&out, "out", "", "where to write the data key, '-' for standard output (required)")
	cmd.MarkFlagRequired("envelope")
	cmd.MarkFlagRequired("out")
	aad.add(cmd)
	return cmd
}

func newEncrypt(cf *clientFlags) *cobra.Command {
	var sc sendCommand
	cmd := &cobra.Command{
		Use:   "encrypt --kid K --in FILE [--aad TEXT]",
		Short: "Encrypt up to 64 KiB with an aes-256-gcm key; prints the response (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return sc.run(cmd, cf, api.MaxPlaintext, func(ctx context.Context, c *client.Client, in string) (any, error) {
				return c.Encrypt(ctx, api.EncryptRequest{KID: sc.kid, PlaintextB64: in, AADB64: sc.aad.b64()})
			})
		},
	}
	sc.flags(cmd, "aes-256-gcm key name or current kid (required)", "file to encrypt, '-' for standard input (required)")
	return cmd
}

func newDecrypt(cf *clientFlags) *cobra.Command {
	var in, out string
	var aad aadFlag
	cmd := &cobra.Command{
		Use:   "decrypt --in FILE --out FILE [--aad TEXT]",
		Short: "Decrypt what encrypt made; writes the plaintext",
		Long:  "Decrypt the JSON printed by encrypt (or the bare ciphertext_b64) and write the plaintext to --out ('-' for standard output). The ciphertext names its key version.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := readInput(cmd, in, 1<<20)
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			res, err := c.Decrypt(cmd.Context(), api.DecryptRequest{CiphertextB64: extractField(b, "ciphertext_b64"), AADB64: aad.b64()})
			if err != nil {
				return err
			}
			pt, err := api.DecodeB64("plaintext_b64", res.PlaintextB64)
			if err != nil {
				return err
			}
			return writeOutput(cmd, out, pt)
		},
	}
	cmd.Flags().StringVar(&in, "in", "", "the encrypt output (required)")
	cmd.Flags().StringVar(&out, "out", "", "where to write the plaintext, '-' for standard output (required)")
	cmd.MarkFlagRequired("in")
	cmd.MarkFlagRequired("out")
	aad.add(cmd)
	return cmd
}

// extractField returns the string field of a JSON object, or the trimmed
// input itself when it is not JSON (a bare base64 value).
func extractField(b []byte, field string) string {
	var m map[string]any
	if json.Unmarshal(b, &m) == nil {
		if s, ok := m[field].(string); ok {
			return s
		}
		return ""
	}
	return string(bytes.TrimSpace(b))
}
