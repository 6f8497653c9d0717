package loadtest

import (
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/server"
)

// auditChunk is how many signatures one side runs before the other side's
// turn in BenchmarkPairedAuditSign.
const auditChunk = 2000

// BenchmarkPairedAuditSign measures POST /v1/kms/sign from 64 keep-alive
// clients against two bbolt servers in the same process, one with the audit
// log (durable: each record fsynced before the answer, with group commit) and
// one without (server.Config.DisableAudit, which no flag sets). The sides
// take turns in chunks of auditChunk signatures, so load from elsewhere hits
// both alike; b.N signatures go to each side. It reports each side's ops/s
// and their ratio (audit on ÷ audit off; target ≥ 0.85). ns/op counts both
// sides and means nothing.
func BenchmarkPairedAuditSign(b *testing.B) {
	// Room for every client: this measures the audit log, not the limiter.
	on := startTargetWith(b, "bolt", func(c *server.Config) { c.MaxInflight = 2 * httpClients })
	off := startTargetWith(b, "bolt", func(c *server.Config) { c.MaxInflight = 2 * httpClients; c.DisableAudit = true })
	var tOn, tOff time.Duration
	var nOn, nOff int
	b.ResetTimer()
	for left := b.N; left > 0; left -= auditChunk {
		n := min(left, auditChunk)
		for _, side := range []struct {
			tg *target
			t  *time.Duration
			n  *int
		}{{on, &tOn, &nOn}, {off, &tOff, &nOff}} {
			done, elapsed, err := drive(httpClients, n, 0, side.tg.sign)
			if err != nil {
				b.Fatal(err)
			}
			*side.t += elapsed
			*side.n += done
		}
	}
	b.StopTimer()
	onRate, offRate := float64(nOn)/tOn.Seconds(), float64(nOff)/tOff.Seconds()
	b.ReportMetric(onRate, "on-ops/s")
	b.ReportMetric(offRate, "off-ops/s")
	b.ReportMetric(onRate/offRate, "ratio")
}
