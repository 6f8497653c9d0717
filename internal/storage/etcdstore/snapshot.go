package etcdstore

import (
	"context"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// Snapshot implements storage.Snapshotter: the first page is a linearizable
// read, which fixes the revision; every later page reads at that revision
// (etcd's MVCC keeps it until a compaction passes it, which then fails the
// snapshot with ErrUnavailable rather than mixing two states).
func (s *Store) Snapshot(ctx context.Context, fn func(storage.Item) error) (int64, error) {
	var rev int64
	from := s.prefix
	end := clientv3.GetPrefixRangeEnd(s.prefix)
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		kvs, r, more, err := s.page(ctx, from, end, rev)
		if err != nil {
			return 0, err
		}
		rev = r
		for _, kv := range kvs {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			if err := fn(storage.Item{Key: string(kv.Key[len(s.prefix):]), Value: value(kv.Value), Revision: kv.ModRevision}); err != nil {
				return 0, err
			}
		}
		if !more || len(kvs) == 0 {
			return rev, nil
		}
		from = string(kvs[len(kvs)-1].Key) + "\x00"
	}
}

// page reads one page of Snapshot at rev (0: the current revision).
func (s *Store) page(ctx context.Context, from, end string, rev int64) (kvs []*mvccpb.KeyValue, gotRev int64, more bool, err error) {
	opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(snapshotPage)}
	if rev != 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	var resp *clientv3.GetResponse
	err = s.call(ctx, "snapshot", func(ctx context.Context, _ int) (err error) {
		resp, err = s.cli.Get(ctx, from, opts...)
		return err
	})
	if err != nil {
		return nil, 0, false, err
	}
	if rev == 0 {
		rev = resp.Header.Revision
	}
	return resp.Kvs, rev, resp.More, nil
}
