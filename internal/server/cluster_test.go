package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/audit"
	"github.com/ron-kms/ron-kms/internal/deployment"
	"github.com/ron-kms/ron-kms/internal/etcdtest"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
)

// writeKEK writes a KEK file (32 raw random bytes, 0600) in a new
// directory.
func writeKEK(t *testing.T) string {
	t.Helper()
	kek := make([]byte, 32)
	rand.Read(kek)
	path := filepath.Join(t.TempDir(), "kek")
	if err := os.WriteFile(path, kek, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// etcdConfig is a node of the deployment at prefix on cl, with its own
// data directory.
func etcdConfig(t *testing.T, cl *etcdtest.Cluster, prefix, kekFile string) Config {
	cfg := testConfig(t)
	cfg.Store = "etcd"
	cfg.EtcdEndpoints = cl.Endpoints()
	cfg.EtcdPrefix = prefix
	cfg.KEKFile = kekFile
	return cfg
}

func clientWith(t *testing.T, r *running, token string) *client.Client {
	t.Helper()
	c, err := client.New(r.url, token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTwoNodesOneEtcd: two servers on real listeners share one three-member
// etcd cluster, one KEK file and one prefix. A key created on A signs on
// B; rotated on B, its new version verifies and signs on A; a token minted
// on A works on B; and each node's audit chain verifies, carrying its own
// node id in every record and checkpoint, with the cluster's revision as
// store generation.
func TestTwoNodesOneEtcd(t *testing.T) {
	ctx := context.Background()
	cl := etcdtest.New(t, 3)
	kek := writeKEK(t)
	cfgA := etcdConfig(t, cl, "ron-kms/", kek)
	cfgB := etcdConfig(t, cl, "ron-kms/", kek)
	cfgB.NodeID = "node-b"
	a := start(t, cfgA)
	b := start(t, cfgB)
	nodeA := a.srv.NodeID()
	if len(nodeA) != len("node-")+8 || !strings.HasPrefix(nodeA, "node-") || b.srv.NodeID() != "node-b" {
		t.Fatalf("node ids %q and %q", nodeA, b.srv.NodeID())
	}
	if id, err := os.ReadFile(filepath.Join(cfgA.DataDir, NodeIDFile)); err != nil || string(id) != nodeA+"\n" {
		t.Fatalf("node.id holds %q (%v), want %q", id, err, nodeA)
	}
	if _, err := os.Stat(filepath.Join(cfgB.DataDir, NodeIDFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a node given --node-id wrote node.id: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfgA.DataDir, RootKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an etcd node wrote root.key: %v", err)
	}
	admin := readToken(t, cfgA.DataDir)
	ca, cb := clientWith(t, a, admin), clientWith(t, b, admin)

	created, err := ca.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	name := created.Key.Name
	digest := strings.Repeat("ab", 32)
	s1, err := cb.Sign(ctx, api.SignRequest{KID: name, PayloadB3: digest})
	if err != nil || !strings.HasSuffix(s1.KID, "#v1") {
		t.Fatalf("sign on B with a key made on A: %+v %v", s1, err)
	}
	if v, err := ca.Verify(ctx, api.VerifyRequest{KID: s1.KID, PayloadB3: digest, Sigs: s1.Sigs}); err != nil || !v.OK {
		t.Fatalf("verify on A of B's v1 signature: %+v %v", v, err)
	}
	rot, err := cb.RotateKey(ctx, name, "")
	if err != nil || !strings.HasSuffix(rot.KID, "#v2") {
		t.Fatalf("rotate on B: %+v %v", rot, err)
	}
	s2, err := cb.Sign(ctx, api.SignRequest{KID: name, PayloadB3: digest})
	if err != nil || s2.KID != rot.KID {
		t.Fatalf("sign on B after its rotation: %+v %v", s2, err)
	}
	// A learns of the rotation from its watch of etcd: measure how long
	// until it verifies the new version and signs with it.
	t0 := time.Now()
	for {
		v, verr := ca.Verify(ctx, api.VerifyRequest{KID: s2.KID, PayloadB3: digest, Sigs: s2.Sigs})
		sa, serr := ca.Sign(ctx, api.SignRequest{KID: name, PayloadB3: digest})
		if verr == nil && v.OK && serr == nil && sa.KID == rot.KID {
			break
		}
		if time.Since(t0) > 10*time.Second {
			t.Fatalf("A never caught up with B's rotation: verify %+v %v, sign %+v %v", v, verr, sa, serr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("A verified and signed with B's new version %v after the rotation", time.Since(t0).Round(time.Microsecond))

	// A token minted on A works on B (the token root key is in etcd).
	minted, err := ca.MintToken(ctx, api.MintTokenRequest{Scopes: []string{"kms:sign"}, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := clientWith(t, b, minted.Token).Sign(ctx, api.SignRequest{KID: name, PayloadB3: digest}); err != nil || s.KID != rot.KID {
		t.Fatalf("sign on B with a token minted on A: %+v %v", s, err)
	}
	a.shutdown(t)
	b.shutdown(t)

	st, err := etcdstore.Open(etcdstore.Options{Endpoints: cl.Endpoints(), Prefix: "ron-kms/"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rev, err := st.Revision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pubA, _ := os.ReadFile(filepath.Join(cfgA.DataDir, audit.PublicKeyFile))
	pubB, _ := os.ReadFile(filepath.Join(cfgB.DataDir, audit.PublicKeyFile))
	if len(pubA) == 0 || !bytes.Equal(pubA, pubB) {
		t.Errorf("the nodes' audit keys differ: the audit key is the deployment's")
	}
	for _, n := range []struct {
		dir, node string
		ops       []string
	}{
		{cfgA.DataDir, nodeA, []string{"create", "verify", "sign", "token_mint"}},
		{cfgB.DataDir, "node-b", []string{"sign", "rotate"}},
	} {
		rep, recs := auditRecords(t, n.dir)
		if !slices.Equal(rep.Nodes, []string{n.node}) || !rep.Closed {
			t.Errorf("%s: nodes %v, closed %v", n.node, rep.Nodes, rep.Closed)
		}
		if g := rep.StoreGeneration; g == 0 || g > uint64(rev) {
			t.Errorf("%s: last checkpoint's store generation %d, the cluster's revision is %d", n.node, g, rev)
		}
		seen := map[string]bool{}
		for _, r := range recs {
			if r.Node != n.node {
				t.Errorf("%s: record %d carries node %q", n.node, r.Seq, r.Node)
			}
			seen[r.Op] = true
		}
		for _, op := range n.ops {
			if !seen[op] {
				t.Errorf("%s: no %s record among %v", n.node, op, seen)
			}
		}
	}
}

// TestEtcdRollback: a node whose audit log last recorded a cluster revision
// higher than the cluster it is started on (a cluster restored from a
// copy of its data: a fresh cluster with the deployment's keys, revision
// far lower) refuses writes until it is started with --accept-rollback,
// which is audited; reads keep working.
func TestEtcdRollback(t *testing.T) {
	ctx := context.Background()
	cl := etcdtest.New(t, 1)
	kek := writeKEK(t)
	cfg := etcdConfig(t, cl, "ron-kms/", kek)
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	var name string
	for i := range 5 {
		k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519"})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			name = k.Key.Name
		}
		if _, err := c.RotateKey(ctx, k.Key.Name, ""); err != nil {
			t.Fatal(err)
		}
	}
	r.shutdown(t)
	rep, _ := auditRecords(t, cfg.DataDir)

	// The deployment's keys, copied into a new cluster: its revision is
	// that of the few transactions of the copy.
	cl2 := etcdtest.New(t, 1)
	copied := copyPrefix(t, cl, cl2, "ron-kms/")
	st2, err := etcdstore.Open(etcdstore.Options{Endpoints: cl2.Endpoints(), Prefix: "ron-kms/"})
	if err != nil {
		t.Fatal(err)
	}
	rev2, err := st2.Revision(ctx)
	st2.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("copied %d keys; the log's last checkpoint recorded generation %d, the copy's revision is %d", copied, rep.StoreGeneration, rev2)
	if uint64(rev2) >= rep.StoreGeneration {
		t.Fatalf("the copy's revision %d is not below the checkpoint's %d: the test proves nothing", rev2, rep.StoreGeneration)
	}

	cfg.EtcdEndpoints = cl2.Endpoints()
	r = start(t, cfg)
	admin := readToken(t, cfg.DataDir)
	res := httpDo(t, r, "POST", "/v1/kms/keys", admin, map[string]any{"tenant": "acme", "purpose": "docs", "alg": "ed25519"})
	if res.status != 503 || res.str("error", "code") != "StoreUnavailable" || !strings.Contains(res.str("error", "message"), "rolled back") {
		t.Fatalf("create on a rolled-back cluster: %d %s", res.status, res.raw)
	}
	if res := httpDo(t, r, "POST", "/v1/kms/keys/"+name+"/rotate", admin, map[string]any{}); res.status != 503 {
		t.Fatalf("rotate on a rolled-back cluster: %d %s", res.status, res.raw)
	}
	if res := httpDo(t, r, "GET", "/v1/kms/keys/"+name, admin, nil); res.status != 200 {
		t.Fatalf("get on a rolled-back cluster: %d %s", res.status, res.raw)
	}
	if rz := httpDo(t, r, "GET", "/readyz", "", nil); rz.status != 503 || !strings.Contains(string(rz.raw), "--accept-rollback") {
		t.Fatalf("/readyz on a rolled-back cluster: %d %s", rz.status, rz.raw)
	}
	r.shutdown(t)

	cfg.AcceptRollback = true
	r = start(t, cfg)
	if res := httpDo(t, r, "POST", "/v1/kms/keys/"+name+"/rotate", admin, map[string]any{}); res.status != 200 {
		t.Fatalf("rotate after --accept-rollback: %d %s", res.status, res.raw)
	}
	r.shutdown(t)
	cfg.AcceptRollback = false
	r = start(t, cfg)
	node := r.srv.NodeID()
	if res := httpDo(t, r, "POST", "/v1/kms/keys", admin, map[string]any{"tenant": "acme", "purpose": "docs", "alg": "ed25519"}); res.status != 201 {
		t.Fatalf("create after the accepted rollback: %d %s", res.status, res.raw)
	}
	r.shutdown(t)

	rep, recs := auditRecords(t, cfg.DataDir)
	accepted := 0
	for _, rec := range recs {
		if rec.Op == "accept_rollback" && rec.Result == audit.ResultOK && rec.Node == node {
			accepted++
		}
	}
	if accepted != 1 {
		t.Errorf("%d accept_rollback records, want 1", accepted)
	}
	if !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "store generation went down") }) {
		t.Errorf("the verified log does not show the accepted rollback: %v", rep.Warnings)
	}
}

// copyPrefix copies every key under prefix from one cluster to another,
// from one snapshot, in transactions of at most storage.MaxApplyMutations
// keys, and returns how many it copied.
func copyPrefix(t *testing.T, from, to *etcdtest.Cluster, prefix string) int {
	t.Helper()
	ctx := context.Background()
	src, err := etcdstore.Open(etcdstore.Options{Endpoints: from.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := etcdstore.Open(etcdstore.Options{Endpoints: to.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	var batch []storage.Mutation
	n := 0
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := dst.Apply(ctx, batch...); err != nil {
			t.Fatal(err)
		}
		batch = batch[:0]
	}
	if _, err := src.Snapshot(ctx, func(it storage.Item) error {
		batch = append(batch, storage.Mutation{Key: it.Key, Value: it.Value, Expect: storage.MustNotExist})
		n++
		if len(batch) == storage.MaxApplyMutations {
			flush()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	flush()
	return n
}

// TestEtcdPassphrase: with --kek-passphrase-env the first node writes the
// Argon2id parameters into the store (meta/kek.params) and no kek.params
// in its data directory; a second node with the same passphrase joins; a
// node with another passphrase is refused as having the wrong key.
func TestEtcdPassphrase(t *testing.T) {
	ctx := context.Background()
	cl := etcdtest.New(t, 1)
	t.Setenv("TEST_KMS_PASS", "correct horse battery staple")
	t.Setenv("TEST_KMS_WRONG", "incorrect horse")
	cfgA := etcdConfig(t, cl, "pp/", "")
	cfgA.PassphraseEnv = "TEST_KMS_PASS"
	a := start(t, cfgA)
	c := adminClient(t, a, cfgA.DataDir)
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "t", Purpose: "p", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ParamsFile, RootKeyFile, DBFile} {
		if _, err := os.Stat(filepath.Join(cfgA.DataDir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("an etcd node wrote %s in its data directory: %v", f, err)
		}
	}
	st, err := etcdstore.Open(etcdstore.Options{Endpoints: cl.Endpoints(), Prefix: "pp/"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	it, err := st.Get(ctx, deployment.ParamsKey)
	if err != nil {
		t.Fatalf("no %s in the store: %v", deployment.ParamsKey, err)
	}
	if bk := a.srv.backupKEK(); string(bk.Params) != string(it.Value) {
		t.Errorf("backup headers would carry %q, the store holds %q", bk.Params, it.Value)
	}

	cfgB := etcdConfig(t, cl, "pp/", "")
	cfgB.PassphraseEnv = "TEST_KMS_PASS"
	b := start(t, cfgB)
	if _, err := clientWith(t, b, readToken(t, cfgA.DataDir)).Sign(ctx, api.SignRequest{KID: k.Key.Name, PayloadB3: strings.Repeat("00", 32)}); err != nil {
		t.Fatalf("sign on the second passphrase node: %v", err)
	}

	cfgC := etcdConfig(t, cl, "pp/", "")
	cfgC.PassphraseEnv = "TEST_KMS_WRONG"
	_, err = Open(ctx, cfgC, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "wrong key-encryption key") || !strings.Contains(err.Error(), "--kek-passphrase-env") {
		t.Fatalf("another passphrase: %v", err)
	}
	cfgD := etcdConfig(t, cl, "pp/", writeKEK(t))
	_, err = Open(ctx, cfgD, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "comes from a passphrase") {
		t.Fatalf("a KEK file for a passphrase deployment: %v", err)
	}
}

// TestEtcdFirstStartRace: nodes started at once on an empty prefix make one
// deployment. With the same key all of them join it; with different keys
// exactly one starts and the others are refused as having the wrong key.
func TestEtcdFirstStartRace(t *testing.T) {
	cl := etcdtest.New(t, 1)
	for _, sameKey := range []bool{true, false} {
		prefix := "race-same/"
		if !sameKey {
			prefix = "race-different/"
		}
		kek := writeKEK(t)
		const n = 4
		type result struct {
			err     error
			dataDir string
		}
		errs := make(chan result, n)
		srvs := make(chan *Server, n)
		for range n {
			cfg := etcdConfig(t, cl, prefix, kek)
			if !sameKey {
				cfg.KEKFile = writeKEK(t)
			}
			go func() {
				srv, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
				if err == nil {
					srvs <- srv
				}
				errs <- result{err, cfg.DataDir}
			}()
		}
		var started, wrong int
		for range n {
			r := <-errs
			switch err := r.err; {
			case err == nil:
				started++
			case strings.Contains(err.Error(), "wrong key-encryption key"):
				wrong++
				// A refused node wrote nothing, its data directory included.
				if ents, _ := os.ReadDir(r.dataDir); len(ents) != 0 {
					t.Errorf("prefix %s: a refused node left %d entries in its data directory", prefix, len(ents))
				}
			default:
				t.Errorf("prefix %s: %v", prefix, err)
			}
		}
		close(srvs)
		for srv := range srvs {
			if err := srv.Close(); err != nil {
				t.Error(err)
			}
		}
		if sameKey && started != n || !sameKey && (started != 1 || wrong != n-1) {
			t.Errorf("prefix %s: %d started, %d refused for the wrong key", prefix, started, wrong)
		}
	}
}

// TestBoltNodeIDAndKEKFile: the bolt store by default writes no node.id and
// its audit records carry no node, as before nodes had ids; --node-id puts
// one in every later record; --kek-file replaces root.key (none is
// written), and a store made with it does not open with another key.
func TestBoltNodeIDAndKEKFile(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	adminClient(t, r, cfg.DataDir).CreateKey(context.Background(), api.CreateKeyRequest{Tenant: "t", Purpose: "p", Alg: "ed25519"})
	r.shutdown(t)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, NodeIDFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the bolt store wrote node.id: %v", err)
	}
	if rep, _ := auditRecords(t, cfg.DataDir); len(rep.Nodes) != 0 {
		t.Fatalf("bolt audit log with nodes %v", rep.Nodes)
	}
	cfg.NodeID = "solo"
	r = start(t, cfg)
	r.shutdown(t)
	if rep, _ := auditRecords(t, cfg.DataDir); !slices.Equal(rep.Nodes, []string{"solo"}) {
		t.Fatalf("nodes %v after --node-id solo", rep.Nodes)
	}

	fcfg := testConfig(t)
	fcfg.KEKFile = writeKEK(t)
	r = start(t, fcfg)
	r.shutdown(t)
	if _, err := os.Stat(filepath.Join(fcfg.DataDir, RootKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("--kek-file wrote root.key: %v", err)
	}
	r = start(t, fcfg)
	r.shutdown(t)
	fcfg.KEKFile = writeKEK(t)
	if _, err := Open(context.Background(), fcfg, slog.New(slog.DiscardHandler)); !errors.Is(err, keystore.ErrWrongKEK) {
		t.Fatalf("another --kek-file: %v", err)
	}
}
