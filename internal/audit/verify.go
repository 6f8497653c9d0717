package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// ErrCorrupt is wrapped by every *VerifyError: the log is not what the
// writer wrote.
var ErrCorrupt = errors.New("audit: log does not verify")

// VerifyError names the first place where the log stops fitting: the file
// (base name), the 1-based line, and the seq of the record that does not fit
// (for a line that does not parse, the seq that was expected there; for a
// checkpoint, the seq it commits to). It wraps ErrCorrupt.
type VerifyError struct {
	File   string
	Line   int
	Seq    uint64
	Reason string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("audit: %s line %d: seq %d: %s", e.File, e.Line, e.Seq, e.Reason)
}

func (e *VerifyError) Unwrap() error { return ErrCorrupt }

// Report sums up a verified log. After a failure it describes the part before
// the failure.
type Report struct {
	Files       int
	Records     int
	Checkpoints int
	LastSeq     uint64
	LastHash    [HashSize]byte
	// LastCheckpoint is the last checkpoint read, nil if none.
	LastCheckpoint *Checkpoint
	// StoreGeneration is LastCheckpoint's store generation (0 if none): the
	// lowest generation a store may have when the server starts (SPEC §9).
	StoreGeneration uint64
	// UnsignedRecords counts the records after the last checkpoint. Nothing
	// but the chain protects them: whoever can write the directory can cut
	// them off or rewrite them unnoticed. Every other record is covered by a
	// signature.
	UnsignedRecords uint64
	// Closed reports that the log ends with a Close checkpoint.
	Closed bool
	// Nodes are the node ids the log's records and checkpoints carry, in
	// the order they first appear; none for a log written without a node
	// id. One node's log normally has one; more mean its --node-id changed.
	Nodes []string
	// TornBytes counts the bytes after the last complete line of the last
	// file that are not padding: an incomplete line, and in a v2 file the
	// remains of a torn write past the first zero (a crash mid-write; never
	// acknowledged, so never part of the log; Open removes them).
	TornBytes int
	// Warnings describe what is not an error but deserves a look: a log not
	// closed cleanly, a torn last line, a store generation that went down.
	Warnings []string
}

// Verify checks the log in dir with the audit public key pub, offline: every
// file in order (audit-000001.log, then each next number, none missing),
// every line canonical, every record's seq one more than the last, its prev
// equal to the last hash and its hash correct; every checkpoint signed by pub,
// numbered one more than the last, equal to the chain where it stands, and no
// more than its predecessor's Every records after its predecessor (so a
// dropped checkpoint is an error). The log must start with a checkpoint.
//
// A log that does not end with a Close checkpoint, or that ends with a torn
// line, is not an error: a crash leaves one. Report.Warnings says so.
//
// The error is a *VerifyError (wrapping ErrCorrupt) naming the first line that
// does not fit, or an I/O error.
func Verify(dir string, pub ed25519.PublicKey) (Report, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Report{}, fmt.Errorf("audit: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	ns, err := listFiles(dir)
	if err != nil {
		return Report{}, err
	}
	if len(ns) == 0 {
		return Report{}, fmt.Errorf("audit: no log files (%s) in %s", FileName(1), dir)
	}
	c := newChain(pub, true)
	for i, n := range ns {
		if n != i+1 {
			return c.report(), &VerifyError{File: FileName(i + 1), Seq: c.seq + 1, Reason: "file is missing"}
		}
		data, err := os.ReadFile(filepath.Join(dir, FileName(n)))
		if err != nil {
			return c.report(), err
		}
		c.files++
		if err := c.scanFile(FileName(n), data, i == len(ns)-1); err != nil {
			return c.report(), err
		}
	}
	r := c.report()
	if r.TornBytes > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s ends with an incomplete line of %d bytes after seq %d (a crash mid-write; it was never acknowledged)",
			FileName(ns[len(ns)-1]), r.TornBytes, r.LastSeq))
	}
	if !r.Closed {
		r.Warnings = append(r.Warnings, fmt.Sprintf("the log does not end with a close checkpoint: the server is running, crashed, or the log was cut short after seq %d", r.LastSeq))
	}
	return r, nil
}

// chain is the verifier's state, shared by Verify and by Open (which checks
// the tail of the log it continues).
type chain struct {
	pub ed25519.PublicKey
	// known: seq, hash and cpN describe the log so far. Open starts in the
	// middle of a log with known unset and adopts the first line's view.
	known  bool
	midLog bool // started in the middle of the log: the first checkpoint's number is adopted too
	seq    uint64
	hash   [HashSize]byte
	cpN    uint64
	// every is the last checkpoint's Every; 0 before the first checkpoint.
	every  uint64
	since  uint64 // records since the last checkpoint
	lastCP *Checkpoint

	files, records, checkpoints int
	nodes                       []string
	lastWasCP                   bool
	torn                        int
	warnings                    []string
}

func newChain(pub ed25519.PublicKey, fromStart bool) *chain {
	return &chain{pub: pub, known: fromStart, midLog: !fromStart}
}

func (c *chain) report() Report {
	r := Report{Files: c.files, Records: c.records, Checkpoints: c.checkpoints, LastSeq: c.seq, LastHash: c.hash,
		LastCheckpoint: c.lastCP, UnsignedRecords: c.since, TornBytes: c.torn, Nodes: append([]string(nil), c.nodes...),
		Warnings: append([]string(nil), c.warnings...)}
	if c.lastCP != nil {
		r.StoreGeneration = c.lastCP.StoreGeneration
		r.Closed = c.lastWasCP && c.lastCP.Reason == ReasonClose
	}
	return r
}

// scanFile checks every line of one file (either segment format). In the
// last file what follows the last complete line (an incomplete line, the
// remains of a torn write past the padding) is counted in c.torn;
// elsewhere it is an error.
func (c *chain) scanFile(name string, data []byte, last bool) error {
	seg, err := parseSegment(data)
	if err != nil {
		return &VerifyError{File: name, Line: 1, Seq: c.seq + 1, Reason: err.Error()}
	}
	return c.scanSegment(name, data, seg, last)
}

// scanSegment is scanFile for data already parsed as seg.
func (c *chain) scanSegment(name string, data []byte, seg segment, last bool) error {
	var lastLn int
	err := seg.lines(data, func(ln int, b []byte) error {
		lastLn = ln
		if err := c.line(b); err != nil {
			err.File, err.Line = name, ln
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if seg.torn() == 0 {
		return nil
	}
	if last {
		c.torn = seg.torn()
		return nil
	}
	ln := lastLn + 1
	if lastLn == 0 && seg.version == 2 && !seg.headerTorn {
		ln = 2
	}
	switch {
	case seg.headerTorn:
		return &VerifyError{File: name, Line: 1, Seq: c.seq + 1, Reason: "incomplete segment header in a file that is not the last (file cut short)"}
	case seg.end > seg.complete:
		return &VerifyError{File: name, Line: ln, Seq: c.seq + 1, Reason: "incomplete line at the end of a file that is not the last (file cut short)"}
	default:
		return &VerifyError{File: name, Line: ln, Seq: c.seq + 1, Reason: fmt.Sprintf("%d bytes after the zero padding in a file that is not the last", seg.dirty-seg.end)}
	}
}

// line checks one line (without its "\n") against the chain and advances it.
func (c *chain) line(b []byte) *VerifyError {
	rec, cp, err := parseLine(b)
	if err != nil {
		return &VerifyError{Seq: c.seq + 1, Reason: err.Error()}
	}
	if cp != nil {
		return c.checkpoint(cp)
	}
	r := rec
	if !c.known {
		c.known, c.seq, c.hash = true, r.Seq-1, r.Prev
	}
	switch {
	case r.Seq != c.seq+1:
		return &VerifyError{Seq: r.Seq, Reason: fmt.Sprintf("out of sequence: seq %d expected here", c.seq+1)}
	case r.Prev != c.hash:
		return &VerifyError{Seq: r.Seq, Reason: fmt.Sprintf("prev is not the hash of seq %d", c.seq)}
	case r.ComputeHash() != r.Hash:
		return &VerifyError{Seq: r.Seq, Reason: "hash does not match the record (altered)"}
	}
	if c.lastCP == nil && !c.midLog {
		return &VerifyError{Seq: r.Seq, Reason: "record before the first checkpoint (checkpoint 1 is missing)"}
	}
	if c.every != 0 && c.since >= c.every {
		return &VerifyError{Seq: r.Seq, Reason: fmt.Sprintf("more than %d records since checkpoint %d at seq %d: a checkpoint is missing",
			c.every, c.lastCP.N, c.lastCP.Seq)}
	}
	c.seq, c.hash = r.Seq, r.Hash
	c.since++
	c.records++
	c.sawNode(r.Node)
	c.lastWasCP = false
	return nil
}

func (c *chain) checkpoint(cp *Checkpoint) *VerifyError {
	if !ed25519.Verify(c.pub, cp.signedMessage(), cp.Sig) {
		return &VerifyError{Seq: cp.Seq, Reason: fmt.Sprintf("checkpoint %d: signature does not verify with this audit key", cp.N)}
	}
	if !c.known {
		c.known, c.seq, c.hash = true, cp.Seq, cp.Hash
	}
	if c.lastCP == nil && c.midLog {
		c.cpN = cp.N - 1
	}
	switch {
	case cp.N != c.cpN+1:
		return &VerifyError{Seq: cp.Seq, Reason: fmt.Sprintf("checkpoint %d where checkpoint %d was expected: a checkpoint is missing or out of place", cp.N, c.cpN+1)}
	case cp.Seq != c.seq:
		return &VerifyError{Seq: cp.Seq, Reason: fmt.Sprintf("checkpoint %d does not match the chain: it names seq %d, the chain is at seq %d", cp.N, cp.Seq, c.seq)}
	case cp.Hash != c.hash:
		return &VerifyError{Seq: cp.Seq, Reason: fmt.Sprintf("checkpoint %d does not match the chain: it signed another hash for seq %d (records up to it were altered and rehashed)", cp.N, cp.Seq)}
	case cp.Every == 0:
		return &VerifyError{Seq: cp.Seq, Reason: fmt.Sprintf("checkpoint %d has every = 0", cp.N)}
	}
	if c.lastCP != nil && cp.StoreGeneration < c.lastCP.StoreGeneration {
		c.warnings = append(c.warnings, fmt.Sprintf("store generation went down from %d to %d at checkpoint %d (seq %d): a store rollback was accepted",
			c.lastCP.StoreGeneration, cp.StoreGeneration, cp.N, cp.Seq))
	}
	c.cpN, c.every, c.since, c.lastCP = cp.N, cp.Every, 0, cp
	c.checkpoints++
	c.sawNode(cp.Node)
	c.lastWasCP = true
	return nil
}

// sawNode notes a node id the log carries.
func (c *chain) sawNode(node string) {
	if node != "" && !slices.Contains(c.nodes, node) {
		c.nodes = append(c.nodes, node)
	}
}
