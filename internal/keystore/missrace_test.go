package keystore

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

// hookStore runs hook once, after the first Get of key has read the store
// and before it returns.
type hookStore struct {
	storage.Store
	mu   sync.Mutex
	key  string
	hook func()
}

func (h *hookStore) Get(ctx context.Context, key string) (storage.Item, error) {
	it, err := h.Store.Get(ctx, key)
	h.mu.Lock()
	fn := h.hook
	if key == h.key {
		h.hook = nil
	} else {
		fn = nil
	}
	h.mu.Unlock()
	if fn != nil {
		fn()
	}
	return it, err
}

// TestMissRaceKeepsNewerVersion: node B loads a key on a cache miss; node A
// rotates it after B's read and before B installs what it read, and B's
// feed delivers the rotation in that gap. B must end up with the rotated
// key, not keep the version it read (its feed would never bring the change
// again, and B would sign with the old version until the next change).
func TestMissRaceKeepsNewerVersion(t *testing.T) {
	ctx := context.Background()
	mem := memstore.New()
	kek := newKEK(t)
	a := openKS(t, mem, kek)
	hs := &hookStore{Store: mem}
	b := openKS(t, hs, kek)
	k := create(t, a, "")
	hs.mu.Lock()
	hs.key = keyPath(k.Name)
	hs.hook = func() {
		if _, err := a.Rotate(ctx, k.Name, ""); err != nil {
			t.Error(err)
		}
		// Wait until B's feed has delivered the rotation: the load in
		// flight makes it go into B's cache. (Without that, the wait ends
		// after 5 s and the assertions below fail.)
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if e := b.cache.get(k.Name); e != nil && e.key.Current == 2 {
				return
			}
		}
	}
	hs.mu.Unlock()
	for i := range 2 {
		s := sign(t, b, Ref{Name: k.Name}, []byte("m"))
		if s.Version != 2 {
			t.Fatalf("sign %d on B used %s after A rotated to v2 during B's load", i, s.KID)
		}
	}
}
