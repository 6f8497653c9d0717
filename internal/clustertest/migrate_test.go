package clustertest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// TestMigrateThenServe is the way up from one machine, with real
// processes: a single node on the bolt store makes a key, signs and
// rotates; it is stopped; `ron-kms migrate` copies its store into an empty
// etcd prefix; two nodes started on that prefix with the single node's
// root.key as their --kek-file verify the old signature, sign with the
// current version, rotate, and accept the single node's admin token.
func TestMigrateThenServe(t *testing.T) {
	c := prepareCluster(t, 2)
	single, tok := startBoltNode(t, c, 9, "single")
	c.token = tok
	sc := mustClient(t, single.addr, c.token)
	ctx, cancel := ctxT(t)
	defer cancel()
	created, err := sc.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "migrated", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	name := created.Key.Name
	payload := randomPayload()
	old, err := sc.Sign(ctx, api.SignRequest{KID: name, PayloadB3: payload})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.RotateKey(ctx, name, ""); err != nil {
		t.Fatal(err)
	}
	single.stop()

	url := "etcd://" + strings.Join(trimScheme(c.etcd.Endpoints()), ",")
	out, err := exec.Command(binPath, "migrate", "--from", single.dataDir, "--to", url, "--etcd-prefix", c.prefix).CombinedOutput()
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	t.Logf("migrate:\n%s", out)

	// Every node gets the single node's KEK.
	c.kek = filepath.Join(single.dataDir, "root.key")
	for i := range c.nodes {
		c.start(i)
	}
	for i := range c.nodes {
		cl := c.client(i)
		v, err := cl.Verify(ctx, api.VerifyRequest{KID: old.KID, PayloadB3: payload, Sigs: old.Sigs})
		if err != nil || !v.OK {
			t.Fatalf("node %d: the single node's signature: %+v, %v", i, v, err)
		}
		s, err := cl.Sign(ctx, api.SignRequest{KID: name, PayloadB3: payload})
		if err != nil {
			t.Fatalf("node %d: sign with the migrated key: %v", i, err)
		}
		if want := name + "#v" + fmt.Sprint(2+i); s.KID != want {
			t.Errorf("node %d signs with %s, want %s", i, s.KID, want)
		}
		if _, err := cl.RotateKey(ctx, name, ""); err != nil {
			t.Fatalf("node %d: rotate the migrated key: %v", i, err)
		}
	}
	var dirs []string
	for _, nd := range c.nodes {
		nd.stop()
		dirs = append(dirs, nd.dataDir)
	}
	if out, err := auditVerify(t, dirs...); err != nil {
		t.Fatalf("audit verify of the nodes: %v\n%s", err, out)
	}
}

// trimScheme drops "http://" from each endpoint.
func trimScheme(eps []string) []string {
	out := make([]string, len(eps))
	for i, ep := range eps {
		out[i] = strings.TrimPrefix(ep, "http://")
	}
	return out
}
