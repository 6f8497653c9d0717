// Package etcdstore is storage.Store on an etcd v3 cluster
// (go.etcd.io/etcd/client/v3), the store that several ron-kms nodes share.
//
// Every key lives under a prefix (Options.Prefix), so one etcd cluster can
// hold several ron-kms deployments side by side: the store key k is the etcd
// key prefix+k, and nothing outside the prefix is read or written.
//
// Revisions are etcd's: Item.Revision is the key's mod_revision and Apply
// returns the revision of its transaction. etcd has one revision for the
// whole cluster, so writes outside the prefix move it too; the store
// revision therefore only grows (storage.Store's contract allows exactly
// that), and a cluster restored from an older snapshot has a lower one.
//
// Every call carries clientv3.WithRequireLeader, so a member that has lost
// quorum answers at once instead of holding the call until its deadline,
// and every call is bounded by Options.RequestTimeout. Within that budget a
// call is retried across what a leader election or a lost member looks like
// (no leader, a timed-out attempt, a dropped connection), so that one
// member going down is not an error. A call that still fails returns an
// error wrapping storage.ErrUnavailable; an Apply that fails so may still
// have been applied (etcd cannot say), so callers re-read before they
// retry, as the Store contract requires.
package etcdstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// DefaultRequestTimeout bounds one etcd call when Options.RequestTimeout is
// 0. It is short because ron-kms fails writes closed when the store has no
// quorum (503 StoreUnavailable within 2 s), and a healthy loopback or LAN
// cluster answers in milliseconds.
const DefaultRequestTimeout = 1500 * time.Millisecond

// snapshotPage is how many items one read of Snapshot fetches.
const snapshotPage = 512

// Options configure Open.
type Options struct {
	// Endpoints are the client URLs of the cluster's members; required.
	Endpoints []string
	// Prefix is prepended to every key; it must be non-empty so that the
	// store never reads or writes keys of another deployment. It should end
	// in "/", e.g. "ron-kms/prod/".
	Prefix string
	// TLS, when set, configures the client's TLS (server CA, client
	// certificate); see TLSConfig.
	TLS *TLSFiles
	// DialTimeout bounds connecting to the first endpoint; 5 s when 0.
	DialTimeout time.Duration
	// RequestTimeout bounds every call; DefaultRequestTimeout when 0.
	RequestTimeout time.Duration
	// Logger receives the client's own log; none when nil.
	Logger *zap.Logger
}

// Store is a storage.Store on etcd. It is safe for concurrent use.
type Store struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration

	mu      sync.RWMutex // held for reading by every call, for writing by Close
	closed  bool
	cancel  context.CancelFunc // ends every watch
	base    context.Context    // parent of every watch
	watches sync.WaitGroup
}

var (
	_ storage.Store       = (*Store)(nil)
	_ storage.Snapshotter = (*Store)(nil)
)

// Open connects to the cluster. It does not wait for a member to answer:
// an unreachable cluster shows as ErrUnavailable on the first call (use
// Ping to check at start).
func Open(opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, fmt.Errorf("etcdstore: no endpoints")
	}
	if opts.Prefix == "" {
		return nil, fmt.Errorf("etcdstore: an empty prefix would share the whole cluster; give one such as ron-kms/")
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	cfg := clientv3.Config{
		Endpoints:            opts.Endpoints,
		DialTimeout:          opts.DialTimeout,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               opts.Logger,
		// Refuse a cluster older than the client (Debian's etcd 3.4, say).
		RejectOldCluster: true,
	}
	if opts.TLS != nil {
		tc, err := opts.TLS.Config()
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcdstore: %w: %v", storage.ErrUnavailable, err)
	}
	base, cancel := context.WithCancel(context.Background())
	return &Store{cli: cli, prefix: opts.Prefix, timeout: opts.RequestTimeout, base: base, cancel: cancel}, nil
}

// Client is the underlying etcd client, for callers that need more than the
// Store interface (status, member lists). It must not be closed.
func (s *Store) Client() *clientv3.Client { return s.cli }

// Prefix is the prefix of every key of this store.
func (s *Store) Prefix() string { return s.prefix }

// Ping checks that the cluster answers a linearizable read within the
// request timeout.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.Revision(ctx)
	return err
}

// call runs one Store call: it checks ctx and Close, then runs op under
// per-attempt deadlines until op succeeds, fails for a reason that a retry
// cannot change, or the call's budget (Options.RequestTimeout) is spent.
// An attempt gets a third of the budget, so that a request held by a member
// whose leader has just died (the member learns it only after an election
// timeout) is abandoned in time for another attempt to reach the new leader.
// op is told the attempt number, from 0. The error returned is the caller's
// own context error as it is, or one wrapping storage.ErrUnavailable.
func (s *Store) call(ctx context.Context, what string, op func(ctx context.Context, attempt int) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	budget, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	backoff := 10 * time.Millisecond
	for attempt := 0; ; attempt++ {
		actx, acancel := context.WithTimeout(budget, s.timeout/3)
		err := op(clientv3.WithRequireLeader(actx), attempt)
		acancel()
		if err == nil {
			return nil
		}
		if !transient(err) || budget.Err() != nil {
			return fail(ctx, what, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-budget.Done():
			t.Stop()
			return fail(ctx, what, err)
		case <-t.C:
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// transient reports whether err may go away on another attempt: a deadline,
// no leader, a leader change, a lost connection — etcd's Unavailable class.
// A refused request (too large, too many operations, no permission, no
// space) is not.
func transient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	c := code(err)
	return c == codes.Unavailable || c == codes.DeadlineExceeded
}

// code is the gRPC code of an etcd error (codes.Unknown when it has none).
func code(err error) codes.Code {
	var coded interface{ Code() codes.Code }
	if errors.As(err, &coded) {
		return coded.Code()
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	return codes.Unknown
}

// fail turns an etcd error into the Store's errors: the caller's own
// context error as it is, anything else wrapping ErrUnavailable.
func fail(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if errors.Is(err, storage.ErrClosed) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, rpctypes.ErrTimeout) {
		return fmt.Errorf("etcdstore: %s: %w: the cluster did not answer in time (no quorum?)", what, storage.ErrUnavailable)
	}
	if errors.Is(err, rpctypes.ErrNoLeader) || errors.Is(err, rpctypes.ErrGRPCNoLeader) {
		return fmt.Errorf("etcdstore: %s: %w: the cluster has no leader (no quorum)", what, storage.ErrUnavailable)
	}
	// A request etcd refuses as such (too large, too many operations) is
	// not an outage: retrying it, or failing other operations closed,
	// would change nothing.
	if code(err) == codes.InvalidArgument {
		return fmt.Errorf("etcdstore: %s: %w: etcd refused the request: %v", what, storage.ErrInvalid, err)
	}
	return fmt.Errorf("etcdstore: %s: %w: %v", what, storage.ErrUnavailable, err)
}

// Get implements storage.Store with a linearizable read.
func (s *Store) Get(ctx context.Context, key string) (storage.Item, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.Item{}, err
	}
	var resp *clientv3.GetResponse
	err := s.call(ctx, "get", func(ctx context.Context, _ int) (err error) {
		resp, err = s.cli.Get(ctx, s.prefix+key)
		return err
	})
	if err != nil {
		return storage.Item{}, err
	}
	if len(resp.Kvs) == 0 {
		return storage.Item{}, fmt.Errorf("%w: key %q", storage.ErrNotFound, key)
	}
	kv := resp.Kvs[0]
	return storage.Item{Key: key, Value: value(kv.Value), Revision: kv.ModRevision}, nil
}

// List implements storage.Store with one linearizable range read.
func (s *Store) List(ctx context.Context, prefix, startAfter string, limit int) ([]storage.Item, error) {
	from := s.prefix + prefix
	if startAfter != "" && startAfter+"\x00" > prefix {
		from = s.prefix + startAfter + "\x00" // the least key after startAfter
	}
	rangeEnd := clientv3.GetPrefixRangeEnd(s.prefix + prefix)
	if from >= rangeEnd {
		// startAfter is past every key under prefix; still check ctx and
		// Close as every call does.
		return nil, s.call(ctx, "list", func(context.Context, int) error { return nil })
	}
	opts := []clientv3.OpOption{clientv3.WithRange(rangeEnd)}
	if limit > 0 {
		opts = append(opts, clientv3.WithLimit(int64(limit)))
	}
	var resp *clientv3.GetResponse
	err := s.call(ctx, "list", func(ctx context.Context, _ int) (err error) {
		resp, err = s.cli.Get(ctx, from, opts...)
		return err
	})
	if err != nil {
		return nil, err
	}
	var items []storage.Item
	for _, kv := range resp.Kvs {
		items = append(items, storage.Item{Key: string(kv.Key[len(s.prefix):]), Value: value(kv.Value), Revision: kv.ModRevision})
	}
	return items, nil
}

// Apply implements storage.Store as one etcd transaction: a compare per
// Expect, then the puts and deletes. When a compare fails, the same
// transaction reads every key it would have written (its Else branch), as
// of that one revision, so that the conflict names the first key whose
// Expect did not hold.
//
// An attempt that timed out may still be applied later, so a retry within
// the call's budget whose compare fails first asks whether the failure is
// the earlier attempt's own success: every put key holding exactly the
// value written, all at one mod revision, and every deleted key absent. It
// then returns that revision instead of a conflict. When the keys hold
// something else, the earlier attempt may have been applied and written
// over since, so the answer is ErrUnavailable (outcome unknown), never a
// conflict, which would say that nothing was written. (Another writer
// leaving exactly the same values at one revision is taken for our own
// success: ron-kms's key records carry fresh key material and ids; the
// encryption counter, whose values can repeat, may then be undercounted by
// one block.)
func (s *Store) Apply(ctx context.Context, muts ...storage.Mutation) (int64, error) {
	if err := storage.CheckMutations(muts); err != nil {
		return 0, err
	}
	if len(muts) > storage.MaxApplyMutations {
		return 0, fmt.Errorf("%w: %d mutations in one Apply, etcd takes at most %d", storage.ErrInvalid, len(muts), storage.MaxApplyMutations)
	}
	var cmps []clientv3.Cmp
	var ops, reads []clientv3.Op
	for _, m := range muts {
		k := s.prefix + m.Key
		if m.Expect != storage.AnyRevision {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", m.Expect))
		}
		reads = append(reads, clientv3.OpGet(k))
		if m.Value == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(m.Value)))
		}
	}
	var resp *clientv3.TxnResponse
	// ambiguous: an earlier attempt failed in a way that may have left it
	// applied (anything but a refusal for want of a leader, which etcd
	// gives before proposing).
	var ambiguous bool
	err := s.call(ctx, "apply", func(ctx context.Context, attempt int) (err error) {
		resp, err = s.cli.Txn(ctx).If(cmps...).Then(ops...).Else(reads...).Commit()
		if err != nil && !errors.Is(err, rpctypes.ErrNoLeader) && !errors.Is(err, rpctypes.ErrGRPCNoLeader) {
			ambiguous = true
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	current := make([]*mvccpb.KeyValue, len(muts))
	for i := range muts {
		if kvs := resp.Responses[i].GetResponseRange().GetKvs(); len(kvs) > 0 {
			current[i] = kvs[0]
		}
	}
	if ambiguous {
		if rev, ok := applied(muts, current, resp.Header.Revision); ok {
			return rev, nil
		}
		// The earlier attempt may have been applied and then written over:
		// a conflict would tell the caller nothing was written, which is
		// not known.
		return 0, fmt.Errorf("etcdstore: apply: %w: an attempt timed out and the keys have changed since, so whether it was applied is unknown; re-read", storage.ErrUnavailable)
	}
	for i, m := range muts {
		if m.Expect == storage.AnyRevision {
			continue
		}
		var rev int64
		if current[i] != nil {
			rev = current[i].ModRevision
		}
		if err := storage.CheckExpect(m.Key, m.Expect, rev); err != nil {
			return 0, err
		}
	}
	// Unreachable unless etcd disagrees with its own compare.
	return 0, fmt.Errorf("etcdstore: apply: %w: a compare failed but no key differs", storage.ErrUnavailable)
}

// applied reports whether current (the keys of muts as read at revision
// now) is what muts leave behind when applied as one transaction, and at
// which revision: every put key holds its value, all with one mod revision,
// and every deleted key is absent (for a delete-only Apply the revision is
// now, a revision at or after the deletes).
func applied(muts []storage.Mutation, current []*mvccpb.KeyValue, now int64) (int64, bool) {
	var rev int64
	for i, m := range muts {
		kv := current[i]
		if m.Value == nil {
			if kv != nil {
				return 0, false
			}
			continue
		}
		if kv == nil || !bytes.Equal(kv.Value, m.Value) || (rev != 0 && kv.ModRevision != rev) {
			return 0, false
		}
		rev = kv.ModRevision
	}
	if rev == 0 {
		rev = now
	}
	return rev, true
}

// Revision implements storage.Store: the cluster revision, from a
// linearizable read.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var resp *clientv3.GetResponse
	err := s.call(ctx, "revision", func(ctx context.Context, _ int) (err error) {
		resp, err = s.cli.Get(ctx, s.prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		return err
	})
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// Close implements storage.Store: it waits for calls in flight, ends every
// watch and closes the client.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cancel()
	s.mu.Unlock()
	s.watches.Wait()
	return s.cli.Close()
}

// value returns v, never nil: etcd gives an empty value as nil.
func value(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
