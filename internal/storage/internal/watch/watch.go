// Package watch fans storage events out to Watch subscribers. It is shared
// by the in-process stores (memstore, boltstore), which publish every
// committed Apply while holding their write lock, so that subscribers see
// events in revision order and a subscription taken under the same lock sees
// exactly the Applies that commit after it.
package watch

import (
	"bytes"
	"context"
	"strings"
	"sync"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// Hub is a set of subscribers. The zero value is ready to use. A Hub is safe
// for concurrent use, but ordering is the caller's duty: Publish must be
// called in revision order.
type Hub struct {
	mu     sync.Mutex
	subs   map[*sub]struct{}
	closed bool
}

type sub struct {
	prefix string
	ch     chan storage.Event
	gone   chan struct{} // closed when the hub drops the subscriber
}

// Subscribe registers a subscriber for keys under prefix and returns its
// channel, buffered to storage.WatchBuffer events. The channel is closed
// when ctx is done, when Close is called, or when the subscriber falls
// behind. Subscribe returns storage.ErrClosed after Close and ctx.Err() if
// ctx is already done.
func (h *Hub) Subscribe(ctx context.Context, prefix string) (<-chan storage.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &sub{
		prefix: prefix,
		ch:     make(chan storage.Event, storage.WatchBuffer),
		gone:   make(chan struct{}),
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, storage.ErrClosed
	}
	if h.subs == nil {
		h.subs = make(map[*sub]struct{})
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()

	go func() {
		select {
		case <-ctx.Done():
			h.mu.Lock()
			h.dropLocked(s)
			h.mu.Unlock()
		case <-s.gone:
		}
	}()
	return s.ch, nil
}

// Publish delivers evs, the events of one committed Apply, to every
// subscriber whose prefix matches. It never blocks: a subscriber without
// room for an event is dropped and its channel closed. Each subscriber
// receives its own copy of every value.
func (h *Hub) Publish(evs []storage.Event) {
	if len(evs) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs { // deleting during range is allowed
		h.deliverLocked(s, evs)
	}
}

// deliverLocked sends the matching events of evs to s, dropping s if its
// buffer is full. h.mu must be held.
func (h *Hub) deliverLocked(s *sub, evs []storage.Event) {
	for _, ev := range evs {
		if !strings.HasPrefix(ev.Key, s.prefix) {
			continue
		}
		ev.Value = bytes.Clone(ev.Value)
		select {
		case s.ch <- ev:
		default:
			h.dropLocked(s)
			return
		}
	}
}

// Len returns the number of live subscribers. It is meant for tests.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Close drops every subscriber, closing its channel, and makes later
// Subscribe calls fail with storage.ErrClosed. Close is idempotent.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		h.dropLocked(s)
	}
}

// dropLocked removes s and closes its channels. h.mu must be held, which
// makes it safe against a concurrent send in Publish.
func (h *Hub) dropLocked(s *sub) {
	if _, ok := h.subs[s]; !ok {
		return
	}
	delete(h.subs, s)
	close(s.ch)
	close(s.gone)
}
