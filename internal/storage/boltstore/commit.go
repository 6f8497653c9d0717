package boltstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"

	bolt "go.etcd.io/bbolt"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// Group commit. bbolt fsyncs every read-write transaction, so Applies that
// each had their own transaction would wait in line for one fsync each. The
// committer goroutine instead takes every Apply waiting (at most
// maxGroupSize) and runs them in one transaction, in arrival order:
//
//   - Each Apply checks its Expects against the state left by the ones
//     before it in the group, and on success gets the next revision, exactly
//     as if it had run alone after them. A failed Expect (or a record that
//     does not decode) fails that Apply alone: its checks come before its
//     writes, so it has written nothing.
//   - The transaction is committed and fsynced, then the events of the
//     group are published in revision order, then every Apply is answered.
//     No Apply returns before its group is durable; a conflict answered
//     this way holds against a durable state, too.
//   - If the commit fails, every Apply of the group fails with
//     ErrUnavailable (its outcome is unknown). If a write fails halfway
//     through one Apply (bbolt refused a put, which valid arguments never
//     make it do), the transaction is rolled back and each Apply of the
//     group is retried in a transaction of its own, so that one bad Apply
//     does not fail the others.
//
// bbolt's DB.Batch does much the same, but it waits up to MaxBatchDelay
// (10 ms) for company, which would add that much to every write when the
// store is not busy; it reruns the whole batch when one function fails (a
// conflict would cost every other caller a rerun); and its callers return
// in no particular order, so events would need reordering. Here an Apply
// that finds the committer idle is committed at once, a group forms only
// from Applies that came while the previous one was committing, a conflict
// is a result rather than a rollback, and one goroutine publishes in
// revision order.

// maxGroupSize bounds the Applies of one transaction. It keeps a group's
// events (at least one per Apply) well inside a watcher's
// storage.WatchBuffer, and a transaction's dirty pages small.
const maxGroupSize = 256

// fillPercent is how full bbolt fills the pages it splits in the data
// bucket (bbolt's default is 0.5). Most inserts come in key order: key names
// end in UUIDv7s and op_ids in counters, so the page that splits is the last
// of its range and its left half never receives another insert; half-full
// pages would double the file. The 10% left free absorbs inserts that
// arrive slightly out of order (UUIDv7s of one millisecond, concurrent
// creates) and records that grow in place (a rotation adds a version).
const fillPercent = 0.9

// apply is one Apply waiting for the committer.
type apply struct {
	muts []storage.Mutation
	done chan struct{} // closed when rev or err is set

	rev int64
	err error
	evs []storage.Event
}

// commitLoop is the committer goroutine: it commits groups of Applies until
// quit is closed.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	group := make([]*apply, 0, maxGroupSize)
	for {
		select {
		case a := <-s.applies:
			group = append(group, a)
		case <-s.quit:
			return
		}
		// Let the goroutines that are ready run first, so that those on
		// their way to Apply join this group. With one P (GOMAXPROCS=1,
		// a server pinned to one core) this matters: the fsync below keeps
		// the P until the runtime takes it back, so without the yield the
		// committer would commit groups of one or two, back to back, while
		// the callers wait for the P (measured: 550 creates/s with the
		// yield absent, 1,700 with it). With more Ps it costs a
		// microsecond.
		runtime.Gosched()
	fill:
		for len(group) < maxGroupSize {
			select {
			case a := <-s.applies:
				group = append(group, a)
			default:
				break fill
			}
		}
		s.commit(group)
		clear(group)
		group = group[:0]
	}
}

// errHalfWritten marks a transaction rolled back because a write failed in
// the middle of one Apply.
var errHalfWritten = errors.New("write failed")

// errNothingWritten rolls back a transaction in which every Apply failed its
// checks: there is nothing to commit or fsync.
var errNothingWritten = errors.New("nothing written")

// commit commits group in one transaction, publishes its events and answers
// every Apply of it.
func (s *Store) commit(group []*apply) {
	err := s.commitTx(group)
	if errors.Is(err, errHalfWritten) && len(group) > 1 {
		for _, a := range group {
			s.commit([]*apply{a})
		}
		return
	}
	for _, a := range group {
		if err != nil {
			a.rev, a.evs, a.err = 0, nil, unavailable(err)
		}
		a.evs = nil
		close(a.done)
	}
}

// commitTx runs group in one transaction and, once it is durable, publishes
// the events of the Applies that succeeded. On a nil return every Apply has
// its rev or its own err.
func (s *Store) commitTx(group []*apply) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		data, meta := tx.Bucket(dataBucket), tx.Bucket(metaBucket)
		data.FillPercent = fillPercent
		start, err := readRevision(meta)
		if err != nil {
			return err
		}
		rev := start
		for _, a := range group {
			// This function may run more than once (see commit): every
			// result is set afresh.
			a.rev, a.evs, a.err = 0, nil, nil
			if a.err = check(data, a.muts); a.err != nil {
				continue
			}
			rev++
			if a.evs, err = write(data, a.muts, rev); err != nil {
				return fmt.Errorf("%w: %w", errHalfWritten, err)
			}
			a.rev = rev
		}
		if rev == start {
			return errNothingWritten
		}
		return meta.Put(revisionKey, binary.BigEndian.AppendUint64(nil, uint64(rev)))
	})
	if errors.Is(err, errNothingWritten) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, a := range group {
		if a.err == nil {
			s.hub.Publish(a.evs)
		}
	}
	return nil
}

// check reports whether every Expect of muts holds in data: nil, an error
// wrapping storage.ErrConflict, or ErrUnavailable for a record that does not
// decode.
func check(data *bolt.Bucket, muts []storage.Mutation) error {
	for _, m := range muts {
		var have int64
		if v := data.Get([]byte(m.Key)); v != nil {
			var err error
			if have, _, err = decode(v); err != nil {
				return unavailable(fmt.Errorf("key %q: %w", m.Key, err))
			}
		}
		if err := storage.CheckExpect(m.Key, m.Expect, have); err != nil {
			return err
		}
	}
	return nil
}

// write applies muts, whose Expects hold, at revision rev and returns their
// events. Deleting an absent key writes nothing and has no event.
func write(data *bolt.Bucket, muts []storage.Mutation, rev int64) ([]storage.Event, error) {
	evs := make([]storage.Event, 0, len(muts))
	for _, m := range muts {
		k := []byte(m.Key)
		switch {
		case m.Value == nil && data.Get(k) == nil:
			continue
		case m.Value == nil:
			if err := data.Delete(k); err != nil {
				return nil, err
			}
			evs = append(evs, storage.Event{Key: m.Key, Revision: rev, Deleted: true})
		default:
			if err := data.Put(k, encode(rev, m.Value)); err != nil {
				return nil, err
			}
			// The hub copies Value for each subscriber.
			evs = append(evs, storage.Event{Key: m.Key, Value: m.Value, Revision: rev})
		}
	}
	return evs, nil
}
