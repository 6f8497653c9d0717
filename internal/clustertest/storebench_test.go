package clustertest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// TestStoreComparison measures one node on the etcd store (a three-member
// cluster on loopback) against one node on the bolt store, in the same run:
// sign throughput with the key cache warm (the load generator, `ron-kms
// bench`, alternating the two nodes round by round so that the machine's
// load falls on both alike), and the latency of create and rotate, which
// are store writes (fsync on bolt, a Raft round on etcd).
//
// It is a measurement for BENCHMARKS.md, run on request
// (RON_KMS_STOREBENCH=1; RON_KMS_STOREBENCH_OUT=FILE also writes the
// figures there). It fails only if an operation fails.
func TestStoreComparison(t *testing.T) {
	if os.Getenv("RON_KMS_STOREBENCH") != "1" {
		t.Skip("a measurement: set RON_KMS_STOREBENCH=1 to run it")
	}
	rounds, dur := 3, "5s"
	c := newCluster(t, 1)
	bolt, boltTok := startBoltNode(t, c, 1, "bolt")
	etcdTokFile := filepath.Join(c.dir, "etcd.token")
	if err := os.WriteFile(etcdTokFile, []byte(c.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sides := []struct {
		name, addr, tokenFile string
		cl                    *client.Client
	}{
		{"bolt", bolt.addr, filepath.Join(bolt.dataDir, "admin.token"), mustClient(t, bolt.addr, boltTok)},
		{"etcd", c.nodes[0].addr, etcdTokFile, c.client(0)},
	}

	var report strings.Builder
	fmt.Fprintf(&report, "sign, ed25519, 32 keep-alive clients, %s a round, bolt and etcd alternating:\n", dur)
	var ratios []float64
	for r := range rounds {
		var ops [2]float64
		for i, sd := range sides {
			ops[i] = benchSign(t, sd.addr, sd.tokenFile, dur)
		}
		ratios = append(ratios, ops[1]/ops[0])
		fmt.Fprintf(&report, "  round %d: bolt %.0f ops/s, etcd %.0f ops/s, etcd/bolt %.3f\n", r+1, ops[0], ops[1], ops[1]/ops[0])
	}
	slices.Sort(ratios)
	fmt.Fprintf(&report, "  median etcd/bolt %.3f\n", ratios[len(ratios)/2])

	const n = 200
	for _, sd := range sides {
		creates, rotates := writeLatencies(t, sd.cl, sd.name, n)
		fmt.Fprintf(&report, "%s: create p50 %v p99 %v; rotate p50 %v p99 %v (%d each, one client)\n", sd.name,
			quantile(creates, 0.50), quantile(creates, 0.99), quantile(rotates, 0.50), quantile(rotates, 0.99), n)
	}
	t.Log("\n" + report.String())
	if out := os.Getenv("RON_KMS_STOREBENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(report.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// benchSign runs the load generator against addr and returns its ops/s;
// any error answer fails the test.
func benchSign(t *testing.T, addr, tokenFile, dur string) float64 {
	t.Helper()
	out, err := exec.Command(binPath, "bench", "--addr", addr, "--token-file", tokenFile,
		"--op", "sign", "--keys", "8", "--concurrency", "32", "--duration", dur, "--json").Output()
	if err != nil {
		t.Fatalf("bench against %s: %v\n%s", addr, err, out)
	}
	var res struct {
		OpsPerSec  float64 `json:"ops_per_sec"`
		ErrorTotal int64   `json:"error_total"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("bench output: %v\n%s", err, out)
	}
	if res.ErrorTotal != 0 || res.OpsPerSec == 0 {
		t.Fatalf("bench against %s: %d errors, %.0f ops/s\n%s", addr, res.ErrorTotal, res.OpsPerSec, out)
	}
	return res.OpsPerSec
}

// writeLatencies times n creates and then n rotations of those keys, one
// at a time.
func writeLatencies(t *testing.T, cl *client.Client, purpose string, n int) (creates, rotates []time.Duration) {
	t.Helper()
	var names []string
	for range n {
		ctx, cancel := ctxT(t)
		start := time.Now()
		resp, err := cl.CreateKey(ctx, api.CreateKeyRequest{Tenant: "storebench", Purpose: purpose, Alg: "ed25519"})
		creates = append(creates, time.Since(start))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, resp.Key.Name)
	}
	for _, name := range names {
		ctx, cancel := ctxT(t)
		start := time.Now()
		_, err := cl.RotateKey(ctx, name, "")
		rotates = append(rotates, time.Since(start))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	return creates, rotates
}

func quantile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))].Round(10 * time.Microsecond)
}
