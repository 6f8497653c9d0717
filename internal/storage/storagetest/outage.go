package storagetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// ErrOutage is what an Outage store fails with while it is down; it wraps
// storage.ErrUnavailable, as a store without quorum's errors do.
var ErrOutage = fmt.Errorf("%w: the test took the store away", storage.ErrUnavailable)

// Outage wraps a Store (usually a memstore) that a test can take away, for
// the unit tests of what depends on a store's health: while down, every
// call fails with ErrOutage and every open feed is closed, as a store that
// lost its quorum does. With the feeds held, only the feeds are closed and
// a new Watch waits until they are released (the store answers meanwhile).
// It counts Get, List, Apply and Revision calls (not Watch), except Gets of
// the key Uncounted, so that a test can show a path makes none.
//
// Set Store and Uncounted before use; the methods are safe for concurrent
// use.
type Outage struct {
	storage.Store
	// Uncounted is a key whose Gets Calls leaves out (a health probe's).
	Uncounted string

	down  atomic.Bool
	calls atomic.Int64

	mu       sync.Mutex
	feeds    []context.CancelFunc
	released chan struct{} // nil unless the feeds are held
}

// Calls returns the number of counted calls so far.
func (s *Outage) Calls() int64 { return s.calls.Load() }

// SetDown takes the store away (closing every feed) or brings it back.
func (s *Outage) SetDown(down bool) {
	s.down.Store(down)
	if down {
		s.closeFeeds()
	}
}

// HoldFeeds closes every feed and holds new ones back (held), or releases
// them.
func (s *Outage) HoldFeeds(held bool) {
	s.mu.Lock()
	switch {
	case held && s.released == nil:
		s.released = make(chan struct{})
	case !held && s.released != nil:
		close(s.released)
		s.released = nil
	}
	s.mu.Unlock()
	if held {
		s.closeFeeds()
	}
}

func (s *Outage) closeFeeds() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.feeds {
		c()
	}
	s.feeds = nil
}

func (s *Outage) fail() error {
	if s.down.Load() {
		return ErrOutage
	}
	return nil
}

// Get implements storage.Store.
func (s *Outage) Get(ctx context.Context, key string) (storage.Item, error) {
	if key != s.Uncounted {
		s.calls.Add(1)
	}
	if err := s.fail(); err != nil {
		return storage.Item{}, err
	}
	return s.Store.Get(ctx, key)
}

// List implements storage.Store.
func (s *Outage) List(ctx context.Context, prefix, after string, limit int) ([]storage.Item, error) {
	s.calls.Add(1)
	if err := s.fail(); err != nil {
		return nil, err
	}
	return s.Store.List(ctx, prefix, after, limit)
}

// Apply implements storage.Store.
func (s *Outage) Apply(ctx context.Context, muts ...storage.Mutation) (int64, error) {
	s.calls.Add(1)
	if err := s.fail(); err != nil {
		return 0, err
	}
	return s.Store.Apply(ctx, muts...)
}

// Revision implements storage.Store.
func (s *Outage) Revision(ctx context.Context) (int64, error) {
	s.calls.Add(1)
	if err := s.fail(); err != nil {
		return 0, err
	}
	return s.Store.Revision(ctx)
}

// Watch implements storage.Store; the feed is closed when the store is
// taken away or its feeds are held.
func (s *Outage) Watch(ctx context.Context, prefix string) (<-chan storage.Event, error) {
	if err := s.fail(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	released := s.released
	s.mu.Unlock()
	if released != nil {
		select {
		case <-released:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	ch, err := s.Store.Watch(wctx, prefix)
	if err != nil {
		cancel()
		return nil, err
	}
	s.mu.Lock()
	s.feeds = append(s.feeds, cancel)
	s.mu.Unlock()
	return ch, nil
}
