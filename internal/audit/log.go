package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/ron-kms/ron-kms/internal/fsutil"
)

var (
	// ErrUnavailable is wrapped by every error that means "this record is not
	// in the log": a write, fsync or rotation failed, or the log is closed.
	// The server answers 503 StoreUnavailable (SPEC §9: nothing is dropped).
	ErrUnavailable = errors.New("audit: log unavailable")
	// ErrClosed is returned by Append after Close. It wraps ErrUnavailable.
	ErrClosed = fmt.Errorf("%w: closed", ErrUnavailable)
	// ErrInvalidRecord is wrapped when Append refuses a record (no op or
	// result, input_b3 of the wrong length): a bug in the caller.
	ErrInvalidRecord = errors.New("audit: invalid record")
	// ErrRollback is wrapped by *RollbackError.
	ErrRollback = errors.New("audit: store generation is below the last checkpoint's")
)

// Defaults of Options.
const (
	DefaultCheckpointEvery = 1000
	DefaultMaxFileBytes    = 64 << 20
	DefaultMaxBatch        = 1024
	DefaultRetryInterval   = time.Second
)

// Options configure Open. AuditKeySeed is required.
type Options struct {
	// AuditKeySeed is the Ed25519 seed (ed25519.SeedSize bytes) of the audit
	// key that signs checkpoints. Secret: Open copies it (the caller may clear
	// its slice afterwards), and Close clears the copy (best effort: Go may
	// have left other copies in memory).
	AuditKeySeed []byte
	// StoreGeneration returns the key store's generation counter. It is
	// called from the log's writer goroutine for every checkpoint and once in
	// Open, so it must be cheap and must not call Append. Nil means 0.
	StoreGeneration func() uint64
	// AcceptRollback lets checkpoints record a store generation lower than
	// the last checkpoint's (the operator's --accept-rollback). Without it the
	// log keeps recording the higher generation, so that a rolled-back store
	// is noticed at every start, not only the first.
	AcceptRollback bool
	// CheckpointEvery is the number of records between checkpoints; default
	// DefaultCheckpointEvery.
	CheckpointEvery int
	// MaxFileBytes is the size after which the next record goes to a new file;
	// default DefaultMaxFileBytes. A file exceeds it by at most one
	// checkpoint line, or holds a single longer record.
	MaxFileBytes int64
	// PreallocBytes is how far ahead of its records a file is zero-filled
	// (and fsynced), at most up to MaxFileBytes: appends into the zeros need
	// only an fdatasync. Default DefaultPreallocBytes.
	PreallocBytes int64
	// MaxBatch caps the records written with one fsync; default
	// DefaultMaxBatch.
	MaxBatch int
	// RetryInterval is how often a failed log tries to become writable again
	// (by writing a ReasonRecover checkpoint) while no Append arrives; default
	// DefaultRetryInterval.
	RetryInterval time.Duration
	// Logger receives what the log repaired or could not write. Nil discards.
	Logger *slog.Logger
	// Node is the id of the node writing the log (serve --node-id), put in
	// every record and checkpoint it writes; empty for none (the "node"
	// member is then omitted). At most MaxNodeLen bytes of valid UTF-8.
	Node string

	// wrapFile, for tests, wraps every file the log opens.
	wrapFile func(logFile) logFile
}

// MaxNodeLen is the longest Options.Node the log accepts.
const MaxNodeLen = 128

// RollbackError reports a store whose generation is below the one the log's
// last checkpoint recorded: an old copy of the store was put back (SPEC §9).
type RollbackError struct {
	StoreGeneration      uint64 // what the store says now
	CheckpointGeneration uint64 // what the last checkpoint recorded
	Checkpoint           uint64 // that checkpoint's number
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("audit: store generation %d is below %d, recorded by audit checkpoint %d: the store was rolled back",
		e.StoreGeneration, e.CheckpointGeneration, e.Checkpoint)
}

func (e *RollbackError) Unwrap() error { return ErrRollback }

// OpenInfo describes what Open found.
type OpenInfo struct {
	Seq  uint64         // last record in the log when it was opened
	Hash [HashSize]byte // its hash
	// LastCheckpoint is the last checkpoint of the previous run, nil for a new log.
	LastCheckpoint *Checkpoint
	// TornFile and TornBytes name what Open cut off after the last
	// complete line: an incomplete line and, in a v2 file, the remains of
	// a torn write after the padding's first zero. The previous run crashed
	// while writing them. They were never acknowledged (a sync precedes
	// every acknowledgement), so no record is lost.
	TornFile  string
	TornBytes int
	// Rollback is set when the store generation at Open was below
	// LastCheckpoint's. Unless RollbackAccepted, the server must refuse store
	// writes (and the log keeps recording the checkpoint's generation).
	Rollback         *RollbackError
	RollbackAccepted bool
}

// Stats counts what a Log did since Open.
type Stats struct {
	Records     uint64 // records made durable
	Checkpoints uint64 // checkpoints made durable
	Batches     uint64 // writes of one or more lines, each followed by an fsync
	Fsyncs      uint64 // every sync: fsyncs and fdatasyncs of files (batches, repairs, new files) and fsyncs of directories
}

// Log is an open, append-only audit log: a hash chain of records with signed
// checkpoints, in files audit-000001.log, audit-000002.log, ... of one
// directory. Its methods are safe for concurrent use. Only one Log may have a
// directory open at a time (the server's store lock ensures it).
type Log struct {
	dir      string
	key      ed25519.PrivateKey
	gen      func() uint64
	accept   bool
	every    uint64
	maxFile  int64
	prealloc int64
	maxBatch int
	retry    time.Duration
	log      *slog.Logger
	node     string
	wrapFile func(logFile) logFile
	info     OpenInfo

	reqs    chan *request
	mu      sync.RWMutex // held for reading while sending on reqs; for writing by Close
	closed  bool
	closing chan struct{}
	done    chan struct{}
	closeMu sync.Mutex
	closeEr error

	healthMu sync.Mutex
	health   error

	nRecords, nCheckpoints, nBatches, nFsyncs atomic.Uint64

	// Owned by the writer goroutine (by Open before it starts).
	f       logFile
	fileN   int
	off     int64 // bytes of f that are durable and belong to the log
	alloc   int64 // f is zero-filled (and that is durable) from off up to alloc
	grown   bool  // f's size changed since its last sync: the next must be a full fsync
	dirty   bool  // f may hold bytes past off (a write or fsync failed)
	failure error // why the last write failed; nil when healthy
	floor   uint64
	st, dur state // the chain as written so far, and as durable
	buf     []byte
	scratch []byte // the writer's encoding buffer (Record.seal)
}

// state is where the chain stands.
type state struct {
	seq   uint64
	hash  [HashSize]byte
	cpN   uint64
	since uint64 // records since the last checkpoint
}

// request is one Append or AppendAll call: its records, written in order
// and in one commit, and where the writer answers once all are durable (or
// not).
type request struct {
	recs []Record
	done chan error
}

// Open opens the log in dir (created if missing, mode set to 0700) and continues
// its chain. It checks the tail of the log, from the newest file that holds a
// checkpoint to the end, with the audit key's public half, and refuses a tail
// that does not verify (a *VerifyError): run Verify to see the whole log. An
// incomplete last line left by a crash is cut off and reported in Info().
// Open then writes a ReasonOpen checkpoint, durably, before it returns.
func Open(dir string, opts Options) (*Log, error) {
	if len(opts.AuditKeySeed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit: audit key seed is %d bytes, want %d", len(opts.AuditKeySeed), ed25519.SeedSize)
	}
	if len(opts.Node) > MaxNodeLen || !utf8.ValidString(opts.Node) {
		return nil, fmt.Errorf("audit: node id must be at most %d bytes of valid UTF-8", MaxNodeLen)
	}
	l := &Log{
		dir:      dir,
		key:      ed25519.NewKeyFromSeed(opts.AuditKeySeed),
		gen:      opts.StoreGeneration,
		accept:   opts.AcceptRollback,
		every:    uint64(orDefault(opts.CheckpointEvery, DefaultCheckpointEvery)),
		maxFile:  orDefault(opts.MaxFileBytes, DefaultMaxFileBytes),
		prealloc: orDefault(opts.PreallocBytes, DefaultPreallocBytes),
		maxBatch: orDefault(opts.MaxBatch, DefaultMaxBatch),
		retry:    orDefault(opts.RetryInterval, DefaultRetryInterval),
		log:      opts.Logger,
		node:     opts.Node,
		wrapFile: opts.wrapFile,
		closing:  make(chan struct{}),
		done:     make(chan struct{}),
	}
	if l.gen == nil {
		l.gen = func() uint64 { return 0 }
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.reqs = make(chan *request, 4*l.maxBatch)
	if err := l.load(); err != nil {
		if l.f != nil {
			l.f.Close()
		}
		return nil, err
	}
	if err := l.commit(nil, ReasonOpen); err != nil {
		l.f.Close()
		return nil, err
	}
	go l.run()
	return l, nil
}

func orDefault[T int | int64 | time.Duration](v, d T) T {
	if v <= 0 {
		return d
	}
	return v
}

// load reads the tail of the log into l.st and opens the last file.
func (l *Log) load() error {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(l.dir, 0o700); err != nil { // in case it existed
		return err
	}
	ns, err := listFiles(l.dir)
	if err != nil {
		return err
	}
	if len(ns) == 0 {
		if err := fsutil.SyncDir(filepath.Dir(filepath.Clean(l.dir))); err != nil {
			return err
		}
		return l.createFile(1)
	}
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			return fmt.Errorf("audit: %s is missing", FileName(ns[i-1]+1))
		}
	}
	// Start at the newest file holding a checkpoint, or at the first file.
	datas := make(map[int][]byte)
	segs := make(map[int]segment)
	k := len(ns) - 1
	for ; k >= 0; k-- {
		name := FileName(ns[k])
		b, err := os.ReadFile(filepath.Join(l.dir, name))
		if err != nil {
			return err
		}
		seg, err := parseSegment(b)
		if err != nil {
			return fmt.Errorf("audit: %s: %w", name, err)
		}
		datas[ns[k]], segs[ns[k]] = b, seg
		body := b[seg.start:seg.complete]
		if bytes.HasPrefix(body, []byte(`{"checkpoint":`)) || bytes.Contains(body, []byte("\n{\"checkpoint\":")) {
			break
		}
	}
	if k < 0 {
		if ns[0] != 1 {
			return fmt.Errorf("audit: %s is missing", FileName(1))
		}
		k = 0
	}
	c := newChain(l.key.Public().(ed25519.PublicKey), k == 0 && ns[0] == 1)
	for i := k; i < len(ns); i++ {
		if err := c.scanSegment(FileName(ns[i]), datas[ns[i]], segs[ns[i]], i == len(ns)-1); err != nil {
			return fmt.Errorf("audit: the end of the log does not verify (see `ron-kms audit verify`): %w", err)
		}
	}
	last := ns[len(ns)-1]
	seg := segs[last]
	f, err := l.openFile(last, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	l.f, l.fileN, l.off = f, last, int64(seg.complete)
	l.alloc = l.off
	if torn := seg.torn(); torn > 0 {
		// Cut the file back to its last complete line. In v2 whatever a
		// torn write left (after the padding's first zero as well) goes
		// too; the next write zero-fills the file again.
		if err := l.f.Truncate(l.off); err != nil {
			return err
		}
		if err := l.sync(); err != nil {
			return err
		}
		l.info.TornFile, l.info.TornBytes = FileName(last), torn
		l.log.Warn("audit: cut off an incomplete last line left by a crash; it was never acknowledged",
			"file", FileName(last), "bytes", torn, "after_seq", c.seq)
	} else if seg.version == 2 {
		l.alloc = int64(len(datas[last]))
	}
	switch {
	case seg.complete == 0:
		// No line at all: an empty v1 file or a v2 file whose creation
		// did not complete. Write it anew, as v2.
		l.f.Close()
		l.f = nil
		if err := os.Remove(filepath.Join(l.dir, FileName(last))); err != nil {
			return err
		}
		if err := l.createFile(last); err != nil {
			return err
		}
	case seg.version == 1:
		// The log goes on in a new v2 file; the v1 file stays as it is.
		if err := l.createFile(last + 1); err != nil {
			return err
		}
	}
	l.st = state{seq: c.seq, hash: c.hash, cpN: c.cpN, since: c.since}
	l.dur = l.st
	l.info.Seq, l.info.Hash, l.info.LastCheckpoint = c.seq, c.hash, c.lastCP
	if cp := c.lastCP; cp != nil {
		l.floor = cp.StoreGeneration
		if g := l.gen(); g < l.floor {
			l.info.Rollback = &RollbackError{StoreGeneration: g, CheckpointGeneration: l.floor, Checkpoint: cp.N}
			l.info.RollbackAccepted = l.accept
			if l.accept {
				l.floor = 0
			}
		}
	}
	return nil
}

func (l *Log) openFile(n int, flag int, perm os.FileMode) (logFile, error) {
	f, err := os.OpenFile(filepath.Join(l.dir, FileName(n)), flag, perm)
	if err != nil {
		return nil, err
	}
	if l.wrapFile != nil {
		return l.wrapFile(osFile{f}), nil
	}
	return osFile{f}, nil
}

// createFile creates file n (0600) in format v2: the header, zero-filled
// up to PreallocBytes (at most MaxFileBytes). It fsyncs the file (its size
// and blocks) and the directory (its name) before switching to it, so that
// the first record written into it needs only an fdatasync.
func (l *Log) createFile(n int) error {
	f, err := l.openFile(n, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	hdr := int64(len(segmentHeader))
	alloc := max(min(l.prealloc, l.maxFile), hdr)
	_, err = f.WriteAt([]byte(segmentHeader), 0)
	if err == nil {
		err = writeZeros(f, hdr, alloc-hdr)
	}
	if err == nil {
		l.nFsyncs.Add(1)
		err = f.Sync()
	}
	if err == nil {
		l.nFsyncs.Add(1)
		err = fsutil.SyncDir(l.dir)
	}
	if err != nil {
		f.Close()
		os.Remove(filepath.Join(l.dir, FileName(n)))
		return err
	}
	if l.f != nil {
		if err := l.f.Close(); err != nil { // already fsynced; nothing is lost
			l.log.Warn("audit: closing a full log file", "file", FileName(l.fileN), "err", err)
		}
	}
	l.f, l.fileN, l.off, l.alloc, l.grown = f, n, hdr, alloc, false
	return nil
}

// sync fsyncs the current file.
func (l *Log) sync() error {
	l.nFsyncs.Add(1)
	if err := l.f.Sync(); err != nil {
		return err
	}
	l.grown = false
	return nil
}

// datasync makes what was written into the file's zero-filled part
// durable: an fdatasync, or a full fsync if the file grew since the last.
func (l *Log) datasync() error {
	if l.grown {
		return l.sync()
	}
	l.nFsyncs.Add(1)
	return l.f.Datasync()
}

// extend zero-fills the file from alloc to at least end: PreallocBytes
// more, at most up to MaxFileBytes, or exactly to end if that is further.
// The next sync is then a full fsync.
func (l *Log) extend(end int64) error {
	to := max(min(l.alloc+l.prealloc, l.maxFile), end)
	if err := writeZeros(l.f, l.alloc, to-l.alloc); err != nil {
		return err
	}
	l.alloc, l.grown = to, true
	return nil
}

// Append adds r to the log and returns once it is durable (written and
// synced), sharing the sync with every record appended meanwhile (group
// commit). Seq, Prev and Hash are assigned; see Record. An error wrapping
// ErrUnavailable means the record is not in the log and the operation must
// fail; ErrInvalidRecord means a bug in the caller. If ctx ends first, Append
// returns ctx.Err(): the record may or may not have been written.
func (l *Log) Append(ctx context.Context, r Record) error {
	if err := r.normalize(time.Now()); err != nil {
		return err
	}
	r.InputB3 = bytes.Clone(r.InputB3)
	return l.send(ctx, &request{recs: []Record{r}, done: make(chan error, 1)})
}

// send hands req to the writer and waits for its answer.
func (l *Log) send(ctx context.Context, req *request) error {
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return ErrClosed
	}
	select {
	case l.reqs <- req:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// AppendAll appends rs in order and returns once all of them are durable.
// They reach the writer as one request, so they are consecutive in the log
// and a batch of n records costs one fsync (two if the log rotates among
// them), not n, and one hand-off to the writer. It returns the first
// error: then some of rs may be in the log and some not, and the operation
// they describe must fail as for Append. An invalid record is refused before
// any is appended.
func (l *Log) AppendAll(ctx context.Context, rs []Record) error {
	if len(rs) == 0 {
		return nil
	}
	now := time.Now()
	recs := make([]Record, len(rs))
	for i, r := range rs {
		if err := r.normalize(now); err != nil {
			return err
		}
		r.InputB3 = bytes.Clone(r.InputB3)
		recs[i] = r
	}
	return l.send(ctx, &request{recs: recs, done: make(chan error, 1)})
}

// Healthy returns nil while the log accepts records, and otherwise why not
// (an error wrapping ErrUnavailable), for /readyz. After a failure the log
// retries every RetryInterval and on every Append; the first success makes it
// healthy again.
func (l *Log) Healthy() error {
	l.healthMu.Lock()
	defer l.healthMu.Unlock()
	return l.health
}

func (l *Log) setHealth(err error) {
	l.healthMu.Lock()
	defer l.healthMu.Unlock()
	l.health = err
}

// Info describes what Open found: where the chain stood, a torn line it cut
// off, a store rollback.
func (l *Log) Info() OpenInfo { return l.info }

// PublicKey returns the audit public key, the one Verify needs.
func (l *Log) PublicKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), l.key[ed25519.SeedSize:]...)
}

// Stats returns counters since Open.
func (l *Log) Stats() Stats {
	return Stats{Records: l.nRecords.Load(), Checkpoints: l.nCheckpoints.Load(),
		Batches: l.nBatches.Load(), Fsyncs: l.nFsyncs.Load()}
}

// Close writes the records already passed to Append, then a ReasonClose
// checkpoint, and closes the file. Appends after Close return ErrClosed.
// Close returns the error of that last write, if any; a second Close returns
// the same.
func (l *Log) Close() error {
	l.mu.Lock()
	first := !l.closed
	l.closed = true
	l.mu.Unlock()
	if first {
		close(l.closing)
	}
	<-l.done
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	return l.closeEr
}

// run is the writer goroutine: it takes every pending request, writes them
// with one fsync, and answers them.
func (l *Log) run() {
	defer close(l.done)
	var retry *time.Timer
	var retryC <-chan time.Time
	batch := make([]*request, 0, l.maxBatch)
	for {
		select {
		case req := <-l.reqs:
			batch, _ = l.collect(append(batch[:0], req))
			l.commit(batch, "")
		case <-retryC:
			retryC = nil
			l.commit(nil, ReasonRecover)
		case <-l.closing:
			// Close set closed under the lock, so no one sends any more.
			var err error
			for {
				var full bool
				batch, full = l.collect(batch[:0])
				if !full {
					break
				}
				l.commit(batch, "")
			}
			err = l.commit(batch, ReasonClose)
			if cerr := l.f.Close(); err == nil {
				err = cerr
			}
			clear(l.key)
			l.closeMu.Lock()
			l.closeEr = err
			l.closeMu.Unlock()
			l.setHealth(ErrClosed)
			if retry != nil {
				retry.Stop()
			}
			return
		}
		switch {
		case l.failure != nil && retryC == nil:
			retry = time.NewTimer(l.retry)
			retryC = retry.C
		case l.failure == nil && retryC != nil:
			retry.Stop()
			retryC = nil
		}
	}
}

// collect adds pending requests to batch without waiting, until it holds
// maxBatch records or more, and reports whether it stopped there (full)
// rather than because nothing more was waiting.
func (l *Log) collect(batch []*request) (_ []*request, full bool) {
	n := 0
	for _, req := range batch {
		n += len(req.recs)
	}
	for n < l.maxBatch {
		select {
		case req := <-l.reqs:
			batch = append(batch, req)
			n += len(req.recs)
		default:
			return batch, false
		}
	}
	return batch, true
}

// commit writes batch, then a checkpoint if reason is set, rotating files as
// needed, and answers every request in batch. Any failure fails every request
// not yet durable, rolls the chain back to what is durable, and makes the log
// unhealthy.
func (l *Log) commit(batch []*request, reason string) (err error) {
	acked := 0
	defer func() {
		if err != nil {
			l.st = l.dur
			if l.failure == nil {
				l.log.Error("audit: cannot write the log; operations fail until it can", "err", err)
			}
			l.failure = err
			l.setHealth(err)
			for _, req := range batch[acked:] {
				req.done <- err
			}
		}
	}()
	if l.dirty {
		if err := l.f.Truncate(l.off); err != nil {
			return fmt.Errorf("%w: truncating %s: %w", ErrUnavailable, FileName(l.fileN), err)
		}
		l.alloc = l.off // the next write zero-fills again
		if err := l.sync(); err != nil {
			return fmt.Errorf("%w: fsync %s: %w", ErrUnavailable, FileName(l.fileN), err)
		}
		l.dirty = false
	}
	buf := l.buf[:0]
	defer func() { l.buf = buf[:0] }()
	for i, req := range batch {
		for j := range req.recs {
			r := &req.recs[j]
			r.Seq, r.Prev, r.Node = l.st.seq+1, l.st.hash, l.node
			mark := len(buf)
			buf, l.scratch = r.seal(buf, l.scratch)
			if l.off+int64(mark) > int64(len(segmentHeader)) && l.off+int64(len(buf)) > l.maxFile {
				if err := l.flush(buf[:mark]); err != nil {
					return err
				}
				// Requests wholly written are durable; this one is
				// answered once its remaining records are.
				for _, req := range batch[acked:i] {
					req.done <- nil
				}
				acked = i
				if err := l.createFile(l.fileN + 1); err != nil {
					return fmt.Errorf("%w: creating %s: %w", ErrUnavailable, FileName(l.fileN+1), err)
				}
				buf = append(buf[:0], buf[mark:]...)
			}
			l.st.seq, l.st.hash = r.Seq, r.Hash
			l.st.since++
			if l.st.since >= l.every {
				buf = l.appendCheckpoint(buf, ReasonEvery)
			}
		}
	}
	if reason != "" {
		buf = l.appendCheckpoint(buf, reason)
	}
	if err := l.flush(buf); err != nil {
		return err
	}
	for _, req := range batch[acked:] {
		req.done <- nil
	}
	acked = len(batch)
	return nil
}

// appendCheckpoint appends a signed checkpoint at the chain's current state.
func (l *Log) appendCheckpoint(buf []byte, reason string) []byte {
	g := l.gen()
	if g < l.floor {
		g = l.floor
	}
	cp := Checkpoint{N: l.st.cpN + 1, Seq: l.st.seq, Hash: l.st.hash, StoreGeneration: g,
		Every: l.every, Reason: reason, Node: l.node, TS: time.Now().UTC().Round(0)}
	cp.Sig = ed25519.Sign(l.key, cp.signedMessage())
	l.st.cpN, l.st.since = cp.N, 0
	return cp.appendLine(buf)
}

// flush writes buf at the end of the file's records, into its zero-filled
// part (extended first if buf does not fit), and makes it durable.
func (l *Log) flush(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	name := FileName(l.fileN)
	if end := l.off + int64(len(buf)); end > l.alloc {
		if err := l.extend(end); err != nil {
			l.dirty = true
			return fmt.Errorf("%w: zero-filling %s: %w", ErrUnavailable, name, err)
		}
	}
	if _, err := l.f.WriteAt(buf, l.off); err != nil {
		l.dirty = true
		return fmt.Errorf("%w: writing %s: %w", ErrUnavailable, name, err)
	}
	if err := l.datasync(); err != nil {
		l.dirty = true
		return fmt.Errorf("%w: fsync %s: %w", ErrUnavailable, name, err)
	}
	l.nBatches.Add(1)
	l.nRecords.Add(l.st.seq - l.dur.seq)
	l.nCheckpoints.Add(l.st.cpN - l.dur.cpN)
	l.off += int64(len(buf))
	l.dur = l.st
	if l.failure != nil {
		l.log.Info("audit: the log is writable again", "file", name)
		l.failure = nil
		l.setHealth(nil)
	}
	return nil
}
