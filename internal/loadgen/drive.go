package loadgen

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// call performs one request (or one raw operation) for worker w. It may
// use w's transport and scratch space, never another worker's.
type call func(ctx context.Context, w *worker) outcome

// worker is one worker's private state; workers never share one.
type worker struct {
	id int
	// n is how many requests of the current operation this worker made
	// before this one: the round-robin position.
	n      int
	random bool
	rng    *rand.Rand
	tr     transport // nil in raw mode
	buf    []byte    // template requests are built here
	picks  []int     // the key indices of a template request
}

// workerSeed seeds every worker's generator: runs are repeatable.
const workerSeed = 0x726f6e2d6b6d73 // "ron-kms"

func newWorker(id int, random bool) *worker {
	return &worker{id: id, random: random, rng: rand.New(rand.NewPCG(workerSeed, uint64(id)))}
}

// index picks one of k things for the current request (a prebuilt request,
// a key): round robin from the worker's number, or uniformly at random.
func (w *worker) index(k int) int {
	if w.random {
		return w.rng.IntN(k)
	}
	return (w.id + w.n) % k
}

// slot picks the key of item j of the current request of slots items.
func (w *worker) slot(j, slots, k int) int {
	if w.random {
		return w.rng.IntN(k)
	}
	return (w.id + w.n*slots + j) % k
}

// driveSpec is what drive runs.
type driveSpec struct {
	workers  int
	duration time.Duration
	// rate > 0 paces the workers (requests per second across all of
	// them); 0 runs closed loop.
	rate   float64
	random bool
	calls  []call // by operation index
	seq    []int  // the weighted cycle of operation indices
	// transport gives each worker its own; nil in raw mode.
	transport func() transport
}

// opTally is one operation's record within one worker, then, merged, the
// run's.
type opTally struct {
	requests, items int64
	lat             []time.Duration
	errs            map[string]int64
}

func (t *opTally) add(o outcome, lat time.Duration) {
	t.lat = append(t.lat, lat)
	t.items += int64(o.items)
	if o.ok {
		t.requests++
	}
	for _, c := range o.codes {
		if t.errs == nil {
			t.errs = map[string]int64{}
		}
		t.errs[c]++
	}
}

func (t *opTally) merge(o *opTally) {
	t.requests += o.requests
	t.items += o.items
	t.lat = append(t.lat, o.lat...)
	for c, k := range o.errs {
		if t.errs == nil {
			t.errs = map[string]int64{}
		}
		t.errs[c] += k
	}
}

// driven is what drive measured: per operation, and over the run.
type driven struct {
	ops     []opTally
	elapsed time.Duration
	// missed counts the requests a paced run had due before the end but
	// never sent, its workers being too far behind.
	missed int64
}

// latencyPrealloc is each worker's initial latency capacity: a worker that
// makes more requests grows its slice (amortized, rare).
const latencyPrealloc = 1 << 14

// drive runs the spec's workers until its duration has passed and gathers
// their tallies. Worker w walks the cycle from position w; when paced, its
// k-th request is due at start + (k·workers + w)/rate, it waits for that
// time, and the request's latency counts from it, not from when it was
// actually sent, so that a slow answer delaying the next request is
// measured rather than hidden (no coordinated omission). A paced worker
// sends nothing after the end, however late it runs. progress may be nil.
func drive(ctx context.Context, s driveSpec, progress Progress) driven {
	var (
		done  atomic.Int64
		wg    sync.WaitGroup
		sent  = make([]int64, s.workers)
		tally = make([][]opTally, s.workers)
	)
	start := time.Now()
	deadline := start.Add(s.duration)
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	if progress != nil {
		pwg.Go(func() {
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					progress(time.Since(start), done.Load())
				}
			}
		})
	}
	for id := range s.workers {
		wg.Go(func() {
			w := newWorker(id, s.random)
			if s.transport != nil {
				w.tr = s.transport()
				defer w.tr.close()
			}
			ts := make([]opTally, len(s.calls))
			tally[id] = ts
			perOp := make([]int, len(s.calls))
			prealloc := latencyPrealloc / len(s.calls)
			for i := range ts {
				ts[i].lat = make([]time.Duration, 0, prealloc)
			}
			var timer *time.Timer
			k := 0
			defer func() { sent[id] = int64(k) }()
			for ; ctx.Err() == nil; k++ {
				var t0 time.Time
				if s.rate > 0 {
					t0 = start.Add(time.Duration(float64(k*s.workers+id) / s.rate * float64(time.Second)))
					if !t0.Before(deadline) {
						return
					}
					if d := time.Until(t0); d > 0 {
						if timer == nil {
							timer = time.NewTimer(d)
							defer timer.Stop()
						} else {
							timer.Reset(d)
						}
						select {
						case <-timer.C:
						case <-ctx.Done():
							return
						}
					} else if !time.Now().Before(deadline) {
						return
					}
				} else if t0 = time.Now(); !t0.Before(deadline) {
					return
				}
				op := s.seq[(id+k)%len(s.seq)]
				w.n = perOp[op]
				perOp[op]++
				o := s.calls[op](ctx, w)
				ts[op].add(o, time.Since(t0))
				done.Add(1)
			}
		})
	}
	wg.Wait()
	d := driven{elapsed: time.Since(start), ops: make([]opTally, len(s.calls))}
	close(stop)
	pwg.Wait()
	if progress != nil {
		progress(d.elapsed, done.Load())
	}
	for _, ts := range tally {
		for i := range ts {
			d.ops[i].merge(&ts[i])
		}
	}
	if s.rate > 0 && ctx.Err() == nil {
		for id, n := range sent {
			// Worker id had requests k = 0, 1, … due while
			// (k·workers + id)/rate < duration.
			due := int64(math.Ceil((s.duration.Seconds()*s.rate - float64(id)) / float64(s.workers)))
			d.missed += max(due-n, 0)
		}
	}
	return d
}
