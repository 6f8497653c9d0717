// Package audit is ron-kms's audit log (SPEC §9): an append-only, hash-chained
// log of every operation, with checkpoints signed by the server's audit key,
// group-committed writes, and offline verification.
//
// # Files
//
// The log is a directory (DirName inside the data directory, mode 0700) of
// files audit-000001.log, audit-000002.log, ... (mode 0600), each of lines of
// canonical JSON ended by "\n". A new file is started when the current one
// reaches Options.MaxFileBytes; the chain simply goes on (the first record of
// a file has as prev the hash of the last record of the one before).
//
// A file is in one of two segment formats, and a log may hold both; every
// reader (Open, Verify, Tail) reads both:
//
//   - v1 (every file written before v2 existed): the lines and nothing else.
//   - v2 (every file written since): the header line
//     "ron-kms audit segment v2\n", the lines, then zero bytes up to the
//     file's size. The writer zero-fills a file ahead of its records
//     (Options.PreallocBytes at a time, up to MaxFileBytes), so appending
//     changes neither the file's size nor its blocks. A line never holds a
//     NUL byte (canonical JSON escapes control characters), so the lines
//     end at the first NUL after the header. A file that starts with
//     "ron-kms audit segment " but not with the v2 header is of a newer
//     format and is refused.
//
// Header lines are counted as line 1 of a file in every line number the
// package reports. A log whose last file is v1 is continued in a new v2
// file; v1 files are never written again (but for Open cutting off a torn
// last line).
//
// # Records
//
// A record line holds, keys sorted:
//
//	{"actor":"…","alg":"…","code":"…","count":N,"detail":"…","hash":"<hex>","input_b3":"<hex>","items":[…],
//	 "kid":"…","node":"…","op":"…","prev":"<hex>","request_id":"…","result":"…","seq":N,"tenant":"…","ts":"RFC 3339"}
//
// code, count, detail, items and node are omitted when empty or zero (older
// logs never carry count, detail, items or node, and read the same); node is the id of
// the node that wrote the record (every node of a cluster keeps its own
// log); count is how many operations a
// collapsed record stands for, detail free-form context such as a minted
// token's id and caveats; input_b3 is "" when the operation had no input.
// prev, hash and input_b3 are lower-case hex of 32 bytes. seq starts at 1 and
// grows by one. hash = BLAKE3-256(prev ‖ canonical JSON of the record without
// "hash"), where prev is the 32 raw bytes (zero for seq 1) and the JSON is the
// line itself minus its "hash" member. Canonical JSON is defined at
// appendCanonical: sorted keys, no white space, encoding/json's escaping
// without HTML escapes; numbers are unsigned integers only.
//
// # Batch records
//
// A batch request (/sign/batch, /verify/batch) that ran is one record for
// the whole batch (SPEC §9), whose items member lists every item in request
// order, each a flat object with sorted keys:
//
//	{"code":"…","input_b3":"<hex>","kid":"…","result":"…"}
//
// kid is the key the item named, with the version that signed once it is
// known; input_b3 the BLAKE3-256 of the item's input, "" when it had none
// (an item refused before its input decoded); result and code say how the
// item ended, as they would for a record of its own (code omitted when
// empty). The record's own members summarize the batch: op is the route's
// operation (sign_batch, verify_batch); count is the number of items;
// result is "ok" when every item is ok and "partial" otherwise; code is
// empty; tenant and alg are those of the items when they all share one,
// else ""; kid and input_b3 are "", the items carry them. items is never an
// empty array. The record is chained, hashed and canonical like any other:
// the hash covers the items, so changing any item's kid, input or result
// breaks the chain at that record. A batch refused as a whole (no token,
// no scope, a body that does not decode, too many items) has no items: it
// is one ordinary record with the request's result and code. Logs written
// when a batch left one record per item still verify; they simply have no
// items.
//
// # Checkpoints
//
// A checkpoint line is not a record: it has no seq or prev of its own and is
// not chained. It states where the chain stands, just after the record it
// follows, and is signed with the audit key (Ed25519, RFC 8032):
//
//	{"checkpoint":K,"every":E,"hash":"<hex>","node":"…","reason":"open|every|close|recover",
//	 "seq":S,"sig":"<hex>","store_generation":G,"ts":"RFC 3339"}
//
// K numbers checkpoints 1, 2, 3, ... in the log; S and hash are the seq and
// hash of the last record before it (0 and zeros before any record); G is the
// key store's generation (with etcd, the cluster's revision, which only
// grows); node is the writer's node id, omitted when it has none; E is the
// writer's interval. sig is the Ed25519
// signature over "ron-kms audit checkpoint v1\n" followed by the canonical
// JSON of the checkpoint without "sig". The writer puts one first in each run
// (open), one after every E records (every), one at Close (close), and one
// when the log becomes writable after a failure (recover). A verifier thus
// knows that checkpoints are numbered without gaps and that no more than E
// records follow one before the next, so a dropped checkpoint is an error
// wherever it was, except at the very end; a log that does not end with a
// close checkpoint is reported as a warning, because a crash leaves one too.
// The records after the last checkpoint are protected by the chain alone.
//
// # Durability
//
// Append returns only after its record is written and durable. One writer
// goroutine takes every pending record, writes them in one write and one
// sync, and answers them all (group commit). The sync is an fdatasync: the
// records land in the zero-filled part of the file, whose size and blocks
// were made durable before any record went there. Creating a file writes
// its header and zeros, fsyncs the file and then the directory (its name),
// all before the first record in it is written; zero-filling further ahead
// is followed by a full fsync instead of the next fdatasync.
//
// If the write or sync fails, every record of that batch fails with
// ErrUnavailable, the file is cut back to its last durable length before
// the next write (and zero-filled again), and Healthy reports the failure
// until a write succeeds again. Nothing is acknowledged that is not
// durable, so what Open finds after the last complete line of the last
// file (an incomplete line, or in v2 also the remains of a torn write
// beyond the first zero) was never acknowledged: Open cuts the file back to
// that line and says so in Info and in its log. The same in any other file,
// or a file missing, is an error.
package audit
