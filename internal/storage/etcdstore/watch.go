package etcdstore

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// Watch implements storage.Store on an etcd watch that starts just after
// the revision current when Watch is called, so no Apply that completes
// after Watch returns is missed. Events are relayed into a channel of
// storage.WatchBuffer; a receiver that falls further behind, a compaction
// past the watch, a cancelled watch or any watch error closes the channel,
// after which the receiver re-reads and watches again, as the contract
// says.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan storage.Event, error) {
	rev, err := s.Revision(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, storage.ErrClosed
	}
	wctx, cancel := context.WithCancel(s.base)
	stop := context.AfterFunc(ctx, cancel)
	wch := s.cli.Watch(clientv3.WithRequireLeader(wctx), s.prefix+prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	out := make(chan storage.Event, storage.WatchBuffer)
	s.watches.Add(1)
	go func() {
		defer s.watches.Done()
		defer close(out)
		defer stop()
		defer cancel()
		for resp := range wch {
			if resp.Canceled || resp.CompactRevision != 0 || resp.Err() != nil {
				return
			}
			for _, ev := range resp.Events {
				// A delete's tombstone carries the delete's revision.
				e := storage.Event{Key: string(ev.Kv.Key[len(s.prefix):]), Revision: ev.Kv.ModRevision}
				if ev.Type == clientv3.EventTypeDelete {
					e.Deleted = true
				} else {
					e.Value = value(ev.Kv.Value)
				}
				select {
				case out <- e:
				default:
					return // the receiver fell WatchBuffer events behind
				}
			}
		}
	}()
	return out, nil
}
