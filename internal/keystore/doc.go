// Package keystore is the core of ron-kms: key metadata, versions and
// rotation, and the cryptographic operations on bytes (sign, verify, batch).
//
// It knows nothing of HTTP, JSON or the wire encodings: callers hand it key
// names, versions and raw bytes. Private seeds live in the Store only as
// records sealed by a seal.Sealer, bound to (key name, version, alg); they are
// unsealed on first use and kept, expanded, in a bounded in-memory cache so
// that no request pays for unsealing.
//
// Store layout (all keys are strings, values opaque to the store):
//
//	k/<tenant>/<purpose>/<alg>/<uuid>        the key record: metadata and every version's
//	                                         sealed seed (binary, version 2, record.go)
//	s/<tenant>/<purpose>/<alg>/<uuid>/<v>    sealed seed of version v of a version 1 (JSON)
//	                                         key record, until it is migrated (migrate.go)
//	op/<tenant>/<op_id>                      result of an idempotent create, rotate or import
//	meta/<name>                              server secrets (sealed), the KEK check, and
//	                                         key-records (2 once every record is version 2)
//	sched/<due>/<kind>/<name>[/<v>]          the scheduler's due-index (scheduler.go)
//
// The cache is kept coherent by the store's change feed of "k/"; whether
// it is current is the keystore's health (health.go): while the store is
// unavailable, writes and private-key operations fail closed and verify and
// public-key reads are answered from the cache, with their age, until a
// hard TTL.
//
// Every method of *Keystore is safe for concurrent use.
package keystore
