package clustertest

import (
	"errors"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// TestRevocationClusterWide: a token minted on node 0 works on every node;
// revoked on node 1, it is refused on every node (each follows the
// revocation list through its watch). Attenuations of a revoked token are
// refused as it is (tokens.txtar shows that on one node).
func TestRevocationClusterWide(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := ctxT(t)
	defer cancel()
	minted, err := c.client(0).MintToken(ctx, api.MintTokenRequest{Scopes: []string{"kms:read"}, Tenant: "acme", TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	as := func(i int) *client.Client { return mustClient(t, c.nodes[i].addr, minted.Token) }
	for i := range c.nodes {
		if _, err := as(i).ListKeys(ctx, client.ListOptions{Tenant: "acme"}); err != nil {
			t.Fatalf("node %d: the fresh token: %v", i, err)
		}
	}
	if _, err := c.client(1).RevokeToken(ctx, minted.ID); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	for i := range c.nodes {
		for {
			_, err := as(i).ListKeys(ctx, client.ListOptions{Tenant: "acme"})
			if errors.Is(err, client.ErrUnauthenticated) {
				break
			}
			if time.Since(revoked) > 10*time.Second {
				t.Fatalf("node %d still accepts the revoked token 10 s after the revocation: %v", i, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("node %d refuses the revoked token %v after the revocation", i, time.Since(revoked).Round(time.Millisecond))
	}
}
