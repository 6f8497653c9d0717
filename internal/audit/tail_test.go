package audit

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestTail(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.MaxFileBytes = 3000
	opts.CheckpointEvery = 5
	l := mustOpen(t, dir, opts)
	appendN(t, l, 0, 30)

	var got []string
	collect := func(e Entry) error {
		if e.Record != nil {
			got = append(got, fmt.Sprint(e.Record.Seq))
		} else {
			got = append(got, fmt.Sprintf("cp%d", e.Checkpoint.N))
		}
		return nil
	}
	if err := Tail(context.Background(), dir, 3, false, 0, collect); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[28 29 30 cp7]" {
		t.Fatalf("last 3: %v", got)
	}
	got = nil
	if err := Tail(context.Background(), dir, -1, false, 0, collect); err != nil {
		t.Fatal(err)
	}
	if len(got) != 30+7 || got[0] != "cp1" || got[1] != "1" {
		t.Fatalf("all: %v", got)
	}

	// Follow across rotations.
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var seqs []uint64
	done := make(chan error)
	go func() {
		done <- Tail(ctx, dir, 0, true, 5*time.Millisecond, func(e Entry) error {
			if e.Record != nil {
				mu.Lock()
				seqs = append(seqs, e.Record.Seq)
				mu.Unlock()
			}
			return nil
		})
	}()
	time.Sleep(20 * time.Millisecond)
	appendN(t, l, 30, 40)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(seqs)
		mu.Unlock()
		if n >= 40 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seqs) != 40 || seqs[0] != 31 || seqs[39] != 70 {
		t.Fatalf("followed %v", seqs)
	}
	for i := range seqs {
		if seqs[i] != uint64(31+i) {
			t.Fatalf("followed %v", seqs)
		}
	}
	l.Close()
}
