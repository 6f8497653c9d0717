package etcdstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ron-kms/ron-kms/internal/etcdtest"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
	"github.com/ron-kms/ron-kms/internal/storage/storagetest"
)

// TestConformance runs the Store suite against a real one-member etcd
// cluster, each subtest on a fresh prefix of it.
func TestConformance(t *testing.T) {
	cl := etcdtest.New(t, 1)
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return open(t, cl, fmt.Sprintf("conformance/%d/", n.Add(1)))
	}, storagetest.SharedRevision())
}

// TestReopen: a new client on the same prefix sees what the last one wrote.
func TestReopen(t *testing.T) {
	cl := etcdtest.New(t, 1)
	storagetest.RunReopen(t, func(t *testing.T, dir string) storage.Store {
		return open(t, cl, "reopen/")
	}, storagetest.SharedRevision())
}

func open(t *testing.T, cl *etcdtest.Cluster, prefix string) *etcdstore.Store {
	t.Helper()
	s, err := etcdstore.Open(etcdstore.Options{Endpoints: cl.Endpoints(), Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
