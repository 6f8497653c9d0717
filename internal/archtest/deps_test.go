// Package archtest holds the package layering of the project in place, the
// way Go's own fipsdeps test holds its boundaries.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/ron-kms/ron-kms"

// deps lists the non-standard-library packages pkg depends on, and whether
// it depends on the listed standard packages.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{else}}std:{{.ImportPath}}{{end}}", mod+"/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestLayering(t *testing.T) {
	for _, rule := range []struct {
		pkg    string
		allow  []string // non-std prefixes allowed (the package itself always is)
		forbid []string // anything with these prefixes is forbidden, std included
	}{
		{pkg: "api", allow: nil},
		{pkg: "client", allow: []string{mod + "/api"}},
		{pkg: "internal/alg", allow: nil},
		{pkg: "internal/seal", allow: []string{mod + "/internal/fsutil", "golang.org/x/"}},
		{pkg: "internal/sig", allow: []string{mod + "/internal/alg", "github.com/oasisprotocol/curve25519-voi", "github.com/cloudflare/circl", "golang.org/x/"},
			forbid: []string{"std:net/http"}},
		{pkg: "internal/keystore",
			allow: []string{mod + "/internal/alg", mod + "/internal/sig", mod + "/internal/wrap", mod + "/internal/symm",
				mod + "/internal/seal", mod + "/internal/storage", mod + "/internal/fsutil",
				"github.com/oasisprotocol/", "github.com/cloudflare/circl", "golang.org/x/"},
			forbid: []string{"std:net/http", mod + "/api", "github.com/prometheus/", "go.etcd.io/"}},
		{pkg: "internal/wrap", allow: []string{mod + "/internal/alg"}, forbid: []string{"std:net/http"}},
		{pkg: "internal/symm", allow: nil},
		{pkg: "internal/audit", allow: []string{mod + "/internal/fsutil", "github.com/zeebo/blake3", "github.com/klauspost/cpuid"}},
		{pkg: "internal/backup", allow: nil},
		{pkg: "internal/deployment", allow: nil},
		// A store copy moves sealed records as they are: it can never
		// unseal one, since it cannot reach seal or the keystore.
		{pkg: "internal/storecopy",
			allow: []string{mod + "/internal/storage", mod + "/internal/backup", mod + "/internal/deployment",
				"go.etcd.io/", "google.golang.org/", "go.uber.org/", "golang.org/x/",
				"github.com/coreos/", "github.com/golang/protobuf/", "github.com/grpc-ecosystem/"},
			forbid: []string{mod + "/internal/seal", mod + "/internal/keystore"}},
		{pkg: "internal/captoken", allow: []string{"gopkg.in/macaroon.v2", "gopkg.in/errgo", "golang.org/x/"}},
		// The power-loss file system is for tests: the binary never
		// carries it or its FUSE library.
		{pkg: "internal/lazyfs", allow: []string{"github.com/hanwen/go-fuse/v2", "golang.org/x/sys"}},
		{pkg: "cmd/ron-kms", allow: []string{""},
			forbid: []string{mod + "/internal/lazyfs", "github.com/hanwen/go-fuse/"}},
	} {
		for _, d := range deps(t, rule.pkg) {
			for _, f := range rule.forbid {
				if strings.HasPrefix(d, f) {
					t.Errorf("%s depends on %s, which it must not", rule.pkg, strings.TrimPrefix(d, "std:"))
				}
			}
			if strings.HasPrefix(d, "std:") || d == mod+"/"+rule.pkg || strings.HasPrefix(d, mod+"/"+rule.pkg+"/") {
				continue
			}
			ok := false
			for _, a := range rule.allow {
				if strings.HasPrefix(d, a) {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s depends on %s, outside its layer", rule.pkg, d)
			}
		}
	}
}
