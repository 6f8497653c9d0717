package keystore

import (
	"context"
	"errors"
	"fmt"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// MigrationReport is what MigrateRecords did.
type MigrationReport struct {
	// Migrated is how many version 1 key records were rewritten as
	// version 2 (with their sealed seeds moved into them).
	Migrated int
	// Left are the version 1 records left as they were, one error each: a
	// record that does not decode, or one too large for version 2. They
	// still read as before (a corrupt one as corrupt). No error names a
	// secret.
	Left []error
}

// Bounds of one migration write: at most migrateMaxOps mutations (under
// etcd's default of 128 operations per transaction), at most
// migrateMaxBytes of values (under its 1.5 MiB request limit, with room).
const (
	migratePage     = 256
	migrateMaxOps   = 120
	migrateMaxBytes = 1 << 20
)

// MigrateRecords rewrites every version 1 key record (JSON k/<name> and
// sealed seeds under s/<name>/<n>) as a version 2 record (record.go), in
// atomic writes of a few keys each: a key is either wholly in its old form
// or wholly in the new one, so a migration that stops (a crash, the store
// failing, ctx) leaves a store that reads as before and that the next call
// finishes. Each key is rewritten only if it has not changed since it was
// read (compare-and-swap on its revision); a key another writer changed
// meanwhile was migrated by that write, or is by the next call. Safe for
// concurrent use, with
// other writers and other nodes; it writes the store, so a server runs it
// only once its rollback check allows writes.
//
// A run that leaves nothing in version 1 records so under
// recordsVersionPath, and later runs read only that (a store of a million
// keys is not listed at every start). Only this code writes key records
// from then on, and it writes version 2.
func (ks *Keystore) MigrateRecords(ctx context.Context) (MigrationReport, error) {
	switch it, err := ks.store.Get(ctx, recordsVersionPath); {
	case err == nil && string(it.Value) == recordsVersion2:
		return MigrationReport{}, nil
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return MigrationReport{}, storeErr(err)
	}
	rep, err := ks.migrateRecords(ctx, migrateMaxOps)
	if err != nil || len(rep.Left) > 0 {
		return rep, err
	}
	_, err = ks.store.Apply(ctx, storage.Mutation{Key: recordsVersionPath, Value: []byte(recordsVersion2), Expect: storage.AnyRevision})
	if err != nil {
		return rep, storeErr(err)
	}
	return rep, nil
}

// recordsVersionPath holds recordsVersion2 once every key record of the
// store is version 2 (MigrateRecords).
const (
	recordsVersionPath = "meta/key-records"
	recordsVersion2    = "2"
)

// migrateRecords is MigrateRecords with writes of at most maxOps mutations
// (one key's at least), so that tests can stop a migration between writes.
func (ks *Keystore) migrateRecords(ctx context.Context, maxOps int) (MigrationReport, error) {
	var rep MigrationReport
	var batch [][]storage.Mutation // the mutations of each key of the next write
	ops, size := 0, 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		defer func() { batch, ops, size = batch[:0], 0, 0 }()
		var all []storage.Mutation
		for _, m := range batch {
			all = append(all, m...)
		}
		_, err := ks.store.Apply(ctx, all...)
		if err == nil {
			rep.Migrated += len(batch)
			return nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return storeErr(err)
		}
		// A key changed since it was listed: write the others one by one.
		for _, m := range batch {
			_, err := ks.store.Apply(ctx, m...)
			switch {
			case err == nil:
				rep.Migrated++
			case !errors.Is(err, storage.ErrConflict):
				return storeErr(err)
			}
		}
		return nil
	}
	after := ""
	for {
		items, err := ks.store.List(ctx, "k/", after, migratePage)
		if err != nil {
			return rep, storeErr(err)
		}
		for _, it := range items {
			if len(it.Value) == 0 || it.Value[0] != '{' {
				continue // version 2 already
			}
			k, err := decodeKey(it.Value, it.Revision)
			if err != nil {
				rep.Left = append(rep.Left, fmt.Errorf("keystore: migrating %s: %w", it.Key, err))
				continue
			}
			if err := ks.readLegacySeeds(ctx, k); err != nil {
				return rep, err
			}
			muts, err := keyWrite(k, k.clone())
			if err != nil {
				rep.Left = append(rep.Left, fmt.Errorf("keystore: migrating %s: %w", it.Key, err))
				continue
			}
			n := 0
			for _, m := range muts {
				n += len(m.Key) + len(m.Value)
			}
			if len(batch) > 0 && (ops+len(muts) > maxOps || size+n > migrateMaxBytes) {
				if err := flush(); err != nil {
					return rep, err
				}
			}
			batch = append(batch, muts)
			ops, size = ops+len(muts), size+n
		}
		if err := flush(); err != nil {
			return rep, err
		}
		if len(items) < migratePage {
			return rep, nil
		}
		after = items[len(items)-1].Key
	}
}
