package storecopy

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/etcdtest"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

func mustURL(t *testing.T, cl *etcdtest.Cluster) *etcdstore.URL {
	t.Helper()
	var hosts []string
	for _, e := range cl.Endpoints() {
		hosts = append(hosts, strings.TrimPrefix(e, "http://"))
	}
	u, err := etcdstore.ParseURL("etcd://" + strings.Join(hosts, ","))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestCopyEtcdBatches: a real etcd (default --max-request-bytes 1.5 MiB,
// --max-txn-ops 128) takes the copy's fullest transactions: 128 small
// items, about 1 MiB of values, and one item of 1.2 MiB alone.
func TestCopyEtcdBatches(t *testing.T) {
	ctx := t.Context()
	cl := etcdtest.New(t, 1)
	src := memstore.New()
	put := func(k string, v []byte) {
		if _, err := src.Apply(ctx, storage.Mutation{Key: k, Value: v, Expect: storage.MustNotExist}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		put(fmt.Sprintf("k/small/%05d", i), bytes.Repeat([]byte{byte(i)}, 200))
	}
	for i := range 30 {
		put(fmt.Sprintf("s/big/%02d", i), bytes.Repeat([]byte{byte(i)}, 100<<10))
	}
	put("s/huge", bytes.Repeat([]byte{1}, 1200<<10))

	dst, err := OpenEtcd(ctx, EtcdTarget{URL: mustURL(t, cl), Prefix: "batches/"})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	start := time.Now()
	rep, err := Copy(ctx, dst, FromSnapshot(src), Options{Marker: newMarker()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d items, %d bytes in %d Applies, %v", rep.Source.Items, rep.Source.Bytes, rep.Applies, time.Since(start))
	if !rep.Source.Same(rep.Target) {
		t.Errorf("summaries differ")
	}
}

// TestOpenEtcdRefusals: a bad prefix, TLS files with etcd://, and a prefix
// inside a deployment are refused before anything is written.
func TestOpenEtcdRefusals(t *testing.T) {
	ctx := t.Context()
	cl := etcdtest.New(t, 1)
	u := mustURL(t, cl)
	dep, err := OpenEtcd(ctx, EtcdTarget{URL: u, Prefix: "a/b/"})
	if err != nil {
		t.Fatal(err)
	}
	defer dep.Close()
	src := memstore.New()
	src.Apply(ctx, storage.Mutation{Key: "k/x", Value: []byte("x")})
	if _, err := Copy(ctx, dep, FromSnapshot(src), Options{Marker: newMarker()}); err != nil {
		t.Fatal(err)
	}
	rev, _ := dep.Revision(ctx)
	for _, tt := range []struct {
		t    EtcdTarget
		want string
	}{
		{EtcdTarget{URL: u, Prefix: ""}, "--etcd-prefix is required"},
		{EtcdTarget{URL: u, Prefix: "a"}, `must end in "/"`},
		{EtcdTarget{URL: u, Prefix: "a\x00/"}, "NUL"},
		{EtcdTarget{URL: u, Prefix: strings.Repeat("a", 600) + "/"}, "longer than 512"},
		{EtcdTarget{URL: u, Prefix: "x/", TLS: &etcdstore.TLSFiles{CACert: "ca.pem"}}, "write etcds://"},
		{EtcdTarget{URL: u, Prefix: "a/b/c/"}, `lies inside ron-kms deployment`},
		{EtcdTarget{URL: u, Prefix: "a/b/c/d/"}, `at prefix "a/b/"`},
	} {
		st, err := OpenEtcd(ctx, tt.t)
		if err == nil {
			st.Close()
		}
		if !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("OpenEtcd(%.40q) = %v, want ErrTarget saying %q", tt.t.Prefix, err, tt.want)
		}
	}
	if after, _ := dep.Revision(ctx); after != rev {
		t.Error("a refused OpenEtcd wrote")
	}
}
