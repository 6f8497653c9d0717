package storecopy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ron-kms/ron-kms/internal/deployment"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
)

// EtcdTarget names the etcd prefix a copy writes: the --to, --etcd-prefix
// and --etcd-cacert/--etcd-cert/--etcd-key of migrate and restore.
type EtcdTarget struct {
	URL    *etcdstore.URL
	Prefix string
	// TLS holds the files given; nil when none was. etcds:// without files
	// verifies the members against the system CA pool.
	TLS *etcdstore.TLSFiles
	// RequestTimeout bounds each etcd call; 10 s when 0 (a copy is an
	// offline tool: it can wait for a slow cluster).
	RequestTimeout time.Duration
}

// dialTimeout bounds connecting to the first member.
const dialTimeout = 5 * time.Second

// ErrTarget reports a target the copy will not use: a bad prefix, TLS
// files with a plaintext URL, an unreachable cluster, or a prefix inside
// another deployment.
var ErrTarget = errors.New("storecopy: bad target")

// CheckPrefix accepts an etcd key prefix for a deployment: non-empty, at
// most 512 bytes, ending in "/" (so that "ron-kms/prod/" never shares keys
// with "ron-kms/prod2/"), without NUL.
func CheckPrefix(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: --etcd-prefix is required (the prefix every node is given with serve --etcd-prefix, such as ron-kms/prod/)", ErrTarget)
	case len(p) > 512:
		return fmt.Errorf("%w: --etcd-prefix is longer than 512 bytes", ErrTarget)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("%w: --etcd-prefix holds a NUL byte", ErrTarget)
	case !strings.HasSuffix(p, "/"):
		return fmt.Errorf("%w: --etcd-prefix %.80q must end in \"/\" (%.80q), so that it shares no key with a longer prefix", ErrTarget, p, p+"/")
	}
	return nil
}

// CheckTarget checks t without connecting: a URL, a prefix CheckPrefix
// accepts, and TLS files only with etcds://.
func CheckTarget(t EtcdTarget) error {
	if t.URL == nil {
		return fmt.Errorf("%w: no etcd URL", ErrTarget)
	}
	if err := CheckPrefix(t.Prefix); err != nil {
		return err
	}
	if !t.URL.TLS && t.TLS != nil {
		return fmt.Errorf("%w: --etcd-cacert, --etcd-cert and --etcd-key are for TLS, but %s is plaintext: write etcds://", ErrTarget, t.URL)
	}
	return nil
}

// OpenEtcd checks t (CheckTarget), connects to the cluster and checks that it answers,
// and refuses a prefix that lies inside another deployment (a marker under
// a shorter prefix ending in "/", such as ron-kms/ for ron-kms/prod/).
// Whether the prefix itself is empty is Copy's check. Errors wrap
// ErrTarget, or storage.ErrUnavailable for a cluster that does not answer.
func OpenEtcd(ctx context.Context, t EtcdTarget) (*etcdstore.Store, error) {
	if err := CheckTarget(t); err != nil {
		return nil, err
	}
	tlsFiles := t.TLS
	if t.URL.TLS && tlsFiles == nil {
		tlsFiles = &etcdstore.TLSFiles{}
	}
	if t.RequestTimeout == 0 {
		t.RequestTimeout = 10 * time.Second
	}
	st, err := etcdstore.Open(etcdstore.Options{Endpoints: t.URL.Endpoints(), Prefix: t.Prefix, TLS: tlsFiles,
		DialTimeout: dialTimeout, RequestTimeout: t.RequestTimeout})
	if err != nil {
		hint := ""
		if t.URL.TLS {
			hint = "; over TLS, check --etcd-cacert (the members' CA) and that the members serve https"
		}
		return nil, fmt.Errorf("storecopy: no member of %s answered within %v (is etcd running there?%s): %w", t.URL, dialTimeout, hint, err)
	}
	if err := st.Ping(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("storecopy: etcd at %s does not answer: %w", t.URL, err)
	}
	if err := checkParents(ctx, st, t); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// checkParents looks for a deployment marker under every shorter prefix
// of t.Prefix that ends in "/".
func checkParents(ctx context.Context, st *etcdstore.Store, t EtcdTarget) error {
	for i := len(t.Prefix) - 2; i >= 0; i-- {
		if t.Prefix[i] != '/' {
			continue
		}
		parent := t.Prefix[:i+1]
		cctx, cancel := context.WithTimeout(ctx, t.RequestTimeout)
		resp, err := st.Client().Get(clientv3.WithRequireLeader(cctx), parent+deployment.MarkerKey)
		cancel()
		if err != nil {
			return fmt.Errorf("storecopy: etcd at %s: reading %s: %w: %v", t.URL, parent+deployment.MarkerKey, storage.ErrUnavailable, err)
		}
		if len(resp.Kvs) > 0 {
			what := "a ron-kms deployment"
			if m, err := deployment.Parse(resp.Kvs[0].Value); err == nil {
				what = "ron-kms deployment " + m.ID
			}
			return fmt.Errorf("%w: --etcd-prefix %.80q lies inside %s at prefix %.80q; choose a prefix outside it", ErrTarget, t.Prefix, what, parent)
		}
	}
	return nil
}
