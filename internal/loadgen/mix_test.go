package loadgen

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

func TestParseMix(t *testing.T) {
	mix, err := ParseMix("sign=70, verify=20,wrap=10")
	if err != nil {
		t.Fatal(err)
	}
	want := []OpWeight{{"sign", 70}, {"verify", 20}, {"wrap", 10}}
	if !slices.Equal(mix, want) {
		t.Errorf("got %v", mix)
	}
	if s := FormatMix(mix); s != "sign=70,verify=20,wrap=10" {
		t.Errorf("FormatMix: %q", s)
	}
	for _, bad := range []string{"", "sign", "sign=", "sign=0", "sign=-1", "sign=1001", "sign=1.5",
		"frob=1", "sign=1,sign=2", "sign=1,,verify=1"} {
		if _, err := ParseMix(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestCycle: each operation appears in proportion to its weight, reduced
// by their common divisor, and no operation runs longer than it must.
func TestCycle(t *testing.T) {
	seq := cycle([]int{70, 20, 10})
	if len(seq) != 10 {
		t.Fatalf("cycle of %d for 70/20/10: %v", len(seq), seq)
	}
	count := make([]int, 3)
	for _, i := range seq {
		count[i]++
	}
	if !slices.Equal(count, []int{7, 2, 1}) {
		t.Errorf("counts %v of %v", count, seq)
	}
	// Smooth: the 7 never runs more than 3 in a row (7/3 rounded up).
	run := 0
	for i := range 2 * len(seq) {
		if seq[i%len(seq)] == 0 {
			run++
			if run > 3 {
				t.Errorf("%v runs op 0 %d times in a row", seq, run)
			}
		} else {
			run = 0
		}
	}
	if got := cycle([]int{5}); !slices.Equal(got, []int{0}) {
		t.Errorf("one op: %v", got)
	}
	if got := cycle([]int{1, 1}); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("1/1: %v", got)
	}
}

// TestMixService: a mix against a server counts each operation apart, the
// totals are their sums, and the server counted what the engine did.
func TestMixService(t *testing.T) {
	s := startServer(t)
	mix := []OpWeight{{"sign", 70}, {"verify", 20}, {"wrap", 10}}
	r := run(t, s, Config{Mix: mix, Keys: 2})
	checkClean(t, r)
	if r.Op != MixOp || r.Alg != "" || !slices.Equal(r.Mix, mix) {
		t.Errorf("header: op %q alg %q mix %v", r.Op, r.Alg, r.Mix)
	}
	if len(r.PerOp) != 3 {
		t.Fatalf("per_op %v", r.PerOp)
	}
	var reqs, items, lats int64
	for _, m := range mix {
		pr := r.PerOp[m.Op]
		if pr.Requests == 0 || pr.Weight != m.Weight || pr.Keys != 2 || pr.ErrorTotal != 0 {
			t.Errorf("%s: %+v", m.Op, pr)
		}
		reqs += pr.Requests
		items += pr.Items
		lats += pr.Latency.Count
	}
	if reqs != r.Requests || items != r.Items || lats != r.Latency.Count {
		t.Errorf("per-op sums %d/%d/%d, totals %d/%d/%d", reqs, items, lats, r.Requests, r.Items, r.Latency.Count)
	}
	if r.PerOp["sign"].Requests <= r.PerOp["verify"].Requests || r.PerOp["verify"].Requests < r.PerOp["wrap"].Requests {
		t.Errorf("requests do not follow the weights: %d %d %d",
			r.PerOp["sign"].Requests, r.PerOp["verify"].Requests, r.PerOp["wrap"].Requests)
	}
	if r.PerOp["sign"].Alg != "ed25519" || r.PerOp["wrap"].Alg != "mlkem768-x25519" {
		t.Errorf("algorithms %q %q", r.PerOp["sign"].Alg, r.PerOp["wrap"].Alg)
	}
	// sign and verify share the two ed25519 keys; wrap has two of its own.
	if r.Keys != 4 {
		t.Errorf("keys %d, want 4", r.Keys)
	}
	if got := s.opsTotal(t, "sign", "ed25519"); got != r.PerOp["sign"].Items+2 { // +2: the verify fixtures
		t.Errorf("server counted %d signatures, engine %d (+2 fixtures)", got, r.PerOp["sign"].Items)
	}
}

// TestMixAlg: --alg applies to the operations of its kind only.
func TestMixAlg(t *testing.T) {
	cfg, ops, err := Config{Mix: []OpWeight{{"sign", 1}, {"wrap", 1}, {"encrypt", 1}}, Alg: "ml-dsa-44"}.normalize(true, 1)
	if err != nil {
		t.Fatal(err)
	}
	algs := []string{ops[0].cfg.Alg, ops[1].cfg.Alg, ops[2].cfg.Alg}
	if !slices.Equal(algs, []string{"ml-dsa-44", "mlkem768-x25519", "aes-256-gcm"}) {
		t.Errorf("algorithms %v", algs)
	}
	if cfg.Batch != 1 {
		t.Errorf("batch %d for a mix without batches", cfg.Batch)
	}
	if _, _, err := (Config{Mix: []OpWeight{{"sign", 1}}, Alg: "x25519"}).normalize(true, 1); err == nil {
		t.Error("an alg that fits no op of the mix was accepted")
	}
}

// TestMixRaw: raw mode runs mixes too.
func TestMixRaw(t *testing.T) {
	mix := []OpWeight{{"sign", 3}, {"verify-batch", 1}, {"encrypt", 1}}
	r, err := RunRaw(context.Background(), Config{Mix: mix, Batch: 4, Concurrency: 2, Duration: 100 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, r)
	for _, m := range mix {
		if r.PerOp[m.Op].Requests == 0 {
			t.Errorf("%s did nothing: %+v", m.Op, r.PerOp[m.Op])
		}
	}
	if b := r.PerOp["verify-batch"]; b.Items != 4*b.Requests || b.Batch != 4 {
		t.Errorf("verify-batch: %d items for %d requests, batch %d", b.Items, b.Requests, b.Batch)
	}
}

// TestRate: paced at 200 requests a second for one second, a run sends
// about 200 (loosely: nothing here checks timing), reports the target, and
// its latencies count from the schedule.
func TestRate(t *testing.T) {
	s := startServer(t)
	p, err := Prepare(context.Background(), s.target(t), Config{Op: "sign", Rate: 200, Concurrency: 4, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	r := p.Run(context.Background(), nil)
	checkClean(t, r)
	if r.Requests < 100 || r.Requests > 300 {
		t.Errorf("%d requests at 200/s for 1 s", r.Requests)
	}
	if r.TargetRate != 200 || r.AchievedRate <= 0 || r.Missed < 0 {
		t.Errorf("target %v, achieved %v, missed %d", r.TargetRate, r.AchievedRate, r.Missed)
	}
	if r.Requests+r.Missed > 200 {
		t.Errorf("%d sent and %d missed: more than the 200 scheduled", r.Requests, r.Missed)
	}
}

// TestRateRaw: raw mode is paced the same way.
func TestRateRaw(t *testing.T) {
	r, err := RunRaw(context.Background(), Config{Op: "sign", Rate: 200, Concurrency: 2, Duration: time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests < 100 || r.Requests > 300 {
		t.Errorf("%d operations at 200/s for 1 s", r.Requests)
	}
}

func TestReadKIDs(t *testing.T) {
	good := "# kids\n\nacme/inv/ed25519/0190a0b0-0000-7000-8000-000000000001#v1\n  acme/inv/ed25519/0190a0b0-0000-7000-8000-000000000002  \r\n"
	kids, err := ReadKIDs(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(kids) != 2 || kids[1] != "acme/inv/ed25519/0190a0b0-0000-7000-8000-000000000002" {
		t.Errorf("%q", kids)
	}
	for _, bad := range []string{"", "# only a comment\n", "acme/inv/ed25519/not-a-uuid\n",
		"acme/inv/ed25519/0190a0b0-0000-7000-8000-000000000001#1\n", "acme/inv/rsa/0190a0b0-0000-7000-8000-000000000001\n"} {
		if _, err := ReadKIDs(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := ReadKIDs(strings.NewReader("\n\nbad\n")); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error does not name line 3: %v", err)
	}
}

func TestKidAlg(t *testing.T) {
	for kid, want := range map[string]string{
		"a/b/ed25519/0190a0b0-0000-7000-8000-000000000001":             "ed25519",
		"a/b/mlkem768-x25519/0190a0b0-0000-7000-8000-000000000001#v12": "mlkem768-x25519",
	} {
		if got, err := kidAlg(kid); err != nil || got != want {
			t.Errorf("%s: %q %v", kid, got, err)
		}
	}
	for _, bad := range []string{"a/b/ed25519", "a/b/rsa/u", `a/b/ed25519/u"`, `a/b/ed25519/u\`, "a/b/ed25519/u#v",
		"a/b/ed25519/u#x1", "a/b/ed25519/u#v1#v2", "a/b/c/ed25519/u", "a#v1/b/ed25519/u"} {
		if _, err := kidAlg(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestKIDsFile: a run over existing keys creates none, spreads signatures
// over all of them at random, makes verify fixtures for at most Keys of
// them, and refuses a mix whose algorithm the file lacks.
func TestKIDsFile(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	var kids []string
	for range 20 {
		k, err := s.c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "pre", Purpose: "seeded", Alg: "ed25519"})
		if err != nil {
			t.Fatal(err)
		}
		kid := k.KID
		if len(kids)%2 == 1 {
			kid = strings.TrimSuffix(kid, "#v1") // a key name: the current version
		}
		kids = append(kids, kid)
	}
	before, err := s.c.ListKeys(ctx, client.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Mix: []OpWeight{{"sign", 3}, {"sign-batch", 1}, {"verify", 1}}, Batch: 8, KIDs: kids, Keys: 3}
	cfg.Duration, cfg.Concurrency = testDuration, testConcurrency
	p, err := Prepare(ctx, s.target(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.ops[2].kids) != 3 || !p.ops[0].template || !p.ops[1].template || p.ops[2].template {
		t.Errorf("verify keys %d, templates %v %v %v", len(p.ops[2].kids), p.ops[0].template, p.ops[1].template, p.ops[2].template)
	}
	r := p.Run(ctx, nil)
	checkClean(t, r)
	if r.KeySpread != SpreadRandom || r.Keys != 20 || r.PerOp["sign"].Keys != 20 || r.PerOp["verify"].Keys != 3 {
		t.Errorf("spread %q, keys %d, per op %d/%d", r.KeySpread, r.Keys, r.PerOp["sign"].Keys, r.PerOp["verify"].Keys)
	}
	after, err := s.c.ListKeys(ctx, client.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Keys) != len(before.Keys) {
		t.Errorf("%d keys before the run, %d after", len(before.Keys), len(after.Keys))
	}
	signed := s.opsTotal(t, "sign", "ed25519") - 3 // the verify fixtures
	if signed != r.PerOp["sign"].Items {
		t.Errorf("server counted %d signatures, engine %d", signed, r.PerOp["sign"].Items)
	}

	if _, err := Prepare(ctx, s.target(t), Config{Mix: []OpWeight{{"sign", 1}, {"wrap", 1}}, KIDs: kids}); err == nil ||
		!strings.Contains(err.Error(), "mlkem768-x25519") {
		t.Errorf("a kids file without wrap keys: %v", err)
	}
	if _, err := RunRaw(ctx, Config{Op: "sign", KIDs: kids}, nil); err == nil {
		t.Error("raw mode accepted a kids file")
	}
}
