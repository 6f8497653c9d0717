package api

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
	"github.com/ron-kms/ron-kms/internal/wrap"
)

// signedStatements returns statements as the server's attestation code
// makes and signs them: a keystore over a memory store attests generated
// keys of every algorithm that has a public key, a later version, and an
// imported key, for several build versions.
func signedStatements(t testing.TB) [][]byte {
	t.Helper()
	ctx := context.Background()
	sealer, err := seal.NewAESGCM(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.Open(ctx, keystore.Config{Store: memstore.New(), Sealer: sealer})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	var refs []keystore.Ref
	for _, alg := range []string{"ed25519", "ml-dsa-65", "slh-dsa-sha2-128s", "mldsa65-ed25519", "x25519", "mlkem768-x25519"} {
		k, err := ks.Create(ctx, keystore.CreateParams{Tenant: "acme", Purpose: "fuzz", Alg: alg})
		if err != nil {
			t.Fatalf("create %s: %v", alg, err)
		}
		refs = append(refs, keystore.Ref{Name: k.Name})
	}
	if _, err := ks.Rotate(ctx, refs[0].Name, ""); err != nil {
		t.Fatal(err)
	}
	refs = append(refs, keystore.Ref{Name: refs[0].Name, Version: 1}, keystore.Ref{Name: refs[0].Name, Version: 2})
	wk, err := ks.ImportWrappingKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := wrap.SealImport(wk, bytes.Repeat([]byte{2}, ed25519.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	imp, err := ks.Import(ctx, keystore.ImportParams{Tenant: "acme", Purpose: "imported", Alg: "ed25519", Wrapped: sealed})
	if err != nil {
		t.Fatal(err)
	}
	refs = append(refs, keystore.Ref{Name: imp.Name})

	var out [][]byte
	for i, ref := range refs {
		server := []string{"dev", "v1.4.0", "v0.0.0-20260101120000-0123456789ab+dirty", `<&> "quoted" \ ünïcødé`}[i%4]
		a, err := ks.Attest(ctx, ref, server)
		if err != nil {
			t.Fatalf("attest %+v: %v", ref, err)
		}
		out = append(out, a.Statement)
	}
	return out
}

// FuzzParseAttestationStatement: whatever parses is its own canonical
// encoding, and parses back to the same statement; whatever does not parse
// is ErrStatement and the zero statement. Seeds are statements the
// keystore signed (each must parse) and near misses of them.
func FuzzParseAttestationStatement(f *testing.F) {
	for _, st := range signedStatements(f) {
		if _, err := ParseAttestationStatement(st); err != nil {
			f.Fatalf("a statement the keystore signed does not parse: %s: %v", st, err)
		}
		s := string(st)
		f.Add(st)
		for _, near := range []string{
			s + "\n", // json.Encoder's newline
			" " + s,
			strings.Replace(s, `,"exportable"`, `, "exportable"`, 1),
			strings.Replace(s, `"exportable":false`, `"exportable":true`, 1), // canonical, and parses
			strings.Replace(s, `"backend":"software"`, `"backend":"pkcs11"`, 1),
			strings.Replace(s, `{"backend"`, `{"zzz":1,"backend"`, 1),       // unknown field
			strings.Replace(s, `{"backend"`, `{"backend":"x","backend"`, 1), // duplicate
			strings.Replace(s, `"backend"`, `"Backend"`, 1),                 // case-folded name
			strings.Replace(s, `"server":"`, `"server":"\u0064`, 1),         // needless escape
			strings.Replace(s, `"version":`, `"version":1`, 1),
			strings.Replace(s, `"version":`, `"version":-`, 1),
			strings.Replace(s, `"version":`, `"version":0.`, 1),
			strings.Replace(s, `"version":`, `"version":1e`, 1),
			s[:strings.Index(s, `,"version"`)] + "}", // missing field
			s[:len(s)/2],
			s + s,
		} {
			f.Add([]byte(near))
		}
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Add(AttestationStatement{}.Canonical())
	f.Add(AttestationStatement{Server: "\u2028<\xff>", Version: 1<<32 - 1}.Canonical())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseAttestationStatement(b)
		if err != nil {
			if !errors.Is(err, ErrStatement) || s != (AttestationStatement{}) {
				t.Fatalf("ParseAttestationStatement(%q) = %+v, %v; want the zero statement and ErrStatement", b, s, err)
			}
			return
		}
		if c := s.Canonical(); !bytes.Equal(c, b) {
			t.Fatalf("ParseAttestationStatement(%q) accepted a non-canonical encoding of %q", b, c)
		}
		again, err := ParseAttestationStatement(s.Canonical())
		if err != nil || again != s {
			t.Fatalf("reparse of %q = %+v, %v; want %+v", b, again, err, s)
		}
	})
}
