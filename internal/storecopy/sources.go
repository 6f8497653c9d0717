package storecopy

import (
	"context"
	"io"

	"github.com/ron-kms/ron-kms/internal/backup"
)

// FromBackup is the Source of a backup file (package backup). The reader
// checks order, format and the trailer's count and hash as it goes, so a
// damaged file fails the copy before its marker is written; callers verify
// the whole file first (backup.Verify) so that it fails before anything is
// written. The revision is the trailer's: the revision of the store the
// backup was taken from.
func FromBackup(r *backup.Reader) Source {
	return func(ctx context.Context, yield func(string, []byte) error) (int64, error) {
		for {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			k, v, err := r.Next()
			if err == io.EOF {
				t, _ := r.Trailer()
				return t.Revision, nil
			}
			if err != nil {
				return 0, err
			}
			if err := yield(k, v); err != nil {
				return 0, err
			}
		}
	}
}
