package keystore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

const (
	revokeID  = "00112233445566778899aabbccddeeff"
	revokeID2 = "ffeeddccbbaa99887766554433221100"
)

// waitRevoked polls ks until it reports id revoked, failing after a bound
// far above any expected delay (the feed is asynchronous).
func waitRevoked(t *testing.T, ks *Keystore, id string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ks.TokenRevoked(id); {
		if time.Now().After(deadline) {
			t.Fatalf("token %s is still not revoked on the other keystore", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRevokeToken(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	kek := newKEK(t)
	ks := openKS(t, st, kek)
	if ks.TokenRevoked(revokeID) {
		t.Fatal("revoked before RevokeToken")
	}
	already, err := ks.RevokeToken(ctx, revokeID)
	if err != nil || already {
		t.Fatalf("RevokeToken = %v, %v", already, err)
	}
	// At once on this keystore, without waiting for the feed.
	if !ks.TokenRevoked(revokeID) || ks.TokenRevoked(revokeID2) {
		t.Fatal("TokenRevoked wrong right after RevokeToken")
	}
	if already, err := ks.RevokeToken(ctx, revokeID); err != nil || !already {
		t.Fatalf("second RevokeToken = %v, %v; want already", already, err)
	}
	it, err := st.Get(ctx, revokedPrefix+revokeID)
	if err != nil || !strings.Contains(string(it.Value), "revoked_at") {
		t.Fatalf("stored revocation: %q, %v", it.Value, err)
	}
	// A keystore opened later reads the list from the store.
	if later := openKS(t, st, kek); !later.TokenRevoked(revokeID) || later.TokenRevoked(revokeID2) {
		t.Fatal("a keystore opened after the revocation does not see it")
	}
	for _, bad := range []string{"", "ABCD", "00/11", strings.Repeat("a", maxTokenIDLen+1), "0\x00"} {
		if _, err := ks.RevokeToken(ctx, bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("RevokeToken(%q) = %v, want ErrInvalidArgument", bad, err)
		}
	}
}

// TestRevocationFollowsOtherWriters: two keystores on one store (two nodes
// on one etcd); a revocation made through one is seen by the other from the
// change feed, without a restart.
func TestRevocationFollowsOtherWriters(t *testing.T) {
	st := memstore.New()
	kek := newKEK(t)
	a, b := openKS(t, st, kek), openKS(t, st, kek)
	if _, err := a.RevokeToken(context.Background(), revokeID); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, b, revokeID)
	if b.TokenRevoked(revokeID2) {
		t.Fatal("another id is revoked too")
	}
}

// brokenFeedStore is a store whose first watch of the revocations never
// delivers anything and is closed when the test says: a feed that broke.
type brokenFeedStore struct {
	storage.Store
	once   sync.Once
	broken chan storage.Event
}

func (s *brokenFeedStore) Watch(ctx context.Context, prefix string) (<-chan storage.Event, error) {
	first := false
	if prefix == revokedPrefix {
		s.once.Do(func() { first = true })
	}
	if first {
		return s.broken, nil
	}
	return s.Store.Watch(ctx, prefix)
}

// TestRevocationFeedResync: when the feed breaks, the keystore subscribes
// again and re-reads the list, so a revocation made while it was not
// listening is not lost.
func TestRevocationFeedResync(t *testing.T) {
	st := memstore.New()
	kek := newKEK(t)
	bs := &brokenFeedStore{Store: st, broken: make(chan storage.Event)}
	a := openKS(t, bs, kek)
	b := openKS(t, st, kek)
	if _, err := b.RevokeToken(context.Background(), revokeID); err != nil {
		t.Fatal(err)
	}
	if a.TokenRevoked(revokeID) {
		t.Fatal("the test's broken feed delivered an event")
	}
	close(bs.broken)
	waitRevoked(t, a, revokeID)
}
