package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/backup"
	"github.com/ron-kms/ron-kms/internal/captoken"
	"github.com/ron-kms/ron-kms/internal/deployment"
	"github.com/ron-kms/ron-kms/internal/etcdtest"
	"github.com/ron-kms/ron-kms/internal/httpapi"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/metrics"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/server"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/boltstore"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
	"github.com/ron-kms/ron-kms/internal/storecopy"
)

// singleNode is a running single-node server on the bolt store.
type singleNode struct {
	dir  string
	c    *client.Client
	stop func()
}

func startSingleNode(t *testing.T, dir string, mutate func(*server.Config)) *singleNode {
	t.Helper()
	cfg := server.Defaults()
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := server.Open(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	tok, err := os.ReadFile(filepath.Join(dir, server.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New("http://"+ln.Addr().String(), strings.TrimSpace(string(tok)), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &singleNode{dir: dir, c: c}
	stopped := false
	n.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(n.stop)
	return n
}

// history is what a single node did before it moved: signatures to verify
// and a ciphertext to decrypt afterwards, an op_id to replay, a revoked and
// a valid token.
type history struct {
	ed25519, mldsa, aes string
	sigs                []signed
	ciphertext          string
	createOp            string
	revoked, valid      string
}

type signed struct {
	kid string
	sig *api.SignResponse
	// reason is why verify must refuse it ("" when it must verify).
	reason string
}

var payload = strings.Repeat("ab", 32)

// useNode creates keys of several algorithms through the API, rotates,
// signs, encrypts, mints and revokes tokens, and schedules a destruction:
// every kind of store item a node writes.
func useNode(t *testing.T, c *client.Client) history {
	t.Helper()
	ctx := t.Context()
	var h history
	h.createOp = "create-ed25519-1"
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519", OpID: h.createOp})
	if err != nil {
		t.Fatal(err)
	}
	h.ed25519 = k.Key.Name
	for _, alg := range []string{"ml-dsa-65", "mldsa65-ed25519"} {
		k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "pq", Alg: alg})
		if err != nil {
			t.Fatal(err)
		}
		if alg == "ml-dsa-65" {
			h.mldsa = k.Key.Name
		}
		s, err := c.Sign(ctx, api.SignRequest{KID: k.Key.Name, PayloadB3: payload})
		if err != nil {
			t.Fatal(err)
		}
		sg := signed{kid: k.Key.Name, sig: s}
		if alg == "ml-dsa-65" {
			sg.reason = "destroy_scheduled" // see below
		}
		h.sigs = append(h.sigs, sg)
	}
	for i := range 3 {
		s, err := c.Sign(ctx, api.SignRequest{KID: h.ed25519, PayloadB3: payload})
		if err != nil {
			t.Fatal(err)
		}
		h.sigs = append(h.sigs, signed{kid: h.ed25519, sig: s})
		if i < 2 {
			if _, err := c.RotateKey(ctx, h.ed25519, "rotate-"+string(rune('a'+i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A destruction scheduled for later: a due-index entry.
	if _, err := c.RotateKey(ctx, h.mldsa, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisableVersion(ctx, h.mldsa, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DestroyVersion(ctx, h.mldsa, 1); err != nil {
		t.Fatal(err)
	}
	a, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "records", Alg: "aes-256-gcm"})
	if err != nil {
		t.Fatal(err)
	}
	h.aes = a.Key.Name
	ct, err := c.Encrypt(ctx, api.EncryptRequest{KID: h.aes, PlaintextB64: api.EncodeB64([]byte("invoice 1")), AADB64: api.EncodeB64([]byte("rec-1"))})
	if err != nil {
		t.Fatal(err)
	}
	h.ciphertext = ct.CiphertextB64
	for i := range 2 {
		tok, err := c.MintToken(ctx, api.MintTokenRequest{Scopes: []string{"kms:sign", "kms:verify"}, Tenant: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := c.RevokeToken(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
			h.revoked = tok.Token
		} else {
			h.valid = tok.Token
		}
	}
	return h
}

// runCLI runs the command line and returns its exit code, stdout and
// stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func openPrefix(t *testing.T, cl *etcdtest.Cluster, prefix string) *etcdstore.Store {
	t.Helper()
	st, err := etcdstore.Open(etcdstore.Options{Endpoints: cl.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func etcdURL(cl *etcdtest.Cluster) string {
	var hosts []string
	for _, e := range cl.Endpoints() {
		hosts = append(hosts, strings.TrimPrefix(e, "http://"))
	}
	return "etcd://" + strings.Join(hosts, ",")
}

func items(t *testing.T, sn storage.Snapshotter) map[string][]byte {
	t.Helper()
	m := make(map[string][]byte)
	if _, err := sn.Snapshot(t.Context(), func(it storage.Item) error { m[it.Key] = it.Value; return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

func boltItems(t *testing.T, dir string) (map[string][]byte, storecopy.Summary) {
	t.Helper()
	r, err := boltstore.OpenReadOnly(filepath.Join(dir, server.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var all []storage.Item
	if _, err := r.Snapshot(t.Context(), func(it storage.Item) error { all = append(all, it); return nil }); err != nil {
		t.Fatal(err)
	}
	m := make(map[string][]byte, len(all))
	for _, it := range all {
		m[it.Key] = it.Value
	}
	return m, storecopy.Digest(func(yield func(string, []byte) bool) {
		for _, it := range all {
			if !yield(it.Key, it.Value) {
				return
			}
		}
	})
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func revision(t *testing.T, st storage.Store) int64 {
	t.Helper()
	rev, err := st.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// etcdNode serves the API from the keystore on an etcd prefix, assembled
// the way server.Open assembles a node (keystore on the store and the KEK,
// the token authority from the store's token root secret, the API), so
// that a migrated prefix can be used before serve --store etcd exists in
// this package's tests. It returns a client holding token.
func etcdNode(t *testing.T, st storage.Store, kek []byte) (*keystore.Keystore, func(token string) *client.Client, error) {
	t.Helper()
	sealer, err := seal.NewAESGCM(kek)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sealer.Destroy)
	ks, err := keystore.Open(t.Context(), keystore.Config{Store: st, Sealer: sealer})
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(ks.Close)
	root, err := ks.ServerSecret(t.Context(), "token-root", 32) // server.tokenRootSecret
	if err != nil {
		t.Fatal(err)
	}
	auth, err := captoken.NewAuthority(root, "ron-kms")
	if err != nil {
		t.Fatal(err)
	}
	id := sealer.KEKID()
	h, err := httpapi.New(ks, auth, metrics.New(), slog.New(slog.DiscardHandler), httpapi.Options{
		BackupKEK: httpapi.BackupKEK{Source: backup.KEKRootKey, ID: hex.EncodeToString(id[:])},
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return ks, func(token string) *client.Client {
		c, err := client.New(hs.URL, token, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}, nil
}

// checkUsable shows that a node on the prefix serves what the single node
// did: its signatures verify, its ciphertext decrypts, its admin token
// works and its revoked token does not, its op_id replays, and the migrated
// key signs with its current version.
func checkUsable(t *testing.T, st storage.Store, kek []byte, adminToken string, h history) *client.Client {
	t.Helper()
	ctx := t.Context()
	_, newClient, err := etcdNode(t, st, kek)
	if err != nil {
		t.Fatalf("a node on the copied prefix does not start: %v", err)
	}
	c := newClient(adminToken)
	for _, s := range h.sigs {
		v, err := c.Verify(ctx, api.VerifyRequest{KID: s.sig.KID, PayloadB3: payload, Sigs: s.sig.Sigs})
		if err != nil || v.OK != (s.reason == "") || v.Details.Reason != s.reason {
			t.Errorf("verify %s: %+v, %v (want refused for %q)", s.sig.KID, v, err, s.reason)
		}
	}
	s, err := c.Sign(ctx, api.SignRequest{KID: h.ed25519, PayloadB3: payload})
	if err != nil || !strings.HasSuffix(s.KID, "#v3") {
		t.Errorf("sign with the migrated key: %+v, %v (want version 3)", s, err)
	}
	pt, err := c.Decrypt(ctx, api.DecryptRequest{CiphertextB64: h.ciphertext, AADB64: api.EncodeB64([]byte("rec-1"))})
	if err != nil || pt.PlaintextB64 != api.EncodeB64([]byte("invoice 1")) {
		t.Errorf("decrypt: %+v, %v", pt, err)
	}
	again, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519", OpID: h.createOp})
	if err != nil || again.Key.Name != h.ed25519 {
		t.Errorf("replayed op_id: %+v, %v (want %s)", again, err, h.ed25519)
	}
	if _, err := newClient(h.revoked).Sign(ctx, api.SignRequest{KID: h.ed25519, PayloadB3: payload}); !errors.Is(err, client.ErrUnauthenticated) {
		t.Errorf("revoked token: %v, want ErrUnauthenticated", err)
	}
	if _, err := newClient(h.valid).Sign(ctx, api.SignRequest{KID: h.ed25519, PayloadB3: payload}); err != nil {
		t.Errorf("valid token: %v", err)
	}
	return c
}

// TestMigrate: a real single-node data directory, made by the server's own
// code path, is migrated into a real 3-member etcd cluster; every item
// arrives byte-identical, counts and digests match, the data directory is
// untouched, a node on the prefix serves everything, and every refusal
// (running server, second migrate, another deployment's prefix, a prefix
// inside one) writes nothing.
func TestMigrate(t *testing.T) {
	ctx := t.Context()
	cl := etcdtest.New(t, 3)
	url := etcdURL(cl)
	const prefix = "ron-kms/prod/"
	dir := filepath.Join(t.TempDir(), "data")
	node := startSingleNode(t, dir, nil)
	h := useNode(t, node.c)
	var bak bytes.Buffer
	if _, err := node.c.Backup(ctx, &bak); err != nil {
		t.Fatal(err)
	}

	// While the server runs, its store is refused.
	target := openPrefix(t, cl, prefix)
	code, _, stderr := runCLI(t, "migrate", "--from", dir, "--to", url, "--etcd-prefix", prefix)
	if code == 0 || !strings.Contains(stderr, "is locked by another process (is a server running on it? stop it first)") {
		t.Fatalf("migrate of a running server's store: exit %d, %s", code, stderr)
	}
	if got := items(t, target); len(got) != 0 {
		t.Fatalf("a refused migrate wrote %d items", len(got))
	}
	node.stop()

	dbPath := filepath.Join(dir, server.DBFile)
	before := fileSum(t, dbPath)
	src, srcSum := boltItems(t, dir)
	start := time.Now()
	code, stdout, stderr := runCLI(t, "migrate", "--from", dir, "--to", url, "--etcd-prefix", prefix)
	if code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, stderr)
	}
	t.Logf("migrate took %v:\n%s%s", time.Since(start), stdout, stderr)
	var res copyResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if fileSum(t, dbPath) != before {
		t.Error("migrate changed kms.db")
	}

	// Every item, byte for byte, and only the marker besides.
	got := items(t, target)
	for k, v := range src {
		if !bytes.Equal(got[k], v) {
			t.Errorf("%s differs in etcd", k)
		}
	}
	if len(got) != len(src)+1 {
		t.Errorf("etcd holds %d items, the source %d (+1 marker)", len(got), len(src))
	}
	m, err := deployment.Parse(got[deployment.MarkerKey])
	if err != nil || m.CreatedBy != deployment.ByMigrate || res.Marker == nil || *res.Marker != m {
		t.Errorf("marker %+v, %v; reported %+v", m, err, res.Marker)
	}
	if _, ok := got[deployment.CopyingKey]; ok {
		t.Errorf("%s is left behind", deployment.CopyingKey)
	}
	// The report: counts and digests equal, and equal to an independent
	// digest of the file.
	if !res.Source.Same(res.Target) || !res.Source.Same(srcSum) || res.Source.Items != int64(len(src)) {
		t.Errorf("source %+v, target %+v, independent %+v", res.Source, res.Target, srcSum)
	}
	if res.Source.Keys < 3 || res.Source.ByPrefix["op"] < 3 || res.Source.ByPrefix["tokens"] != 1 || res.Source.ByPrefix["sched"] < 1 {
		t.Errorf("the source lacks some kind of item: %+v", res.Source)
	}
	if res.KEK != kekRootKey || strings.Join(res.Added, ",") != deployment.MarkerKey {
		t.Errorf("kek %q, added %q", res.KEK, res.Added)
	}
	for _, want := range []string{
		"source and target sha256 " + res.Source.SHA256,
		"--kek-file F, F a copy of " + filepath.Join(dir, server.RootKeyFile),
		"ron-kms serve --store etcd --etcd-endpoints " + strings.TrimPrefix(url, "etcd://") + " --etcd-prefix ron-kms/prod/ --kek-file F",
		"retire " + dir,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}

	// A second migrate into the same prefix is refused, nothing changed.
	rev := revision(t, target)
	code, _, stderr = runCLI(t, "migrate", "--from", dir, "--to", url, "--etcd-prefix", prefix)
	if code == 0 || !strings.Contains(stderr, "it holds ron-kms deployment "+m.ID) || !strings.Contains(stderr, "choose another --etcd-prefix") {
		t.Errorf("second migrate: exit %d, %s", code, stderr)
	}
	// Into another deployment's prefix, or a prefix inside one: refused.
	other := openPrefix(t, cl, "ron-kms/other/")
	theirs := deployment.New(deployment.ByServe, time.Now())
	if _, err := other.Apply(ctx, storage.Mutation{Key: "k/x", Value: []byte("x")}, storage.Mutation{Key: deployment.MarkerKey, Value: theirs.Marshal()}); err != nil {
		t.Fatal(err)
	}
	otherItems := items(t, other)
	rev = revision(t, target)
	for _, tt := range []struct{ prefix, want string }{
		{"ron-kms/other/", "it holds ron-kms deployment " + theirs.ID + " (created " + theirs.CreatedAt + " by serve)"},
		{"ron-kms/prod/inner/", `lies inside ron-kms deployment ` + m.ID + ` at prefix "ron-kms/prod/"`},
		{"ron-kms/", `under the longer prefix "ron-kms/other/"`},
	} {
		code, _, stderr = runCLI(t, "migrate", "--from", dir, "--to", url, "--etcd-prefix", tt.prefix)
		if code == 0 || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "etcdctl") {
			t.Errorf("migrate into %s: exit %d, %s", tt.prefix, code, stderr)
		}
	}
	if after := revision(t, target); after != rev {
		t.Errorf("refused migrates moved the cluster revision %d → %d", rev, after)
	}
	if !equalItems(items(t, other), otherItems) || !equalItems(items(t, target), got) {
		t.Error("a refused migrate changed a prefix")
	}

	// A node on the prefix, with the data directory's KEK, serves it all;
	// with another KEK it refuses the prefix.
	kek, err := os.ReadFile(filepath.Join(dir, server.RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := os.ReadFile(filepath.Join(dir, server.AdminTokenFile))
	onEtcd := checkUsable(t, openPrefix(t, cl, prefix), kek, strings.TrimSpace(string(tok)), h)

	// Backup works unchanged on etcd: a backup through the API of the node
	// on the prefix holds exactly the prefix, marker included, and
	// restores into another prefix byte for byte.
	var etcdBak bytes.Buffer
	if _, err := onEtcd.Backup(ctx, &etcdBak); err != nil {
		t.Fatal(err)
	}
	live := items(t, target)
	hdr, tr, err := backup.Verify(bytes.NewReader(etcdBak.Bytes()))
	if err != nil || tr.Items != int64(len(live)) || hdr.KEK != backup.KEKRootKey {
		t.Fatalf("the backup of the node on etcd: %+v %+v %v (the prefix holds %d items)", hdr, tr, err, len(live))
	}
	etcdBakFile := filepath.Join(t.TempDir(), "etcd.backup")
	if err := os.WriteFile(etcdBakFile, etcdBak.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "restore", "--in", etcdBakFile, "--to", url, "--etcd-prefix", "ron-kms/clone/")
	if code != 0 {
		t.Fatalf("restore --to of the etcd backup: exit %d: %s", code, stderr)
	}
	if clone := items(t, openPrefix(t, cl, "ron-kms/clone/")); !equalItems(clone, live) {
		t.Errorf("the restored etcd backup differs from the prefix it was taken from (%d vs %d items)", len(clone), len(live))
	}
	wrong := bytes.Repeat([]byte{7}, seal.KEKSize)
	if _, _, err := etcdNode(t, openPrefix(t, cl, prefix), wrong); !errors.Is(err, keystore.ErrWrongKEK) {
		t.Errorf("a node with another KEK: %v, want ErrWrongKEK", err)
	}

	// The backup the single node took restores into etcd: the same items
	// as the data directory, and a marker of the restore.
	bakFile := filepath.Join(t.TempDir(), "kms.backup")
	if err := os.WriteFile(bakFile, bak.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "restore", "--in", bakFile, "--to", url, "--etcd-prefix", "ron-kms/restored/")
	if code != 0 {
		t.Fatalf("restore --to: exit %d: %s", code, stderr)
	}
	var rres copyResult
	if err := json.Unmarshal([]byte(stdout), &rres); err != nil {
		t.Fatal(err)
	}
	restored := items(t, openPrefix(t, cl, "ron-kms/restored/"))
	rm, err := deployment.Parse(restored[deployment.MarkerKey])
	if err != nil || rm.CreatedBy != deployment.ByRestore {
		t.Errorf("restored marker %+v, %v", rm, err)
	}
	delete(restored, deployment.MarkerKey)
	if !equalItems(restored, src) || !rres.Source.Same(srcSum) || !rres.Target.Same(srcSum) {
		t.Errorf("the restored prefix differs from the data directory: %d items, %+v", len(restored), rres.Target)
	}
	if !strings.Contains(stderr, "restored ") || !strings.Contains(stderr, "--kek-file F, F a copy of the old root.key") {
		t.Errorf("restore stderr: %s", stderr)
	}
}

func equalItems(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// TestMigratePassphrase: a data directory whose KEK comes from a
// passphrase gets its Argon2id parameters copied to meta/kek.params
// (exactly the kek.params file), by migrate and by restore --to; a node
// that derives the KEK from them and the passphrase serves the keys.
func TestMigratePassphrase(t *testing.T) {
	ctx := t.Context()
	cl := etcdtest.New(t, 1)
	url := etcdURL(cl)
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	params, err := seal.NewPassphraseParams(1, 64, 1) // cheap, for the test
	if err != nil {
		t.Fatal(err)
	}
	paramsFile := params.Marshal()
	if err := os.WriteFile(filepath.Join(dir, server.ParamsFile), paramsFile, 0o600); err != nil {
		t.Fatal(err)
	}
	const pass = "correct horse battery staple"
	t.Setenv("RON_KMS_TEST_PASSPHRASE", pass)
	node := startSingleNode(t, dir, func(c *server.Config) { c.PassphraseEnv = "RON_KMS_TEST_PASSPHRASE" })
	h := useNode(t, node.c)
	var bak bytes.Buffer
	if _, err := node.c.Backup(ctx, &bak); err != nil {
		t.Fatal(err)
	}
	node.stop()
	src, _ := boltItems(t, dir)

	code, stdout, stderr := runCLI(t, "migrate", "--from", dir, "--to", url, "--etcd-prefix", "pass/")
	if code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, stderr)
	}
	var res copyResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if res.KEK != kekPassphrase || strings.Join(res.Added, ",") != deployment.MarkerKey+","+deployment.ParamsKey {
		t.Errorf("kek %q, added %q", res.KEK, res.Added)
	}
	if !strings.Contains(stderr, "--kek-passphrase-env VAR, VAR holding the old passphrase") || !strings.Contains(stderr, "--etcd-prefix pass/ --kek-passphrase-env VAR") {
		t.Errorf("stderr: %s", stderr)
	}
	st := openPrefix(t, cl, "pass/")
	got := items(t, st)
	if !bytes.Equal(got[deployment.ParamsKey], paramsFile) {
		t.Errorf("meta/kek.params = %s, want the file %s", got[deployment.ParamsKey], paramsFile)
	}
	delete(got, deployment.ParamsKey)
	delete(got, deployment.MarkerKey)
	if !equalItems(got, src) {
		t.Error("the prefix differs from the data directory")
	}
	derive := func(st storage.Store) []byte {
		it, err := st.Get(ctx, deployment.ParamsKey)
		if err != nil {
			t.Fatal(err)
		}
		p, err := seal.ParsePassphraseParams(it.Value)
		if err != nil {
			t.Fatal(err)
		}
		kek, err := p.DeriveKEK([]byte(pass))
		if err != nil {
			t.Fatal(err)
		}
		return kek
	}
	tok, _ := os.ReadFile(filepath.Join(dir, server.AdminTokenFile))
	checkUsable(t, st, derive(st), strings.TrimSpace(string(tok)), h)

	// The passphrase backup restores into etcd with the same parameters.
	bakFile := filepath.Join(t.TempDir(), "kms.backup")
	if err := os.WriteFile(bakFile, bak.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "restore", "--in", bakFile, "--to", url, "--etcd-prefix", "pass-restored/")
	if code != 0 {
		t.Fatalf("restore --to: exit %d: %s", code, stderr)
	}
	rst := openPrefix(t, cl, "pass-restored/")
	if it, err := rst.Get(ctx, deployment.ParamsKey); err != nil || !bytes.Equal(it.Value, paramsFile) {
		t.Errorf("restored meta/kek.params = %s, %v", it.Value, err)
	}
	checkUsable(t, rst, derive(rst), strings.TrimSpace(string(tok)), h)
}

// interruptAt cancels a copy's context before its Apply number n.
type interruptAt struct {
	storecopy.Target
	n      int
	calls  int
	cancel context.CancelFunc
}

func (s *interruptAt) Apply(ctx context.Context, muts ...storage.Mutation) (int64, error) {
	s.calls++
	if s.calls == s.n {
		s.cancel()
		return 0, ctx.Err()
	}
	return s.Target.Apply(ctx, muts...)
}

// TestMigrateInterrupted: a copy cut off half-way (its context ended
// between two transactions) leaves items and meta/copying but no marker in
// etcd; migrate then refuses the prefix, names it an interrupted copy and
// gives the command that removes it; once removed, migrate succeeds.
func TestMigrateInterrupted(t *testing.T) {
	cl := etcdtest.New(t, 1)
	url := etcdURL(cl)
	const prefix = "half/"
	dir := filepath.Join(t.TempDir(), "data")
	node := startSingleNode(t, dir, nil)
	useNode(t, node.c)
	node.stop()

	r, err := boltstore.OpenReadOnly(filepath.Join(dir, server.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	st := openPrefix(t, cl, prefix)
	marker := deployment.New(deployment.ByMigrate, time.Now())
	rep, err := storecopy.Copy(ctx, &interruptAt{Target: st, n: 3, cancel: cancel}, storecopy.FromSnapshot(r), storecopy.Options{Marker: marker.Marshal(), BatchItems: 5})
	r.Close()
	if !errors.Is(err, context.Canceled) || !rep.Written {
		t.Fatalf("the interrupted copy: %+v, %v", rep, err)
	}
	half := items(t, st)
	if _, ok := half[deployment.MarkerKey]; ok || half[deployment.CopyingKey] == nil || len(half) < 5 {
		t.Fatalf("after the interruption etcd holds %d items (marker there: %v)", len(half), ok)
	}

	rev := revision(t, st)
	code, _, stderr := runCLI(t, "migrate", "--from", dir, "--to", url, "--etcd-prefix", prefix)
	hint := "remove it and run again: etcdctl --endpoints=" + strings.Join(cl.Endpoints(), ",") + " del --prefix half/"
	if code == 0 || !strings.Contains(stderr, "it holds an interrupted migrate (deployment "+marker.ID) || !strings.Contains(stderr, hint) {
		t.Fatalf("migrate into the half-copied prefix: exit %d, %s", code, stderr)
	}
	if revision(t, st) != rev {
		t.Error("the refused migrate wrote")
	}

	// What the hint says: etcdctl del --prefix half/.
	if _, err := st.Client().Delete(t.Context(), prefix, clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCLI(t, "migrate", "--from", dir, "--to", url, "--etcd-prefix", prefix)
	if code != 0 {
		t.Fatalf("migrate after the clean-up: exit %d: %s", code, stderr)
	}
}

// TestRestoreToRefusals: a damaged backup, flags that do not go together,
// and a plaintext URL with TLS files are refused before anything is
// written.
func TestRestoreToRefusals(t *testing.T) {
	cl := etcdtest.New(t, 1)
	url := etcdURL(cl)
	dir := t.TempDir()
	damaged := filepath.Join(dir, "damaged.backup")
	os.WriteFile(damaged, []byte(`{"format":"ron-kms-backup/v1","created_at":"2026-01-02T03:04:05Z","kek":"root.key","kek_id":"0123456789abcdef","server":"dev"}
{"k":"k/x","v":"eA=="}
{"items":1,"revision":1,"sha256":"0000000000000000000000000000000000000000000000000000000000000000"}
`), 0o600)
	st := openPrefix(t, cl, "r/")
	rev := revision(t, st)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"restore", "--in", damaged, "--to", url, "--etcd-prefix", "r/"}, "restore refused, nothing was written: backup: checksum mismatch"},
		{[]string{"restore", "--in", damaged, "--to", url, "--etcd-prefix", "r/", "--data-dir", dir}, "--data-dir and --root-key do not apply"},
		{[]string{"restore", "--in", damaged, "--data-dir", filepath.Join(dir, "d"), "--etcd-prefix", "r/"}, "--etcd-prefix and the --etcd-* TLS flags go with --to"},
		{[]string{"migrate", "--from", dir, "--to", url, "--etcd-prefix", "r/"}, "has no kms.db"},
		{[]string{"migrate", "--from", damaged, "--to", url, "--etcd-prefix", "r/"}, "is not a directory"},
		{[]string{"migrate", "--from", dir, "--to", "etcd://A,B,C", "--etcd-prefix", "r/"}, `member 1: "A" has no port`},
		{[]string{"migrate", "--from", dir}, "--to etcd://HOST:PORT,... is required"},
	} {
		code, _, stderr := runCLI(t, tt.args...)
		if code == 0 || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, %q; want one line saying %q", tt.args, code, stderr, tt.want)
		}
	}
	if revision(t, st) != rev {
		t.Error("a refused command wrote etcd")
	}
	if _, err := os.Stat(filepath.Join(dir, "d")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused restore created a data directory")
	}
}
