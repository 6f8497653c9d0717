package loadgen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ron-kms/ron-kms/internal/fsutil"
)

// Modes of RunFsync.
const (
	// FsyncAppend writes each block at the end of a growing file and
	// fsyncs it: the audit log's segment format v1.
	FsyncAppend = "append"
	// FsyncPrealloc writes each block into a zero-filled, already durable
	// file and fdatasyncs it: segment format v2.
	FsyncPrealloc = "prealloc"
)

// FsyncConfig is a bare-sync measurement: what the audit log's writer
// does for each group commit, with nothing else around it.
type FsyncConfig struct {
	Mode     string        // FsyncAppend or FsyncPrealloc
	Dir      string        // where the scratch file goes (the server's data directory's file system); default os.TempDir
	Bytes    int           // bytes written per sync; default DefaultFsyncBytes
	Duration time.Duration // default DefaultDuration
	Rate     float64       // syncs per second; 0: back to back
}

// ModeFsync is the Mode of a RunFsync result.
const ModeFsync = "fsync"

// DefaultFsyncBytes is a group commit of about 32 audit records.
const DefaultFsyncBytes = 9600

// fsyncFileBytes is the size of the scratch file: a run that fills it
// starts again at its beginning.
const fsyncFileBytes = 64 << 20

// RunFsync writes cfg.Bytes and syncs, one goroutine, for cfg.Duration,
// and reports each sync's latency (write included) as a Result of mode
// ModeFsync with Op the mode: a baseline for the audit wait of a service run
// on the same machine. The scratch file is removed at the end.
func RunFsync(ctx context.Context, cfg FsyncConfig, progress Progress) (Result, error) {
	if cfg.Bytes <= 0 {
		cfg.Bytes = DefaultFsyncBytes
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.Dir == "" {
		cfg.Dir = os.TempDir()
	}
	if cfg.Mode != FsyncAppend && cfg.Mode != FsyncPrealloc {
		return Result{}, fmt.Errorf("loadgen: fsync mode %q: want %s or %s", cfg.Mode, FsyncAppend, FsyncPrealloc)
	}
	f, err := os.CreateTemp(cfg.Dir, ".ron-kms-bench-fsync-*")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if cfg.Mode == FsyncPrealloc {
		if err := f.Truncate(0); err != nil {
			return Result{}, err
		}
		zero := make([]byte, 1<<20)
		for off := int64(0); off < fsyncFileBytes; off += int64(len(zero)) {
			if _, err := f.WriteAt(zero, off); err != nil {
				return Result{}, err
			}
		}
		if err := f.Sync(); err != nil {
			return Result{}, err
		}
	}
	block := make([]byte, cfg.Bytes)
	for i := range block {
		block[i] = 'a' + byte(i%26)
	}
	block[len(block)-1] = '\n'
	var samples []time.Duration
	start := time.Now()
	end := start.Add(cfg.Duration)
	next := start
	var off int64
	lastReport := start
	for {
		now := time.Now()
		if !now.Before(end) || ctx.Err() != nil {
			break
		}
		if cfg.Rate > 0 {
			if d := next.Sub(now); d > 0 {
				time.Sleep(d)
			}
			now = next
			next = next.Add(time.Duration(float64(time.Second) / cfg.Rate))
		}
		if off+int64(len(block)) > fsyncFileBytes {
			off = 0
			if cfg.Mode == FsyncAppend {
				if err := f.Truncate(0); err != nil {
					return Result{}, err
				}
				if err := f.Sync(); err != nil {
					return Result{}, err
				}
			}
		}
		if _, err := f.WriteAt(block, off); err != nil {
			return Result{}, err
		}
		if cfg.Mode == FsyncAppend {
			err = f.Sync()
		} else {
			err = fsutil.Datasync(f)
		}
		if err != nil {
			return Result{}, err
		}
		off += int64(len(block))
		done := time.Now()
		samples = append(samples, done.Sub(now))
		if progress != nil && done.Sub(lastReport) >= 100*time.Millisecond {
			progress(done.Sub(start), int64(len(samples)))
			lastReport = done
		}
	}
	if len(samples) == 0 {
		return Result{}, errors.New("loadgen: no sync completed")
	}
	elapsed := time.Since(start)
	n := int64(len(samples))
	lat := Percentiles(samples)
	r := Result{Mode: ModeFsync, Op: cfg.Mode, PayloadBytes: cfg.Bytes, Concurrency: 1, Elapsed: elapsed,
		Requests: n, Items: n, OpsPerSec: float64(n) / elapsed.Seconds(), RequestsPerSec: float64(n) / elapsed.Seconds(),
		Latency: lat, Errors: map[string]int64{}, TargetRate: cfg.Rate, AchievedRate: float64(n) / elapsed.Seconds(),
		PerOp: map[string]OpResult{cfg.Mode: {PayloadBytes: cfg.Bytes, Requests: n, Items: n,
			OpsPerSec: float64(n) / elapsed.Seconds(), RequestsPerSec: float64(n) / elapsed.Seconds(), Latency: lat, Errors: map[string]int64{}}}}
	return r, nil
}
