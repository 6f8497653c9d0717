package clustertest

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
)

// rotationsMeasured is how many rotations TestPropagation times.
const rotationsMeasured = 200

// TestPropagation measures how long a rotation on node A takes to reach
// node B: from A's acknowledgement until B first signs with the new
// version, over rotationsMeasured rotations, A and B taking turns. It
// reports p50, p99 and the maximum (BENCHMARKS.md), and asserts only what
// the contract says: B's signatures always name a version, the one that
// made them (A verifies each new one against the version it names), and B
// reaches the new version. With RON_KMS_PROPAGATION_OUT set,
// the delays are also written there, one per line, in microseconds.
func TestPropagation(t *testing.T) {
	c := newCluster(t, 2)
	name := createKeys(t, c, "propagation", 1)[0]
	payload := randomPayload()
	var delays []time.Duration
	for r := range rotationsMeasured {
		a, b := r%2, (r+1)%2
		ctx, cancel := ctxT(t)
		resp, err := c.client(a).RotateKey(ctx, name, "")
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		acked := time.Now()
		deadline := acked.Add(10 * time.Second)
		cb := c.client(b)
		for {
			ctx, cancel := ctxT(t)
			s, err := cb.Sign(ctx, api.SignRequest{KID: name, PayloadB3: payload})
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(s.KID, "#v") {
				t.Fatalf("sign answered kid %q without a version", s.KID)
			}
			if s.KID == resp.KID {
				delays = append(delays, time.Since(acked))
				// The signature is made by the version it names: node A
				// verifies it against exactly that version.
				ctx, cancel := ctxT(t)
				v, err := c.client(a).Verify(ctx, api.VerifyRequest{KID: s.KID, PayloadB3: payload, Sigs: s.Sigs})
				cancel()
				if err != nil || !v.OK {
					t.Fatalf("node %d's signature named %s and does not verify with it: %+v %v", b, s.KID, v, err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d still signs with %s 10 s after %s was acknowledged", b, s.KID, resp.KID)
			}
		}
	}
	slices.Sort(delays)
	q := func(p float64) time.Duration { return delays[int(p*float64(len(delays)-1))] }
	t.Logf("rotate on A -> sign with it on B, %d rotations: p50 %v, p99 %v, max %v",
		len(delays), q(0.50), q(0.99), delays[len(delays)-1])
	if out := os.Getenv("RON_KMS_PROPAGATION_OUT"); out != "" {
		var b strings.Builder
		for _, d := range delays {
			b.WriteString(strconv.FormatInt(d.Microseconds(), 10))
			b.WriteString("\n")
		}
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
