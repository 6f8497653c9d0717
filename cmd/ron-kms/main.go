// Command ron-kms is the ron-kms server (ron-kms serve) and its command-line
// client. See ron-kms --help.
package main

import (
	"context"
	"os"

	"github.com/ron-kms/ron-kms/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}
