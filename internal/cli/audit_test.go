package cli

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

// TestAuditTailShowsBatchItems: a sign batch against a real server is one
// record, which audit tail prints with one indented line per item, in
// request order, and audit verify counts as one record.
func TestAuditTailShowsBatchItems(t *testing.T) {
	s := startSeedServer(t)
	key, err := s.c.CreateKey(t.Context(), api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	digest := strings.Repeat("ab", 32)
	if _, err := s.c.SignBatch(t.Context(), []api.SignRequest{
		{KID: key.KID, PayloadB3: digest},
		{KID: "acme/docs/ed25519/01890a5d-ac96-774b-bcce-b302099a8057", PayloadB3: digest},
	}); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Dir(s.tokenFile)
	var out, errb bytes.Buffer
	if code := Main(t.Context(), []string{"--data-dir", dataDir, "audit", "tail", "-n", "1"}, &out, &errb); code != 0 {
		t.Fatalf("audit tail: exit %d: %s", code, errb.String())
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`^2 \S+ sign_batch - partial - count=2$`),
		regexp.MustCompile(`^  item 1 ` + regexp.QuoteMeta(key.KID) + ` ok - [0-9a-f]{64}$`),
		regexp.MustCompile(`^  item 2 acme/docs/ed25519/01890a5d-ac96-774b-bcce-b302099a8057 error NotFound [0-9a-f]{64}$`),
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(l, "--") {
			lines = append(lines, l)
		}
	}
	if len(lines) != len(want) {
		t.Fatalf("audit tail printed\n%s\nwant %d record and item lines", out.String(), len(want))
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d: %q does not match %s", i+1, lines[i], re)
		}
	}
	out.Reset()
	errb.Reset()
	if code := Main(t.Context(), []string{"--data-dir", dataDir, "audit", "verify"}, &out, &errb); code != 0 {
		t.Fatalf("audit verify: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "audit log intact: 1 files, 2 records") {
		t.Fatalf("audit verify: %s", out.String())
	}
}
