// Package boltstore is the default storage.Store: one embedded bbolt file
// (<data-dir>/kms.db, SPEC §6).
//
// Layout: bucket "data" maps each key to an 8-byte big-endian revision
// followed by the value; bucket "meta" holds the store revision under
// "revision" as 8 bytes big-endian. bbolt takes an exclusive file lock, so
// one file is served by one process at a time.
//
// Writes are group-committed (commit.go): one goroutine takes every Apply
// waiting, runs them one after the other in one bbolt read-write
// transaction, each with its own revision, and fsyncs once (NoSync stays
// false) before any of them returns. An Apply that arrives while the store
// is idle is committed at once, alone; under load, the Applies that arrive
// during one fsync share the next.
package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/ron-kms/ron-kms/internal/fsutil"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/internal/watch"
)

var (
	_ storage.Store       = (*Store)(nil)
	_ storage.Snapshotter = (*Store)(nil)
)

var (
	dataBucket  = []byte("data")
	metaBucket  = []byte("meta")
	revisionKey = []byte("revision")
)

// lockTimeout bounds how long Open waits for another process's file lock.
const lockTimeout = 1 * time.Second

// Store is a storage.Store backed by a bbolt file. It is safe for concurrent
// use. Reads run in parallel with each other and with the writer; Applies
// are committed by one goroutine, in batches.
type Store struct {
	db   *bolt.DB
	path string

	// applies carries each Apply to the committer goroutine (commitLoop),
	// which stops when quit is closed and then closes stopped.
	applies       chan *apply
	quit, stopped chan struct{}

	// wmu is held by the committer across a commit and the publication of
	// its events, and by Watch to subscribe, so that a subscriber sees the
	// events of exactly the commits that follow it, in revision order.
	wmu sync.Mutex
	// mu guards closed: operations hold it shared while they use db (an
	// Apply until it is answered), and Close holds it exclusively. Lock
	// order: mu, then wmu.
	mu     sync.RWMutex
	closed bool
	hub    watch.Hub
}

// Open opens the store in the bbolt file at path, creating it with mode 0600
// if it does not exist. The parent directory must exist. If another process
// holds the file, Open gives up after one second with an error naming the
// path and wrapping ErrLocked. Every error wraps storage.ErrUnavailable.
func Open(path string) (*Store, error) {
	_, statErr := os.Lstat(path)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, &lockedError{path: path}
	}
	if err != nil {
		return nil, unavailable(fmt.Errorf("open %s: %w", path, err))
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(dataBucket); err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return err
		}
		_, err = readRevision(meta) // refuse a corrupted file early
		return err
	})
	if err != nil {
		db.Close()
		return nil, unavailable(fmt.Errorf("open %s: %w", path, err))
	}
	// bbolt syncs the file it creates but not the directory entry that
	// names it: without this, a power cut could take a new store away with
	// every write acknowledged in it.
	if errors.Is(statErr, fs.ErrNotExist) {
		if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
			db.Close()
			return nil, unavailable(fmt.Errorf("open %s: %w", path, err))
		}
	}
	s := &Store{
		db: db, path: path,
		applies: make(chan *apply),
		quit:    make(chan struct{}), stopped: make(chan struct{}),
	}
	go s.commitLoop()
	return s, nil
}

// Path returns the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Get implements storage.Store. A stored record that does not decode is
// reported as storage.ErrUnavailable.
func (s *Store) Get(ctx context.Context, key string) (storage.Item, error) {
	if err := storage.CheckKey(key); err != nil {
		return storage.Item{}, err
	}
	var it storage.Item
	err := s.view(ctx, func(tx *bolt.Tx) error {
		v := tx.Bucket(dataBucket).Get([]byte(key))
		if v == nil {
			return storage.ErrNotFound
		}
		var err error
		it, err = decodeItem(key, v)
		return err
	})
	return it, err
}

// List implements storage.Store.
func (s *Store) List(ctx context.Context, prefix, startAfter string, limit int) ([]storage.Item, error) {
	var out []storage.Item
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(dataBucket).Cursor()
		p := []byte(prefix)
		start := []byte(max(prefix, startAfter))
		k, v := c.Seek(start)
		if k != nil && string(k) == startAfter {
			k, v = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, p) && (limit <= 0 || len(out) < limit); k, v = c.Next() {
			it, err := decodeItem(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, it)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Apply implements storage.Store. It returns after the bbolt transaction
// holding the mutations is committed and fsynced, and their events are
// published. Once handed to the committer, an Apply is not interrupted by
// ctx.
func (s *Store) Apply(ctx context.Context, muts ...storage.Mutation) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := storage.CheckMutations(muts); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, storage.ErrClosed
	}
	a := &apply{muts: muts, done: make(chan struct{})}
	s.applies <- a // the committer runs until Close, which waits for mu
	<-a.done
	return a.rev, a.err
}

// Revision implements storage.Store.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		rev, err = readRevision(tx.Bucket(metaBucket))
		return err
	})
	return rev, err
}

// Watch implements storage.Store. Events are published after the
// transaction that made them is durable.
func (s *Store) Watch(ctx context.Context, prefix string) (<-chan storage.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, storage.ErrClosed
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.hub.Subscribe(ctx, prefix)
}

// Close implements storage.Store. It waits for operations in flight, closes
// every watch channel and releases the file and its lock.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// No Apply is in flight (each holds mu until answered): the committer
	// is idle.
	close(s.quit)
	<-s.stopped
	s.hub.Close()
	if err := s.db.Close(); err != nil {
		return unavailable(err)
	}
	return nil
}

// view runs fn in a read-only transaction, after checking ctx and closed.
// Errors other than the storage sentinels are wrapped as ErrUnavailable.
func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return storage.ErrClosed
	}
	err := s.db.View(fn)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return unavailable(err)
	}
	return err
}

func unavailable(err error) error {
	return fmt.Errorf("boltstore: %w: %w", storage.ErrUnavailable, err)
}

// errCorrupt reports a stored record that does not decode.
var errCorrupt = errors.New("corrupted record")

// encode returns the stored form of a value written at rev.
func encode(rev int64, value []byte) []byte {
	b := make([]byte, 8, 8+len(value))
	binary.BigEndian.PutUint64(b, uint64(rev))
	return append(b, value...)
}

// decode splits a stored record. The value aliases b, which bbolt owns only
// for the life of the transaction.
func decode(b []byte) (rev int64, value []byte, err error) {
	if len(b) < 8 {
		return 0, nil, errCorrupt
	}
	rev = int64(binary.BigEndian.Uint64(b))
	if rev <= 0 {
		return 0, nil, errCorrupt
	}
	return rev, b[8:], nil
}

// decodeItem decodes the record stored under key into an Item that owns its
// value.
func decodeItem(key string, b []byte) (storage.Item, error) {
	rev, v, err := decode(b)
	if err != nil {
		return storage.Item{}, fmt.Errorf("key %q: %w", key, err)
	}
	return storage.Item{Key: key, Value: bytes.Clone(v), Revision: rev}, nil
}

// readRevision returns the store revision kept in meta: 0 when absent.
func readRevision(meta *bolt.Bucket) (int64, error) {
	b := meta.Get(revisionKey)
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 || int64(binary.BigEndian.Uint64(b)) < 0 {
		return 0, fmt.Errorf("store revision: %w", errCorrupt)
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}
