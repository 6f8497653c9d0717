package keystore

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/boltstore"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openClocked(t testing.TB, st storage.Store, kek []byte, clock *fakeClock) *Keystore {
	t.Helper()
	s, err := seal.NewAESGCM(kek)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := Open(context.Background(), Config{Store: st, Sealer: s, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func u32(v uint32) *uint32 { return &v }

func sealedExists(t *testing.T, st storage.Store, name string, n uint32) bool {
	t.Helper()
	_, ok := storedSealed(t, st, name, n)
	return ok
}

func schedKeys(t *testing.T, st storage.Store) []string {
	t.Helper()
	items, err := st.List(context.Background(), schedPrefix, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		out = append(out, it.Key)
	}
	return out
}

// TestSchedulerAcrossRestart: with a fake clock, a key rotates
// automatically auto_rotate_days after its current version was made, and a
// destroyed version is erased after the waiting period, including when the
// waiting period ends while no keystore is running: the first tick of the
// next one catches up.
func TestSchedulerAcrossRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kms.db")
	kek := newKEK(t)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	st, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ks := openClocked(t, st, kek, clock)
	sched := NewScheduler(ks, time.Hour, nil)

	k := create(t, ks, "")
	msg := []byte("signed by v1")
	s1 := sign(t, ks, Ref{Name: k.Name}, msg)
	if _, err := ks.Configure(ctx, k.Name, KeyConfig{AutoRotateDays: u32(30), DestroyWaitingDays: u32(3)}); err != nil {
		t.Fatal(err)
	}
	if got := schedKeys(t, st); len(got) != 1 || !strings.Contains(got[0], "/rotate/"+k.Name) {
		t.Fatalf("due-index after configure: %v", got)
	}

	// One second before the due time: nothing.
	clock.Advance(30*day - time.Second)
	if rep, err := sched.Tick(ctx); err != nil || len(rep.Rotated)+len(rep.Destroyed)+len(rep.Errors) != 0 {
		t.Fatalf("early tick: %+v %v", rep, err)
	}
	clock.Advance(time.Second)
	rep, err := sched.Tick(ctx)
	if err != nil || len(rep.Rotated) != 1 || rep.Rotated[0] != k.KID(2) || len(rep.Errors) != 0 {
		t.Fatalf("due tick: %+v %v", rep, err)
	}
	if got, _ := ks.Get(ctx, k.Name); got.Current != 2 || !got.Versions[1].CreatedAt.Equal(clock.Now()) {
		t.Fatalf("after auto-rotation: %+v", got)
	}
	if s := sign(t, ks, Ref{Name: k.Name}, msg); s.Version != 2 {
		t.Fatalf("signed with v%d after auto-rotation", s.Version)
	}
	// A second tick at the same time does nothing more.
	if rep, _ := sched.Tick(ctx); len(rep.Rotated) != 0 {
		t.Fatalf("rotated twice: %+v", rep)
	}

	// Destroy v1: waiting period of 3 days.
	got, err := ks.Transition(ctx, k.Name, 1, ActionDestroy)
	if err != nil {
		t.Fatal(err)
	}
	v1 := got.Versions[0]
	if v1.State != DestroyScheduled || !v1.DestroyAt.Equal(clock.Now().Add(3*day)) {
		t.Fatalf("v1 after destroy: %+v", v1)
	}
	if _, err := ks.Verify(ctx, Ref{Name: k.Name, Version: 1}, msg, s1.Parts, Options{}); !errors.Is(err, ErrVersionUnusable) {
		t.Fatalf("verify with a destroy_scheduled version: %v", err)
	}

	// Stop everything; time passes while nothing runs.
	sched.Stop()
	ks.Close()
	st.Close()
	clock.Advance(3*day + time.Minute)

	st, err = boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ks = openClocked(t, st, kek, clock)
	defer ks.Close()
	if !sealedExists(t, st, k.Name, 1) {
		t.Fatal("v1's sealed record is gone before any tick")
	}
	ticked := make(chan TickReport, 4)
	sched = NewScheduler(ks, time.Hour, func(r TickReport, err error) {
		if err != nil {
			t.Error(err)
		}
		ticked <- r
	})
	sched.Start() // ticks once at start
	select {
	case rep = <-ticked:
	case <-time.After(10 * time.Second):
		t.Fatal("no tick at start")
	}
	sched.Stop()
	if len(rep.Destroyed) != 1 || rep.Destroyed[0] != k.KID(1) || len(rep.Rotated) != 0 || len(rep.Errors) != 0 {
		t.Fatalf("catch-up tick: %+v", rep)
	}
	got, _ = ks.Get(ctx, k.Name)
	if v := got.Versions[0]; v.State != Destroyed || !v.DestroyAt.IsZero() || len(v.PublicKey) == 0 {
		t.Fatalf("v1 after the waiting period: %+v", v)
	}
	if sealedExists(t, st, k.Name, 1) {
		t.Fatal("v1's sealed record survived its destruction")
	}
	if !sealedExists(t, st, k.Name, 2) {
		t.Fatal("v2's sealed record is gone")
	}
	if _, err := ks.Transition(ctx, k.Name, 1, ActionEnable); !errors.Is(err, ErrIllegalTransition) {
		t.Fatalf("enable a destroyed version: %v", err)
	}
	if _, err := ks.Verify(ctx, Ref{Name: k.Name, Version: 1}, msg, s1.Parts, Options{}); !errors.Is(err, ErrVersionUnusable) {
		t.Fatalf("verify with a destroyed version: %v", err)
	}
	// The index holds only the next rotation, 30 days after v2.
	if got := schedKeys(t, st); len(got) != 1 || !strings.Contains(got[0], "/rotate/") {
		t.Fatalf("due-index after the destruction: %v", got)
	}

	// The rotation schedule survived the restart too.
	clock.Advance(27 * day)
	rep, _ = sched.Tick(ctx)
	if len(rep.Rotated) != 1 || rep.Rotated[0] != k.KID(3) {
		t.Fatalf("second auto-rotation: %+v", rep)
	}
}

// TestSchedulerManualRotationAndCancel: an automatic rotation counts from
// the current version, so a manual rotation postpones it; turning it off or
// cancelling a destruction removes the entry.
func TestSchedulerManualRotationAndCancel(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	clock := &fakeClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	ks := openClocked(t, st, newKEK(t), clock)
	defer ks.Close()
	sched := NewScheduler(ks, time.Hour, nil)
	k := create(t, ks, "")
	if _, err := ks.Configure(ctx, k.Name, KeyConfig{AutoRotateDays: u32(10)}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * day)
	if _, err := ks.Rotate(ctx, k.Name, ""); err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * day) // the original due time: early now, the entry moves
	if rep, _ := sched.Tick(ctx); len(rep.Rotated) != 0 || len(rep.Errors) != 0 {
		t.Fatalf("rotated on the stale schedule: %+v", rep)
	}
	if got := schedKeys(t, st); len(got) != 1 || !strings.Contains(got[0], "/rotate/") {
		t.Fatalf("due-index: %v", got)
	}
	clock.Advance(5 * day)
	if rep, _ := sched.Tick(ctx); len(rep.Rotated) != 1 || rep.Rotated[0] != k.KID(3) {
		t.Fatalf("rotation 10 days after the manual one: %+v", rep)
	}

	// Off: the entry goes in the same write.
	if _, err := ks.Configure(ctx, k.Name, KeyConfig{AutoRotateDays: u32(0)}); err != nil {
		t.Fatal(err)
	}
	if got := schedKeys(t, st); len(got) != 0 {
		t.Fatalf("due-index after turning rotation off: %v", got)
	}

	// Destroy, then cancel: no entry, the version is disabled, and nothing
	// is erased after the waiting period.
	if _, err := ks.Transition(ctx, k.Name, 1, ActionDestroy); err != nil {
		t.Fatal(err)
	}
	if got := schedKeys(t, st); len(got) != 1 || !strings.Contains(got[0], "/destroy/"+k.Name+"/") {
		t.Fatalf("due-index after destroy: %v", got)
	}
	got, err := ks.Transition(ctx, k.Name, 1, ActionCancelDestroy)
	if err != nil || got.Versions[0].State != Disabled || !got.Versions[0].DestroyAt.IsZero() {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	if got := schedKeys(t, st); len(got) != 0 {
		t.Fatalf("due-index after cancel: %v", got)
	}
	clock.Advance(30 * day)
	if rep, _ := sched.Tick(ctx); len(rep.Destroyed) != 0 || !sealedExists(t, st, k.Name, 1) {
		t.Fatalf("a cancelled destruction happened: %+v", rep)
	}
}

// countingStore records the prefixes a tick lists.
type countingStore struct {
	storage.Store
	mu       sync.Mutex
	prefixes []string
	gets     int
}

func (c *countingStore) List(ctx context.Context, prefix, after string, limit int) ([]storage.Item, error) {
	c.mu.Lock()
	c.prefixes = append(c.prefixes, prefix)
	c.mu.Unlock()
	return c.Store.List(ctx, prefix, after, limit)
}

func (c *countingStore) Get(ctx context.Context, key string) (storage.Item, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Store.Get(ctx, key)
}

// TestSchedulerReadsOnlyTheDueIndex: a tick over many keys of which one is
// due reads the due-index and that one key, never the key list.
func TestSchedulerReadsOnlyTheDueIndex(t *testing.T) {
	ctx := context.Background()
	cs := &countingStore{Store: memstore.New()}
	clock := &fakeClock{t: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	ks := openClocked(t, cs, newKEK(t), clock)
	defer ks.Close()
	var due *Key
	for i := 0; i < 200; i++ {
		k := create(t, ks, "")
		days := uint32(365)
		if i == 100 {
			days, due = 1, k
		}
		if _, err := ks.Configure(ctx, k.Name, KeyConfig{AutoRotateDays: &days}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(2 * day)
	cs.mu.Lock()
	cs.prefixes, cs.gets = nil, 0
	cs.mu.Unlock()
	rep, err := ks.RunDue(ctx)
	if err != nil || len(rep.Rotated) != 1 || rep.Rotated[0] != due.KID(2) {
		t.Fatalf("tick: %+v %v", rep, err)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, p := range cs.prefixes {
		if p != schedPrefix {
			t.Errorf("a tick listed %q", p)
		}
	}
	if len(cs.prefixes) != 1 || cs.gets > 2 {
		t.Errorf("a tick with one due entry made %d lists and %d gets", len(cs.prefixes), cs.gets)
	}
}

// TestSchedulerTwoNodes: two keystores on one store tick at the same time;
// every due action happens once.
func TestSchedulerTwoNodes(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	kek := newKEK(t)
	clock := &fakeClock{t: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}
	a := openClocked(t, st, kek, clock)
	defer a.Close()
	b := openClocked(t, st, kek, clock)
	defer b.Close()
	var names []string
	for i := 0; i < 20; i++ {
		k := create(t, a, "")
		names = append(names, k.Name)
		if _, err := a.Rotate(ctx, k.Name, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Configure(ctx, k.Name, KeyConfig{AutoRotateDays: u32(1), DestroyWaitingDays: u32(1)}); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Transition(ctx, k.Name, 1, ActionDestroy); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(day + time.Second)
	var wg sync.WaitGroup
	reps := make([]TickReport, 4)
	for i := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ks := a
			if i%2 == 1 {
				ks = b
			}
			var err error
			reps[i], err = ks.RunDue(ctx)
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	rotated, destroyed := 0, 0
	for _, r := range reps {
		rotated += len(r.Rotated)
		destroyed += len(r.Destroyed)
		for _, e := range r.Errors {
			t.Error(e)
		}
	}
	if rotated != 20 || destroyed != 20 {
		t.Fatalf("%d rotations and %d destructions for 20 keys", rotated, destroyed)
	}
	for _, n := range names {
		k, err := a.fetch(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(k.Versions) != 3 || k.Current != 3 || k.Versions[0].State != Destroyed {
			t.Errorf("%s: %d versions, current %d, v1 %s", n, len(k.Versions), k.Current, k.Versions[0].State)
		}
	}
}

// TestStateMachineTable checks the edge table directly: every (state,
// action) pair, for a version that is not current and for the current one.
func TestStateMachineTable(t *testing.T) {
	states := []State{Enabled, Disabled, DestroyScheduled, Destroyed}
	actions := []Action{ActionDisable, ActionEnable, ActionDestroy, ActionCancelDestroy, ActionErase}
	want := map[State]map[Action]State{
		Enabled:          {ActionDisable: Disabled, ActionDestroy: DestroyScheduled},
		Disabled:         {ActionEnable: Enabled, ActionDestroy: DestroyScheduled},
		DestroyScheduled: {ActionCancelDestroy: Disabled, ActionErase: Destroyed},
	}
	for _, s := range states {
		for _, a := range actions {
			k := &Key{Name: "t/p/ed25519/u", Current: 2, Versions: []Version{{Number: 1, State: s}, {Number: 2, State: Enabled}}}
			to, err := transition(k, 1, a)
			if w, ok := want[s][a]; ok {
				if err != nil || to != w {
					t.Errorf("%s --%s--> %q, %v; want %s", s, a, to, err, w)
				}
			} else if !errors.Is(err, ErrIllegalTransition) || !strings.Contains(err.Error(), string(s)) || !strings.Contains(err.Error(), string(a)) {
				t.Errorf("%s --%s--> %q, %v; want an illegal transition naming both", s, a, to, err)
			}
		}
	}
	for _, a := range actions {
		k := &Key{Name: "t/p/ed25519/u", Current: 1, Versions: []Version{{Number: 1, State: Enabled}}}
		if _, err := transition(k, 1, a); !errors.Is(err, ErrIllegalTransition) {
			t.Errorf("current --%s--> %v; want an illegal transition", a, err)
		}
	}
}
