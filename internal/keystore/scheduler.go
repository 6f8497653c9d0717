package keystore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// The scheduler performs due destructions and due automatic rotations.
//
// It never scans the keys. The store holds a due-index,
//
//	sched/<due, unix seconds, 12 digits>/destroy/<key name>/<version, 10 digits>
//	sched/<due, unix seconds, 12 digits>/rotate/<key name>
//
// written in the same atomic Apply as the state or configuration change
// that makes something due, and removed in the same Apply as the action
// that does it (or the change that cancels it). A tick lists sched/ in key
// order, which is due order, and stops at the first entry that is not due
// yet, so its cost is the number of due entries, not the number of keys.
//
// The key record stays the truth; an entry is a reminder. A tick re-reads
// the key and acts only if the record says the action is due; an entry that
// fires early (a manual rotation since it was written) is moved to the
// right time, and one that no longer applies is deleted. Every action is a
// compare-and-swap on the key record and on the entry, so several nodes
// ticking at once do each action once; the losers see a conflict and skip.
// The index lives in the store, so the scheduler survives restarts and
// catches up on its first tick.

const schedPrefix = "sched/"

// Task kinds.
const (
	taskDestroy = "destroy"
	taskRotate  = "rotate"
)

// task is one entry of the due-index.
type task struct {
	due     time.Time
	kind    string
	name    string
	version uint32 // destroy only
}

func (t task) path() string {
	p := fmt.Sprintf("%s%012d/%s/%s", schedPrefix, max(t.due.Unix(), 0), t.kind, t.name)
	if t.kind == taskDestroy {
		p += fmt.Sprintf("/%010d", t.version)
	}
	return p
}

func destroyTask(name string, n uint32, at time.Time) task {
	return task{due: at, kind: taskDestroy, name: name, version: n}
}

// rotateTask is the automatic rotation entry of k, if it rotates
// automatically: due AutoRotateDays after its current version was made.
func rotateTask(k *Key) (task, bool) {
	if k.AutoRotateDays == 0 {
		return task{}, false
	}
	cur := k.Versions[k.Current-1]
	return task{due: cur.CreatedAt.Add(time.Duration(k.AutoRotateDays) * day), kind: taskRotate, name: k.Name}, true
}

func schedPut(t task) storage.Mutation {
	return storage.Mutation{Key: t.path(), Value: []byte{}, Expect: storage.AnyRevision}
}

func schedDelete(t task) storage.Mutation {
	return storage.Mutation{Key: t.path(), Expect: storage.AnyRevision}
}

// parseTask reads a due-index key: only the spelling path writes, since
// RunDue deletes an entry by its task's path, and an entry read any other
// way (a sign in the due time, an unpadded version) could never be
// removed. It returns the zero task and false for anything else.
func parseTask(key string) (task, bool) {
	rest, ok := strings.CutPrefix(key, schedPrefix)
	if !ok {
		return task{}, false
	}
	ts, rest, ok1 := strings.Cut(rest, "/")
	kind, name, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || len(ts) != 12 {
		return task{}, false
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return task{}, false
	}
	t := task{due: time.Unix(sec, 0).UTC(), kind: kind, name: name}
	switch kind {
	case taskRotate:
	case taskDestroy:
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return task{}, false
		}
		v, err := strconv.ParseUint(name[i+1:], 10, 32)
		if err != nil || v == 0 {
			return task{}, false
		}
		t.name, t.version = name[:i], uint32(v)
	default:
		return task{}, false
	}
	if strings.Count(t.name, "/") != 3 || t.path() != key {
		return task{}, false
	}
	return t, true
}

// TickReport is what one tick did.
type TickReport struct {
	Rotated   []string // kids of the new versions
	Destroyed []string // kids of the erased versions
	Errors    []error  // actions that failed; they are retried on the next tick
}

// tickPage bounds how many index entries are read at a time.
const tickPage = 256

// RunDue performs every action of the due-index that is due at the
// keystore's clock (Config.Now): erasures of versions whose waiting period
// has passed and automatic rotations. It reads only the due entries. An
// action that fails is reported and left for the next call; an action
// another node did first is skipped. While the store is unavailable the
// tick does nothing and returns ErrUnavailable.
func (ks *Keystore) RunDue(ctx context.Context) (TickReport, error) {
	if err := ks.requireHealthy("run the scheduler"); err != nil {
		return TickReport{}, err
	}
	var rep TickReport
	now := ks.now()
	after := ""
	for {
		items, err := ks.store.List(ctx, schedPrefix, after, tickPage)
		if err != nil {
			return rep, storeErr(err)
		}
		for _, it := range items {
			t, ok := parseTask(it.Key)
			if !ok {
				rep.Errors = append(rep.Errors, fmt.Errorf("keystore: scheduler: malformed index entry %q; left in place", it.Key))
				continue
			}
			if t.due.After(now) {
				return rep, nil
			}
			if err := ctx.Err(); err != nil {
				return rep, err
			}
			if err := ks.runTask(ctx, t, it.Revision, now, &rep); err != nil {
				rep.Errors = append(rep.Errors, err)
			}
		}
		if len(items) < tickPage {
			return rep, nil
		}
		after = items[len(items)-1].Key
	}
}

// runTask performs one due entry whose store revision is rev.
func (ks *Keystore) runTask(ctx context.Context, t task, rev int64, now time.Time, rep *TickReport) error {
	entry := storage.Mutation{Key: t.path(), Expect: rev} // delete, only if no one else did
	k, err := ks.fetchForWrite(ctx, t.name)
	if errors.Is(err, ErrNotFound) {
		_, err := ks.applyTask(ctx, nil, entry)
		return err
	}
	if err != nil {
		return err
	}
	switch t.kind {
	case taskDestroy:
		v, ok := k.Version(t.version)
		if !ok || v.State != DestroyScheduled {
			_, err := ks.applyTask(ctx, nil, entry) // cancelled, or done elsewhere
			return err
		}
		if v.DestroyAt.After(now) {
			if v.DestroyAt.Equal(t.due) {
				return nil
			}
			_, err := ks.applyTask(ctx, nil, entry, schedPut(destroyTask(k.Name, t.version, v.DestroyAt)))
			return err
		}
		to, err := transition(k, t.version, ActionErase)
		if err != nil {
			return err
		}
		nk := k.clone()
		nk.Versions[t.version-1].State = to
		nk.Versions[t.version-1].DestroyAt = time.Time{}
		// The sealed private seed goes in the same write as the state
		// change; the public key stays in the key record.
		nk.sealed[t.version-1] = nil
		muts, err := keyWrite(k, nk)
		if err != nil {
			return err
		}
		if done, err := ks.applyTask(ctx, nk, append(muts, entry)...); !done {
			return err
		}
		rep.Destroyed = append(rep.Destroyed, k.KID(t.version))
		return nil
	case taskRotate:
		due, ok := rotateTask(k)
		if !ok || k.VerifyOnly {
			_, err := ks.applyTask(ctx, nil, entry) // turned off
			return err
		}
		if due.due.After(now) {
			// Early: the key was rotated by hand since. Move the entry.
			if due.path() == t.path() {
				return nil
			}
			_, err := ks.applyTask(ctx, nil, entry, schedPut(due))
			return err
		}
		sc, err := schemeFor(k.Alg)
		if err != nil {
			return err
		}
		n := uint32(len(k.Versions)) + 1
		v, sealed, priv, err := ks.newVersion(sc, k.Name, n, now.UTC().Truncate(time.Second))
		if err != nil {
			return err
		}
		nk := k.clone()
		nk.Versions = append(nk.Versions, v)
		nk.sealed = append(nk.sealed, sealed)
		nk.Current = n
		next, _ := rotateTask(nk)
		muts, err := keyWrite(k, nk)
		if err != nil {
			priv.destroy()
			return err
		}
		muts = append(muts, entry)
		if next.path() != t.path() {
			muts = append(muts, schedPut(next))
		}
		if done, err := ks.applyTask(ctx, nk, muts...); !done {
			priv.destroy()
			return err
		}
		ks.cache.put(nk, priv)
		rep.Rotated = append(rep.Rotated, nk.KID(n))
		return nil
	}
	return fmt.Errorf("keystore: scheduler: unknown task kind %q", t.kind)
}

// applyTask writes one scheduler action. A conflict means another node (or
// an operator) changed the key or the entry first: the action is skipped
// (done is false, err nil), and the next tick sees what is left to do.
func (ks *Keystore) applyTask(ctx context.Context, nk *Key, muts ...storage.Mutation) (done bool, err error) {
	rev, err := ks.store.Apply(ctx, muts...)
	if errors.Is(err, storage.ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, storeErr(err)
	}
	if nk != nil {
		nk.revision = rev
		ks.dropPrivate(nk)
	}
	return true, nil
}

// dropPrivate installs nk in the cache and forgets the unsealed private
// keys of its destroyed versions, so that an erased key is not kept in
// memory either. Like eviction, it leaves
// the memory to the garbage collector: a request that started before the
// erasure may still hold it (best effort, see DECISIONS.md).
func (ks *Keystore) dropPrivate(nk *Key) {
	if old := ks.cache.get(nk.Name); old != nil {
		for i, v := range nk.Versions {
			if v.State == Destroyed && i < len(old.privs) {
				old.privs[i].Store(nil)
			}
		}
	}
	ks.cache.put(nk, nil)
}

// DefaultSchedulerInterval is how often a Scheduler ticks by default.
const DefaultSchedulerInterval = time.Minute

// Scheduler calls RunDue on a keystore once at Start (catching up on
// whatever fell due while no node was running) and then every Interval.
// Its clock is the keystore's (Config.Now).
type Scheduler struct {
	ks       *Keystore
	interval time.Duration
	report   func(TickReport, error)
	mu       sync.Mutex
	stop     context.CancelFunc
	done     chan struct{}
}

// NewScheduler returns a stopped scheduler. interval is
// DefaultSchedulerInterval when not positive; report, if not nil, is called
// after every tick (from the scheduler's goroutine).
func NewScheduler(ks *Keystore, interval time.Duration, report func(TickReport, error)) *Scheduler {
	if interval <= 0 {
		interval = DefaultSchedulerInterval
	}
	return &Scheduler{ks: ks, interval: interval, report: report}
}

// Tick runs one tick now.
func (s *Scheduler) Tick(ctx context.Context) (TickReport, error) {
	rep, err := s.ks.RunDue(ctx)
	if s.report != nil {
		s.report(rep, err)
	}
	return rep, err
}

// Start begins ticking in a goroutine: once immediately, then every
// interval. Starting a started scheduler does nothing.
func (s *Scheduler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			s.Tick(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends ticking and waits for a tick in progress to finish. It may be
// called on a scheduler that was never started, and more than once.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	stop, done := s.stop, s.done
	s.stop = nil
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}
