package etcdtest

import (
	"testing"

	"go.uber.org/zap"
)

// New starts a cluster of n members for test t, in t.TempDir(), and kills
// it when the test ends. A build or start failure fails the test: the etcd
// server comes from the Go module proxy like every other dependency, so it
// is never skipped. A failing test gets the members' log tails.
func New(t testing.TB, n int) *Cluster {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := Binary(root)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(Config{Members: n, Dir: t.TempDir(), Binary: bin})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range c.Size() {
				t.Logf("etcd member %d log tail:\n%s", i, c.Logs(i))
			}
		}
		c.Close()
	})
	return c
}

// nopLogger keeps the etcd client quiet in tests.
func nopLogger() *zap.Logger { return zap.NewNop() }
