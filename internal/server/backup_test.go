package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/backup"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/seal"
)

// takeBackup backs the running server up through the API.
func takeBackup(t *testing.T, c *client.Client) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := c.Backup(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func restoreBytes(t *testing.T, b []byte, opts RestoreOptions) (RestoreResult, error) {
	t.Helper()
	return Restore(context.Background(), bytes.NewReader(b), opts)
}

// copyRootKey copies the root key of dir to a 0600 file outside it, as an
// operator would keep it.
func copyRootKey(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "root.key.copy")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBackupRestore: keys of several algorithms, rotated, used; a backup
// through the API; a restore into a new data dir; a server there verifies
// the old signatures, unwraps the old envelopes, decrypts the old
// ciphertexts, makes new signatures, and accepts the old admin token.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	oldAdmin, err := os.ReadFile(filepath.Join(cfg.DataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	digest := strings.Repeat("cd", 32)
	aad := api.EncodeB64([]byte("ctx=backup"))

	type signed struct {
		name string
		sigs []*api.SignResponse
	}
	var signers []signed
	for _, alg := range []string{"ed25519", "ml-dsa-65", "mldsa65-ed25519"} {
		k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: alg})
		if err != nil {
			t.Fatal(err)
		}
		s := signed{name: k.Key.Name}
		for i := range 2 {
			sig, err := c.Sign(ctx, api.SignRequest{KID: k.Key.Name, PayloadB3: digest})
			if err != nil {
				t.Fatal(err)
			}
			s.sigs = append(s.sigs, sig)
			if i == 0 {
				if _, err := c.RotateKey(ctx, k.Key.Name, ""); err != nil {
					t.Fatal(err)
				}
			}
		}
		signers = append(signers, s)
	}
	wk, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "wrap", Alg: "mlkem768-x25519"})
	if err != nil {
		t.Fatal(err)
	}
	env1, err := c.Wrap(ctx, api.WrapRequest{KID: wk.Key.Name, Size: 32, AADB64: aad})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateKey(ctx, wk.Key.Name, ""); err != nil {
		t.Fatal(err)
	}
	env2, err := c.Wrap(ctx, api.WrapRequest{KID: wk.Key.Name, Size: 32, AADB64: aad})
	if err != nil {
		t.Fatal(err)
	}
	ek, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "globex", Purpose: "data", Alg: "aes-256-gcm"})
	if err != nil {
		t.Fatal(err)
	}
	plain := api.EncodeB64([]byte("card 4111 1111 1111 1111"))
	ct1, err := c.Encrypt(ctx, api.EncryptRequest{KID: ek.Key.Name, PlaintextB64: plain, AADB64: aad})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateKey(ctx, ek.Key.Name, ""); err != nil {
		t.Fatal(err)
	}
	ct2, err := c.Encrypt(ctx, api.EncryptRequest{KID: ek.Key.Name, PlaintextB64: plain, AADB64: aad})
	if err != nil {
		t.Fatal(err)
	}

	b := takeBackup(t, c)
	h, tr, err := backup.Verify(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the server's backup does not verify: %v", err)
	}
	id := r.srv.sealer.KEKID()
	if h.KEK != backup.KEKRootKey || h.KEKID != hex.EncodeToString(id[:]) || tr.Items == 0 || h.KEKParams != nil {
		t.Fatalf("header %+v trailer %+v", h, tr)
	}
	kek, _ := os.ReadFile(filepath.Join(cfg.DataDir, RootKeyFile))
	if bytes.Contains(b, kek) || bytes.Contains(b, []byte(api.EncodeB64(kek))) {
		t.Fatal("the backup holds the key-encryption key")
	}
	// The old server goes on; its state after the backup is not restored.
	late, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "late", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	rootCopy := copyRootKey(t, cfg.DataDir)
	r.shutdown(t)

	cfg2 := testConfig(t)
	res, err := restoreBytes(t, b, RestoreOptions{DataDir: cfg2.DataDir, RootKey: rootCopy})
	if err != nil {
		t.Fatal(err)
	}
	if res.Items != tr.Items || !res.RootKeyChecked {
		t.Fatalf("restore result %+v", res)
	}
	for _, f := range []string{DBFile, RootKeyFile} {
		st, err := os.Stat(filepath.Join(cfg2.DataDir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s after restore: %v %v", f, st, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg2.DataDir, AdminTokenFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("restore wrote an admin token: %v", err)
	}

	r2 := start(t, cfg2)
	c2, err := client.New(r2.url, string(oldAdmin), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range signers {
		for _, sig := range s.sigs {
			v, err := c2.Verify(ctx, api.VerifyRequest{KID: sig.KID, PayloadB3: digest, Sigs: sig.Sigs})
			if err != nil || !v.OK {
				t.Fatalf("old signature %s after restore: %+v %v", sig.KID, v, err)
			}
		}
		sig, err := c2.Sign(ctx, api.SignRequest{KID: s.name, PayloadB3: digest})
		if err != nil || !strings.HasSuffix(sig.KID, "#v2") {
			t.Fatalf("new signature with %s: %+v %v", s.name, sig, err)
		}
		if v, err := c2.Verify(ctx, api.VerifyRequest{KID: sig.KID, PayloadB3: digest, Sigs: sig.Sigs}); err != nil || !v.OK {
			t.Fatalf("new signature %s: %+v %v", sig.KID, v, err)
		}
	}
	for _, env := range []*api.WrapResponse{env1, env2} {
		u, err := c2.Unwrap(ctx, api.UnwrapRequest{WrappedB64: env.WrappedB64, AADB64: aad})
		if err != nil || u.PlaintextKeyB64 != env.PlaintextKeyB64 {
			t.Fatalf("old envelope of %s after restore: %v", env.KID, err)
		}
	}
	for _, ct := range []*api.EncryptResponse{ct1, ct2} {
		d, err := c2.Decrypt(ctx, api.DecryptRequest{CiphertextB64: ct.CiphertextB64, AADB64: aad})
		if err != nil || d.PlaintextB64 != plain {
			t.Fatalf("old ciphertext of %s after restore: %v", ct.KID, err)
		}
	}
	if _, err := c2.Encrypt(ctx, api.EncryptRequest{KID: ek.Key.Name, PlaintextB64: plain}); err != nil {
		t.Fatalf("encrypt after restore: %v", err)
	}
	if _, err := c2.GetKey(ctx, late.Key.Name); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("a key made after the backup: %v", err)
	}
	// The first start wrote a new admin token too, under the same root.
	c3 := adminClient(t, r2, cfg2.DataDir)
	if _, err := c3.ListKeys(ctx, client.ListOptions{Tenant: "acme"}); err != nil {
		t.Fatalf("new admin token: %v", err)
	}
	// And the restored server backs up again, to the same records.
	b2 := takeBackup(t, c3)
	if _, tr2, err := backup.Verify(bytes.NewReader(b2)); err != nil || tr2.Items < tr.Items {
		t.Fatalf("backup of the restored server: %+v %v", tr2, err)
	}
}

// TestRestoreRefuses: truncated or tampered files, a non-empty target and a
// wrong root key are refused with a clear error, and nothing is written.
func TestRestoreRefuses(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	if _, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519"}); err != nil {
		t.Fatal(err)
	}
	b := takeBackup(t, c)
	rootCopy := copyRootKey(t, cfg.DataDir)
	r.shutdown(t)

	nothingIn := func(t *testing.T, dir string) {
		t.Helper()
		if entries, err := os.ReadDir(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("restore left %v (%v) in %s", entries, err, dir)
		}
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	tampered := bytes.Clone(b)
	i := bytes.Index(tampered, []byte(`{"k":"meta/`)) + len(`{"k":"meta/`)
	tampered[i] ^= 0x01 // a key name, still valid JSON
	for name, tc := range map[string]struct {
		file []byte
		want error
		msg  string
	}{
		"truncated mid-line":  {b[:len(b)/2], backup.ErrTruncated, "truncated"},
		"without its trailer": {bytes.Join(lines[:len(lines)-2], nil), backup.ErrTruncated, "truncated"},
		"tampered":            {tampered, backup.ErrChecksum, "checksum mismatch"},
		"a record removed":    {append(bytes.Join(lines[:1], nil), bytes.Join(lines[2:], nil)...), backup.ErrChecksum, "checksum"},
		"not a backup":        {[]byte("hello\n"), backup.ErrFormat, "not a valid ron-kms backup"},
		"empty":               {nil, backup.ErrFormat, "empty file"},
		"another format":      {bytes.Replace(b, []byte("ron-kms-backup/v1"), []byte("ron-kms-backup/v9"), 1), backup.ErrFormat, "is not ron-kms-backup/v1"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, err := restoreBytes(t, tc.file, RestoreOptions{DataDir: dir, RootKey: rootCopy})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "nothing was written") {
				t.Fatalf("restore = %v, want %v saying %q", err, tc.want, tc.msg)
			}
			nothingIn(t, dir)
		})
	}

	t.Run("non-empty data dir", func(t *testing.T) {
		_, err := restoreBytes(t, b, RestoreOptions{DataDir: cfg.DataDir, RootKey: rootCopy})
		if !errors.Is(err, ErrRestoreTarget) || !strings.Contains(err.Error(), "kms.db already exists") {
			t.Fatalf("restore over a store = %v", err)
		}
		other := t.TempDir()
		os.WriteFile(filepath.Join(other, "notes.txt"), []byte("x"), 0o600)
		if _, err := restoreBytes(t, b, RestoreOptions{DataDir: other}); !errors.Is(err, ErrRestoreTarget) || !strings.Contains(err.Error(), "not empty") {
			t.Fatalf("restore into a non-empty dir = %v", err)
		}
		if _, err := os.Stat(filepath.Join(other, DBFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatal("restore wrote into a non-empty dir")
		}
	})

	t.Run("wrong root key given", func(t *testing.T) {
		wrong := filepath.Join(t.TempDir(), "wrong.key")
		if _, _, err := seal.LoadOrCreateRootKey(wrong); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "data")
		_, err := restoreBytes(t, b, RestoreOptions{DataDir: dir, RootKey: wrong})
		if err == nil || !strings.Contains(err.Error(), "is not the key-encryption key of this backup") {
			t.Fatalf("restore with another root key = %v", err)
		}
		nothingIn(t, dir)
	})

	t.Run("wrong root key at start", func(t *testing.T) {
		// Restored without a root key, the server makes a new one at
		// start, and that one does not open the store.
		cfg2 := testConfig(t)
		res, err := restoreBytes(t, b, RestoreOptions{DataDir: cfg2.DataDir})
		if err != nil || res.RootKeyChecked {
			t.Fatalf("restore without a root key: %+v %v", res, err)
		}
		_, err = Open(ctx, cfg2, slog.New(slog.DiscardHandler))
		if !errors.Is(err, keystore.ErrWrongKEK) || !strings.Contains(err.Error(), "the key-encryption key does not match this store") {
			t.Fatalf("start with another root key = %v", err)
		}
	})

	t.Run("root key placed in the data dir", func(t *testing.T) {
		cfg2 := testConfig(t)
		os.MkdirAll(cfg2.DataDir, 0o700)
		k, _ := os.ReadFile(rootCopy)
		os.WriteFile(filepath.Join(cfg2.DataDir, RootKeyFile), k, 0o600)
		res, err := restoreBytes(t, b, RestoreOptions{DataDir: cfg2.DataDir})
		if err != nil || !res.RootKeyChecked {
			t.Fatalf("restore with root.key in place: %+v %v", res, err)
		}
		r2 := start(t, cfg2)
		r2.shutdown(t)
	})
}

// TestBackupRestorePassphrase: a passphrase server's backup carries
// kek.params; the restored server derives the same KEK from the same
// passphrase, and refuses another.
func TestBackupRestorePassphrase(t *testing.T) {
	ctx := context.Background()
	t.Setenv("RON_KMS_TEST_PASS", "correct horse battery staple")
	cfg := testConfig(t)
	cfg.PassphraseEnv = "RON_KMS_TEST_PASS"
	os.MkdirAll(cfg.DataDir, 0o700)
	light, err := seal.NewPassphraseParams(1, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := seal.LoadOrCreatePassphraseParamsWith(filepath.Join(cfg.DataDir, ParamsFile), light); err != nil {
		t.Fatal(err)
	}
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	digest := strings.Repeat("ef", 32)
	sig, err := c.Sign(ctx, api.SignRequest{KID: k.Key.Name, PayloadB3: digest})
	if err != nil {
		t.Fatal(err)
	}
	b := takeBackup(t, c)
	r.shutdown(t)

	cfg2 := testConfig(t)
	cfg2.PassphraseEnv = cfg.PassphraseEnv
	if _, err := restoreBytes(t, b, RestoreOptions{DataDir: cfg2.DataDir, RootKey: filepath.Join(cfg.DataDir, RootKeyFile)}); !errors.Is(err, ErrRestoreTarget) {
		t.Fatalf("--root-key with a passphrase backup: %v", err)
	}
	res, err := restoreBytes(t, b, RestoreOptions{DataDir: cfg2.DataDir})
	if err != nil || res.Header.KEK != backup.KEKPassphrase {
		t.Fatalf("restore: %+v %v", res, err)
	}
	p1, _ := os.ReadFile(filepath.Join(cfg.DataDir, ParamsFile))
	p2, _ := os.ReadFile(filepath.Join(cfg2.DataDir, ParamsFile))
	if !bytes.Equal(p1, p2) {
		t.Fatalf("kek.params restored as %q, want %q", p2, p1)
	}
	t.Setenv("RON_KMS_TEST_PASS", "wrong")
	if _, err := Open(ctx, cfg2, slog.New(slog.DiscardHandler)); !errors.Is(err, keystore.ErrWrongKEK) {
		t.Fatalf("start with another passphrase = %v", err)
	}
	t.Setenv("RON_KMS_TEST_PASS", "correct horse battery staple")
	r2 := start(t, cfg2)
	c2 := adminClient(t, r2, cfg2.DataDir)
	if v, err := c2.Verify(ctx, api.VerifyRequest{KID: sig.KID, PayloadB3: digest, Sigs: sig.Sigs}); err != nil || !v.OK {
		t.Fatalf("old signature after restore: %+v %v", v, err)
	}
	if _, err := c2.Sign(ctx, api.SignRequest{KID: k.Key.Name, PayloadB3: digest}); err != nil {
		t.Fatal(err)
	}
}

// TestBackupAmnesia: a memory store's KEK dies with it; backup is refused.
func TestBackupAmnesia(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "memory"
	r := start(t, cfg)
	c, err := client.New(r.url, r.srv.AmnesiaAdminToken(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Backup(context.Background(), &bytes.Buffer{}); !errors.Is(err, client.ErrUnsupported) {
		t.Fatalf("backup in amnesia mode = %v", err)
	}
}
