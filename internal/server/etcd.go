package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ron-kms/ron-kms/internal/deployment"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
)

// etcdStartTimeout bounds how long a node tries to reach etcd at start
// before it refuses to start: long enough for a cluster that is electing a
// leader, short enough that a wrong --etcd-endpoints is said at once.
const etcdStartTimeout = 5 * time.Second

// etcdRetryPause is the pause between two start-up attempts to reach etcd.
const etcdRetryPause = 200 * time.Millisecond

// nestedScanLimit bounds the keys read to name another deployment found
// under the prefix (only the error message needs it).
const nestedScanLimit = 10000

// openEtcd opens the etcd store of a cluster node and its key-encryption
// key, in an order that writes nothing, in etcd or in the data directory,
// until every reason to refuse the start has been ruled out:
//
//  1. the KEK file or the passphrase is read;
//  2. etcd must answer (within etcdStartTimeout);
//  3. the prefix must hold a ron-kms deployment marker, or nothing at all,
//     and must not lie inside another deployment's prefix;
//  4. an existing deployment's marker must open with this node's KEK.
//
// Only then is the data directory prepared and the node id read or made,
// and, for a new deployment, the marker (and the passphrase parameters)
// written, before any other key. Each refusal is one line naming the fix.
func (s *Server) openEtcd(ctx context.Context) error {
	var fileKEK, pass []byte
	var err error
	if s.cfg.KEKFile != "" {
		if fileKEK, err = seal.LoadKEKFile(s.cfg.KEKFile); err != nil {
			return err
		}
		defer clear(fileKEK)
	} else {
		if pass, err = seal.PassphraseFromEnv(s.cfg.PassphraseEnv); err != nil {
			return err
		}
		defer clear(pass)
	}
	st, err := etcdstore.Open(etcdstore.Options{
		Endpoints: s.cfg.EtcdEndpoints, Prefix: s.cfg.EtcdPrefix, TLS: s.cfg.etcdTLS(),
		DialTimeout: etcdStartTimeout,
	})
	if err != nil {
		// The client dials for at most DialTimeout before it gives up.
		return s.notAnswering(err)
	}
	s.store = st
	if err := s.pingEtcd(ctx, st); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		dep, err := s.readDeployment(ctx, st)
		if err != nil {
			return err
		}
		var params *seal.PassphraseParams
		if dep != nil {
			params = dep.params
		}
		source := KEKSourceFile
		if pass != nil {
			source = KEKSourcePassphrase
		}
		var kek, freshParams []byte
		switch {
		case dep != nil && pass != nil && params == nil:
			return fmt.Errorf("server: the deployment at etcd prefix %s takes its key-encryption key from a KEK file, not a passphrase: give every node --kek-file F", s.cfg.EtcdPrefix)
		case pass != nil:
			p := params
			if p == nil {
				fresh := seal.DefaultPassphraseParams()
				p, freshParams = &fresh, fresh.Marshal()
			}
			if kek, err = p.DeriveKEK(pass); err != nil {
				return err
			}
			s.kekParams = p.Marshal()
		default:
			kek = append([]byte(nil), fileKEK...)
		}
		sealer, err := seal.NewAESGCM(kek)
		clear(kek)
		if err != nil {
			return err
		}
		if dep != nil {
			if err := keystore.OpenKEKCheck(sealer, dep.kekCheck); err != nil {
				sealer.Destroy()
				return s.wrongKEK(dep, source)
			}
		}
		// join finishes the start once every refusal is behind us: only then
		// does the node write its data directory (and node.id).
		join := func() error {
			if err := s.prepareDataDir(); err != nil {
				sealer.Destroy()
				return err
			}
			if s.node, err = s.nodeID(true); err != nil {
				sealer.Destroy()
				return err
			}
			s.sealer = sealer
			return nil
		}
		if dep != nil {
			return join()
		}
		marker := deployment.New(deployment.ByServe, time.Now())
		check, err := keystore.SealKEKCheck(sealer)
		if err != nil {
			sealer.Destroy()
			return err
		}
		// A node that loses this race to another first node writes nothing:
		// it reads the winner's deployment and joins it, or is refused.
		_, err = st.Apply(ctx, deploymentMutations(marker.Marshal(), check, freshParams)...)
		if err == nil {
			if err := join(); err != nil {
				return err
			}
			s.log.Info("started a new deployment", slog.String("etcd_prefix", s.cfg.EtcdPrefix),
				slog.String("kek_source", source), slog.String("node_id", s.node))
			return nil
		}
		sealer.Destroy()
		if !errors.Is(err, storage.ErrConflict) || attempt > 0 {
			return fmt.Errorf("server: writing the deployment marker under etcd prefix %s: %s", s.cfg.EtcdPrefix, oneLine(err))
		}
		// Another node started the deployment at the same moment: join
		// theirs (its marker, its passphrase parameters).
	}
}

// pingEtcd waits until etcd answers a linearizable read, for at most
// etcdStartTimeout; each attempt is bounded by the store's request timeout.
func (s *Server) pingEtcd(ctx context.Context, st *etcdstore.Store) error {
	deadline := time.Now().Add(etcdStartTimeout)
	for {
		err := st.Ping(ctx)
		if err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if time.Now().Add(etcdRetryPause).After(deadline) {
			return s.notAnswering(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(etcdRetryPause):
		}
	}
}

// notAnswering is the refusal of a node whose etcd does not answer at start.
func (s *Server) notAnswering(err error) error {
	return fmt.Errorf("server: etcd at %s does not answer (%s): check --etcd-endpoints and the --etcd-cacert/--etcd-cert/--etcd-key files, and that a majority of the members is up",
		strings.Join(s.cfg.EtcdEndpoints, ","), oneLine(err))
}

// existing is what a node joining a deployment reads of it.
type existing struct {
	marker   deployment.Marker
	kekCheck []byte                 // sealed, from deployment.KEKCheckKey
	params   *seal.PassphraseParams // nil unless the key comes from a passphrase
}

// source is where the deployment's key-encryption key comes from.
func (e *existing) source() string {
	if e.params != nil {
		return KEKSourcePassphrase
	}
	return KEKSourceFile
}

// readDeployment reads the prefix's deployment (nil for an empty prefix),
// or refuses a prefix that is not a ron-kms deployment of its own: one that
// holds keys but no marker (another application's, or a copy that did not
// finish), or one that lies inside another deployment's prefix.
func (s *Server) readDeployment(ctx context.Context, st *etcdstore.Store) (*existing, error) {
	return s.readDeploymentOnce(ctx, st, true)
}

// readDeploymentOnce is readDeployment; again allows one more read when the
// prefix turns out to hold keys after its marker was found missing (another
// node started the deployment in between).
func (s *Server) readDeploymentOnce(ctx context.Context, st *etcdstore.Store, again bool) (*existing, error) {
	prefix := s.cfg.EtcdPrefix
	it, err := st.Get(ctx, deployment.MarkerKey)
	if err == nil {
		m, err := deployment.Parse(it.Value)
		if err != nil {
			return nil, fmt.Errorf("server: etcd prefix %s holds a %s this version does not read (%s): give --etcd-prefix the prefix of a ron-kms deployment, or an empty one",
				prefix, deployment.MarkerKey, oneLine(err))
		}
		e := &existing{marker: m}
		switch cit, err := st.Get(ctx, deployment.KEKCheckKey); {
		case err == nil:
			e.kekCheck = cit.Value
		case errors.Is(err, storage.ErrNotFound):
			return nil, fmt.Errorf("server: the deployment %s at etcd prefix %s has no KEK check value (%s), so no node can tell whether its key is the cluster's: restore the prefix from a backup or migrate it again",
				m.ID, prefix, deployment.KEKCheckKey)
		default:
			return nil, s.unavailable(err)
		}
		switch pit, err := st.Get(ctx, deployment.ParamsKey); {
		case err == nil:
			p, err := seal.ParsePassphraseParams(pit.Value)
			if err != nil {
				return nil, fmt.Errorf("server: %s under etcd prefix %s: %s", deployment.ParamsKey, prefix, oneLine(err))
			}
			e.params = &p
		case !errors.Is(err, storage.ErrNotFound):
			return nil, s.unavailable(err)
		}
		return e, nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, s.unavailable(err)
	}
	// No marker: the prefix must be empty, and not inside another
	// deployment.
	if outer, err := s.enclosingDeployment(ctx, st); err != nil {
		return nil, err
	} else if outer != "" {
		return nil, fmt.Errorf("server: etcd prefix %s lies inside the ron-kms deployment at %s: give --etcd-prefix %s to join it, or a prefix outside it",
			prefix, outer, outer)
	}
	items, err := st.List(ctx, "", "", 1)
	if err != nil {
		return nil, s.unavailable(err)
	}
	if len(items) == 0 {
		return nil, nil
	}
	if _, err := st.Get(ctx, deployment.MarkerKey); err == nil && again {
		// A node that started at the same moment wrote the deployment
		// after our first read: join it.
		return s.readDeploymentOnce(ctx, st, false)
	}
	if _, err := st.Get(ctx, deployment.CopyingKey); err == nil {
		return nil, fmt.Errorf("server: etcd prefix %s holds a migrate or restore that did not finish (%s, no marker): run it again after deleting the prefix (etcdctl del --prefix %s)",
			prefix, deployment.CopyingKey, prefix)
	}
	if inner, err := s.nestedDeployment(ctx, st); err != nil {
		return nil, err
	} else if inner != "" {
		return nil, fmt.Errorf("server: etcd prefix %s holds another ron-kms deployment, at %s: give --etcd-prefix %s to join it, or a prefix of its own",
			prefix, inner, inner)
	}
	return nil, fmt.Errorf("server: etcd prefix %s holds keys but no ron-kms deployment marker (%s): it is another application's data; give --etcd-prefix a prefix of its own",
		prefix, deployment.MarkerKey)
}

// enclosingDeployment returns the prefix of a deployment whose prefix
// contains this node's (a proper prefix of it ending in "/"), or "".
func (s *Server) enclosingDeployment(ctx context.Context, st *etcdstore.Store) (string, error) {
	p := s.cfg.EtcdPrefix
	for i := 0; i < len(p)-1; i++ {
		if p[i] != '/' {
			continue
		}
		outer := p[:i+1]
		resp, err := s.rawGet(ctx, st, outer+deployment.MarkerKey, clientv3.WithKeysOnly())
		if err != nil {
			return "", err
		}
		if len(resp.Kvs) > 0 {
			return outer, nil
		}
	}
	return "", nil
}

// nestedDeployment returns the prefix of a deployment inside this node's
// prefix, among its first nestedScanLimit keys, or "".
func (s *Server) nestedDeployment(ctx context.Context, st *etcdstore.Store) (string, error) {
	p := s.cfg.EtcdPrefix
	resp, err := s.rawGet(ctx, st, p, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithLimit(nestedScanLimit))
	if err != nil {
		return "", err
	}
	for _, kv := range resp.Kvs {
		if k := string(kv.Key); strings.HasSuffix(k, "/"+deployment.MarkerKey) {
			return strings.TrimSuffix(k, deployment.MarkerKey), nil
		}
	}
	return "", nil
}

// rawGet reads etcd outside the store's prefix (what readDeployment must
// see around it), bounded like a store call.
func (s *Server) rawGet(ctx context.Context, st *etcdstore.Store, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	cctx, cancel := context.WithTimeout(ctx, etcdstore.DefaultRequestTimeout)
	defer cancel()
	resp, err := st.Client().Get(clientv3.WithRequireLeader(cctx), key, opts...)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, s.unavailable(err)
	}
	return resp, nil
}

// wrongKEK is the refusal of a node whose KEK does not open the marker.
func (s *Server) wrongKEK(dep *existing, source string) error {
	fix := "give every node the cluster's --kek-file"
	switch {
	case dep.source() == KEKSourcePassphrase && source == KEKSourcePassphrase:
		fix = "give every node the cluster's passphrase in --kek-passphrase-env"
	case dep.source() == KEKSourcePassphrase:
		fix = "the cluster's key comes from a passphrase: give --kek-passphrase-env VAR with it, not --kek-file"
	case source == KEKSourcePassphrase:
		fix = "the cluster's key comes from a KEK file: give --kek-file F, not --kek-passphrase-env"
	}
	return fmt.Errorf("server: wrong key-encryption key for the deployment %s at etcd prefix %s (this node's key does not open its check value): %s",
		dep.marker.ID, s.cfg.EtcdPrefix, fix)
}

// unavailable is the refusal of a node whose etcd stopped answering during
// the start-up checks.
func (s *Server) unavailable(err error) error {
	return fmt.Errorf("server: etcd at %s: %s: check that a majority of the members is up", strings.Join(s.cfg.EtcdEndpoints, ","), oneLine(err))
}

// oneLine is err's message on one line: start-up refusals are one line on
// standard error.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
