// Package memstore is a storage.Store held in RAM only, for tests and for
// amnesia mode (SPEC §6). Nothing survives Close or the end of the process;
// "durable" in the Store contract means only "visible to every later call".
package memstore

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/internal/watch"
)

var (
	_ storage.Store       = (*Store)(nil)
	_ storage.Snapshotter = (*Store)(nil)
)

// Store is an in-memory storage.Store. It is safe for concurrent use. Reads
// run in parallel; Applies are serialized. Values are copied in and out, so
// the heap holds one private copy of each stored value until it is
// overwritten or deleted (and then until the garbage collector runs).
type Store struct {
	mu     sync.RWMutex
	closed bool
	rev    int64
	items  map[string]entry
	keys   []string // the keys of items, sorted
	hub    watch.Hub
}

type entry struct {
	value []byte
	rev   int64
}

// New returns an empty Store at revision 0.
func New() *Store {
	return &Store{items: make(map[string]entry)}
}

// Get implements storage.Store.
func (s *Store) Get(ctx context.Context, key string) (storage.Item, error) {
	if err := ctx.Err(); err != nil {
		return storage.Item{}, err
	}
	if err := storage.CheckKey(key); err != nil {
		return storage.Item{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return storage.Item{}, storage.ErrClosed
	}
	e, ok := s.items[key]
	if !ok {
		return storage.Item{}, storage.ErrNotFound
	}
	return storage.Item{Key: key, Value: bytes.Clone(e.value), Revision: e.rev}, nil
}

// List implements storage.Store.
func (s *Store) List(ctx context.Context, prefix, startAfter string, limit int) ([]storage.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, storage.ErrClosed
	}
	start := max(prefix, startAfter)
	i, found := slices.BinarySearch(s.keys, start)
	if found && start == startAfter {
		i++
	}
	var out []storage.Item
	for ; i < len(s.keys) && (limit <= 0 || len(out) < limit); i++ {
		k := s.keys[i]
		if !strings.HasPrefix(k, prefix) {
			break
		}
		e := s.items[k]
		out = append(out, storage.Item{Key: k, Value: bytes.Clone(e.value), Revision: e.rev})
	}
	return out, nil
}

// Apply implements storage.Store.
func (s *Store) Apply(ctx context.Context, muts ...storage.Mutation) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := storage.CheckMutations(muts); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, storage.ErrClosed
	}
	for _, m := range muts {
		if err := storage.CheckExpect(m.Key, m.Expect, s.items[m.Key].rev); err != nil {
			return 0, err
		}
	}
	s.rev++
	evs := make([]storage.Event, 0, len(muts))
	for _, m := range muts {
		i, found := slices.BinarySearch(s.keys, m.Key)
		if m.Value == nil {
			if !found {
				continue
			}
			delete(s.items, m.Key)
			s.keys = slices.Delete(s.keys, i, i+1)
			evs = append(evs, storage.Event{Key: m.Key, Revision: s.rev, Deleted: true})
			continue
		}
		if !found {
			s.keys = slices.Insert(s.keys, i, m.Key)
		}
		v := bytes.Clone(m.Value)
		s.items[m.Key] = entry{value: v, rev: s.rev}
		// The hub copies v for each subscriber; it is never handed out.
		evs = append(evs, storage.Event{Key: m.Key, Value: v, Revision: s.rev})
	}
	s.hub.Publish(evs)
	return s.rev, nil
}

// Revision implements storage.Store.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, storage.ErrClosed
	}
	return s.rev, nil
}

// Watch implements storage.Store.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan storage.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The write lock orders the subscription against Applies.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, storage.ErrClosed
	}
	return s.hub.Subscribe(ctx, prefix)
}

// Close implements storage.Store. It drops every item and closes every watch
// channel.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.items, s.keys = nil, nil
	s.hub.Close()
	return nil
}
