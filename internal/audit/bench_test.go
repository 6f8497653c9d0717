package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkAppend measures durable appends (each returns after its fsync)
// from one and from 64 concurrent appenders, and how many records share an
// fsync.
func BenchmarkAppend(b *testing.B) {
	for _, workers := range []int{1, 64} {
		b.Run(fmt.Sprintf("appenders=%d", workers), func(b *testing.B) {
			l := mustOpen(b, b.TempDir(), testOptions())
			rec := testRecord(1)
			before := l.Stats()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range workers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if err := l.Append(context.Background(), rec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			st := l.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(st.Records-before.Records)/float64(st.Fsyncs-before.Fsyncs), "records/fsync")
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkRecordCPU measures the CPU work one record costs the writer,
// without the file: normalizing, chaining (BLAKE3) and encoding its line.
func BenchmarkRecordCPU(b *testing.B) {
	rec := testRecord(1)
	var buf, scratch []byte
	for b.Loop() {
		r := rec
		if err := r.normalize(rec.TS); err != nil {
			b.Fatal(err)
		}
		r.Seq = 2
		buf, scratch = r.seal(buf[:0], scratch)
	}
}

// BenchmarkBatchRecordCPU compares, in one run, what a 64-item batch costs
// the writer as 64 records (one per item, as batches were logged before)
// and as one record with 64 items (SPEC §9): normalizing, chaining and
// encoding. ns/item is the cost per batch item.
func BenchmarkBatchRecordCPU(b *testing.B) {
	batch := testBatchRecord(64)
	perItem := make([]Record, 64)
	for i, it := range batch.Items {
		r := batch
		r.Items, r.Count = nil, 0
		r.Kid, r.InputB3, r.Result, r.Code = it.Kid, it.InputB3, it.Result, it.Code
		perItem[i] = r
	}
	for _, tc := range []struct {
		name string
		rs   []Record
	}{{"records=64", perItem}, {"batch=64", []Record{batch}}} {
		b.Run(tc.name, func(b *testing.B) {
			var buf, scratch []byte
			for b.Loop() {
				buf = buf[:0]
				for i := range tc.rs {
					r := tc.rs[i]
					if err := r.normalize(batch.TS); err != nil {
						b.Fatal(err)
					}
					r.Seq = uint64(i + 2)
					buf, scratch = r.seal(buf, scratch)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/64, "ns/item")
		})
	}
}
