package keystore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// Token revocations (SPEC §5) live in the store, one key per revoked token
// identifier: "tokens/revoked/<id>", whose value records when. They are
// never deleted by ron-kms, so the list only grows; a revoked identifier
// costs a few dozen bytes of memory on every node.
const revokedPrefix = "tokens/revoked/"

// maxTokenIDLen bounds the identifier in a revocation key. Minted tokens
// have 32-character identifiers (captoken.IDSize in hex).
const maxTokenIDLen = 128

// revocationListPage is how many revocations one List call reads.
const revocationListPage = 1000

// revocationRecord is the value stored under a revocation key.
type revocationRecord struct {
	RevokedAt time.Time `json:"revoked_at"`
}

// RevokeToken records in the store that the token with identifier id (lower
// -case hex, as captoken.Grant.ID gives it) is revoked, durably, and marks
// it revoked at once on this Keystore; every other Keystore on the same
// store learns it from the store's change feed. Revoking an identifier
// already revoked changes nothing and reports already. The identifier is
// not checked against any token: one that names no token is recorded too.
// ErrInvalidArgument means id is not 1 to 128 lower-case hex digits;
// ErrUnavailable, that the store failed (the outcome is then unknown, and
// calling again is safe), and while the store is unavailable that is the
// answer at once.
func (ks *Keystore) RevokeToken(ctx context.Context, id string) (already bool, err error) {
	if err := ks.requireHealthy("revoke a token"); err != nil {
		return false, err
	}
	if !validTokenID(id) {
		return false, fmt.Errorf("%w: a token id is 1 to %d lower-case hex digits", ErrInvalidArgument, maxTokenIDLen)
	}
	rec, err := json.Marshal(revocationRecord{RevokedAt: ks.now().UTC().Truncate(time.Second)})
	if err != nil {
		return false, fmt.Errorf("keystore: %v", err) // unreachable: a time always encodes
	}
	_, err = ks.store.Apply(ctx, storage.Mutation{Key: revokedPrefix + id, Value: rec, Expect: storage.MustNotExist})
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrConflict):
		already = true
	default:
		return false, storeErr(err)
	}
	ks.revoked.add(id)
	return already, nil
}

// TokenRevoked reports whether the token with identifier id is revoked, from
// memory: the list read from the store when the Keystore was opened, kept
// current by the store's change feed. It implements captoken.Revocations and
// is safe for concurrent use.
func (ks *Keystore) TokenRevoked(id string) bool { return ks.revoked.has(id) }

func validTokenID(id string) bool {
	if len(id) == 0 || len(id) > maxTokenIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// revocations is the in-memory copy of the store's revocation list.
type revocations struct {
	mu   sync.RWMutex
	ids  map[string]struct{}
	done chan struct{} // closed when follow returns
}

// openRevocations reads the revocation list of st and follows its changes
// until wctx ends. It subscribes before reading, so that no revocation made
// meanwhile is missed. ctx bounds the first read only.
func openRevocations(ctx, wctx context.Context, st storage.Store) (*revocations, error) {
	feed, err := st.Watch(wctx, revokedPrefix)
	if err != nil {
		return nil, storeErr(err)
	}
	r := &revocations{ids: make(map[string]struct{}), done: make(chan struct{})}
	if err := r.load(ctx, st); err != nil {
		return nil, err
	}
	go r.follow(wctx, st, feed)
	return r, nil
}

func (r *revocations) has(id string) bool {
	r.mu.RLock()
	_, ok := r.ids[id]
	r.mu.RUnlock()
	return ok
}

func (r *revocations) add(id string) {
	r.mu.Lock()
	r.ids[id] = struct{}{}
	r.mu.Unlock()
}

// load adds every revocation stored in st. Nothing is removed: a reload
// after the feed broke errs on the side of refusing.
func (r *revocations) load(ctx context.Context, st storage.Store) error {
	after := ""
	for {
		items, err := st.List(ctx, revokedPrefix, after, revocationListPage)
		if err != nil {
			return storeErr(err)
		}
		r.mu.Lock()
		for _, it := range items {
			r.ids[strings.TrimPrefix(it.Key, revokedPrefix)] = struct{}{}
		}
		r.mu.Unlock()
		if len(items) < revocationListPage {
			return nil
		}
		after = items[len(items)-1].Key
	}
}

// follow applies the change feed ch to r until ctx ends. If the feed breaks
// (the store closed it, or this node fell behind), it subscribes again and
// re-reads the whole list, retrying each second while the store is
// unreachable; meanwhile every identifier already known stays revoked.
func (r *revocations) follow(ctx context.Context, st storage.Store, ch <-chan storage.Event) {
	defer close(r.done)
	for {
		for ev := range ch {
			id := strings.TrimPrefix(ev.Key, revokedPrefix)
			r.mu.Lock()
			if ev.Deleted {
				delete(r.ids, id)
			} else {
				r.ids[id] = struct{}{}
			}
			r.mu.Unlock()
		}
		if ch = resubscribe(ctx, st); ch == nil {
			return
		}
		for r.load(ctx, st) != nil {
			if !pause(ctx, time.Second) {
				return
			}
		}
	}
}

// resubscribe watches the revocations of st again, retrying each second;
// nil means ctx ended first.
func resubscribe(ctx context.Context, st storage.Store) <-chan storage.Event {
	for ctx.Err() == nil {
		if ch, err := st.Watch(ctx, revokedPrefix); err == nil {
			return ch
		}
		if !pause(ctx, time.Second) {
			break
		}
	}
	return nil
}

// pause waits d, or until ctx ends (then it reports false).
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
