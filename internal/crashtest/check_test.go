package crashtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/audit"
)

// checker runs the checks of acknowledged results against a restarted
// server. Every request it makes is itself acknowledged (or the check
// fails), and the audited ones are expected in the log too.
type checker struct {
	c    *client.Client
	l    *ledger
	errs []string
	keys map[string]*api.KeyInfo // GET answers of this check, by key name
}

func (k *checker) errorf(format string, args ...any) {
	if len(k.errs) < 30 {
		k.errs = append(k.errs, fmt.Sprintf(format, args...))
	}
}

// key returns the restarted server's KeyInfo for name, or nil after
// recording an error.
func (k *checker) key(ctx context.Context, name string) *api.KeyInfo {
	if ki, ok := k.keys[name]; ok {
		return ki
	}
	ki, err := k.c.GetKey(ctx, name)
	if err != nil {
		k.errorf("GET %s (acknowledged before the kill): %v", name, err)
		ki = nil
	}
	k.keys[name] = ki
	return ki
}

// version returns version v of ki, or nil.
func version(ki *api.KeyInfo, v uint32) *api.VersionInfo {
	for i := range ki.Versions {
		if ki.Versions[i].Version == v {
			return &ki.Versions[i]
		}
	}
	return nil
}

// hasVersion checks that the acknowledged kid names a version that exists,
// enabled, not beyond the current one.
func (k *checker) hasVersion(ctx context.Context, what, kid string) *api.VersionInfo {
	id, err := api.ParseKID(kid)
	if err != nil {
		k.errorf("%s: acknowledged kid %q does not parse: %v", what, kid, err)
		return nil
	}
	ki := k.key(ctx, id.KeyName.String())
	if ki == nil {
		return nil
	}
	v := version(ki, id.Version)
	switch {
	case v == nil:
		k.errorf("%s: acknowledged %s, but the key has no version %d after the restart (current %d)", what, kid, id.Version, ki.CurrentVersion)
	case ki.CurrentVersion < id.Version:
		k.errorf("%s: acknowledged %s, but the current version went back to %d", what, kid, ki.CurrentVersion)
	case v.State != "enabled":
		k.errorf("%s: %s is %s after the restart, want enabled", what, kid, v.State)
	}
	return v
}

// check verifies one batch of acknowledged results: each created key and
// each rotated version exists (and an op_id replay answers as before), each
// signature verifies (on the server and offline), each envelope unwraps to
// its data key.
func (k *checker) check(ctx context.Context, b *batch) {
	for _, a := range b.creates {
		v := k.hasVersion(ctx, "create", a.kid)
		if v == nil {
			continue
		}
		if ki := k.keys[a.name]; ki != nil && ki.Alg != a.alg {
			k.errorf("create: %s has alg %s after the restart", a.name, ki.Alg)
		}
		var id string
		res, err := k.c.CreateKey(withReqID(ctx, &id), api.CreateKeyRequest{Tenant: tenant, Purpose: a.purpose, Alg: a.alg, OpID: a.opID})
		if err != nil {
			k.errorf("create replay of op_id %s: %v", a.opID, err)
			continue
		}
		k.l.expectAudit(auditWant{reqID: id, ops: []string{"create"}, kid: res.KID})
		if res.KID != a.kid {
			k.errorf("create replay of op_id %s answered %s, first answer was %s", a.opID, res.KID, a.kid)
		}
	}
	for _, a := range b.rotates {
		if k.hasVersion(ctx, "rotate", a.kid) == nil {
			continue
		}
		var id string
		res, err := k.c.RotateKey(withReqID(ctx, &id), a.name, a.opID)
		if err != nil {
			k.errorf("rotate replay of op_id %s: %v", a.opID, err)
			continue
		}
		k.l.expectAudit(auditWant{reqID: id, ops: []string{"rotate"}, kid: res.KID})
		if res.KID != a.kid || res.Previous != a.previous {
			k.errorf("rotate replay of op_id %s answered {%s, %s}, first answer was {%s, %s}", a.opID, res.KID, res.Previous, a.kid, a.previous)
		}
	}
	for _, a := range b.signs {
		v := k.hasVersion(ctx, "sign", a.kid)
		if v == nil {
			continue
		}
		pub, err := api.DecodeB64("public_key_b64", v.PublicKeyB64)
		if err != nil || len(pub) != ed25519.PublicKeySize || len(a.sigs) != 1 {
			k.errorf("sign: %s: public key or signature list malformed", a.kid)
			continue
		}
		sig, err := api.DecodeB64("signature_b64", a.sigs[0].SignatureB64)
		if err != nil || !ed25519.Verify(pub, a.digest, sig) {
			k.errorf("sign: the acknowledged signature by %s does not verify offline with the version's public key", a.kid)
		}
		var id string
		payload := fmt.Sprintf("%x", a.digest)
		res, err := k.c.Verify(withReqID(ctx, &id), api.VerifyRequest{KID: a.kid, PayloadB3: payload, Sigs: a.sigs})
		if err != nil {
			k.errorf("verify %s: %v", a.kid, err)
			continue
		}
		k.l.expectAudit(auditWant{reqID: id, ops: []string{"verify"}})
		if !res.OK {
			k.errorf("verify: the acknowledged signature by %s does not verify on the restarted server: %+v", a.kid, res.Details)
		}
	}
	for _, a := range b.wraps {
		if k.hasVersion(ctx, "wrap", a.kid) == nil {
			continue
		}
		var id string
		res, err := k.c.Unwrap(withReqID(ctx, &id), api.UnwrapRequest{WrappedB64: a.envelope})
		if err != nil {
			k.errorf("unwrap of an envelope acknowledged by %s: %v", a.kid, err)
			continue
		}
		k.l.expectAudit(auditWant{reqID: id, ops: []string{"unwrap"}, kid: res.KID})
		if res.KID != a.kid || res.PlaintextKeyB64 != a.plaintext {
			k.errorf("unwrap of an envelope acknowledged by %s gave another key or kid (%s)", a.kid, res.KID)
		}
	}
}

// auditLine is a line of the audit log as doc.go describes it: a record, or
// a checkpoint (which has "checkpoint" set).
type auditLine struct {
	Checkpoint *uint64 `json:"checkpoint"`
	Seq        uint64  `json:"seq"`
	Op         string  `json:"op"`
	Kid        string  `json:"kid"`
	InputB3    string  `json:"input_b3"`
	Result     string  `json:"result"`
	RequestID  string  `json:"request_id"`
}

// segmentV2Header begins every audit file in segment format v2 (doc.go's
// "Files"); the lines follow it, then zeros up to the file's size.
const segmentV2Header = "ron-kms audit segment v2\n"

// auditIndex indexes the records of the audit log under a data directory by
// request id, incrementally: each update parses only the complete lines
// added since the last one. What it indexed must never go away.
type auditIndex struct {
	dir      string
	consumed map[string]int64 // file name → bytes of complete lines indexed
	records  map[string]auditLine
	lines    int
}

func newAuditIndex(dataDir string) *auditIndex {
	return &auditIndex{dir: filepath.Join(dataDir, audit.DirName), consumed: map[string]int64{}, records: map[string]auditLine{}}
}

// update indexes the complete lines added since the last call. An
// incomplete last line (a torn write) is left for later: it was never
// acknowledged and the next server start cuts it off.
func (x *auditIndex) update() error {
	ents, err := os.ReadDir(x.dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "audit-") && strings.HasSuffix(e.Name(), ".log") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // in order up to audit-999999.log
	for name := range x.consumed {
		if !slices.Contains(names, name) {
			return fmt.Errorf("%s, indexed before, is gone", name)
		}
	}
	for _, n := range names {
		if err := x.updateFile(n); err != nil {
			return err
		}
	}
	return nil
}

func (x *auditIndex) updateFile(name string) error {
	f, err := os.Open(filepath.Join(x.dir, name))
	if err != nil {
		return err
	}
	defer f.Close()
	off := x.consumed[name]
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() < off {
		return fmt.Errorf("%s shrank from %d to %d bytes: complete records were removed", name, off, fi.Size())
	}
	data := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(data, off); err != nil {
		return err
	}
	if off == 0 {
		// A file in segment format v2 starts with a header line; one that
		// is being created may hold only a part of it so far.
		if bytes.HasPrefix(data, []byte(segmentV2Header)) {
			off = int64(len(segmentV2Header))
			data = data[off:]
		} else if h, _, _ := bytes.Cut(data, []byte{0}); bytes.HasPrefix([]byte(segmentV2Header), h) {
			return nil
		}
	}
	if j := bytes.IndexByte(data, 0); j >= 0 {
		data = data[:j] // v2's zero padding: no line holds a NUL
	}
	i := bytes.LastIndexByte(data, '\n')
	if i < 0 {
		x.consumed[name] = off
		return nil
	}
	data = data[:i+1]
	x.consumed[name] = off + int64(len(data))
	for len(data) > 0 {
		j := bytes.IndexByte(data, '\n')
		line := data[:j]
		data = data[j+1:]
		var l auditLine
		if err := json.Unmarshal(line, &l); err != nil {
			return fmt.Errorf("%s: a complete line does not parse: %v", name, err)
		}
		if l.Checkpoint != nil {
			continue
		}
		x.lines++
		if l.RequestID == "" {
			continue
		}
		if prev, dup := x.records[l.RequestID]; dup {
			return fmt.Errorf("%s: request_id %s is in two records (seq %d and %d)", name, l.RequestID, prev.Seq, l.Seq)
		}
		x.records[l.RequestID] = l
	}
	return nil
}

// verifyCLI runs `ron-kms audit verify --data-dir D` — audit.Verify with the
// audit key in D/audit.pub, in the uninstrumented binary, which is much
// faster than under -race — and reports whether the log ended with a torn
// line (a warning, not an error: a crash mid-write leaves one).
func verifyCLI(bin, dataDir string) (summary string, torn bool, err error) {
	cmd := exec.Command(bin, "audit", "verify", "--data-dir", dataDir)
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	if err := cmd.Run(); err != nil {
		return "", false, fmt.Errorf("ron-kms audit verify: %v\n%s%s", err, out.Bytes(), errw.Bytes())
	}
	return strings.TrimSpace(out.String()), strings.Contains(errw.String(), "incomplete line"), nil
}

// verifyInProcess runs audit.Verify on the log under dataDir with the key
// in dataDir/audit.pub.
func verifyInProcess(dataDir string) (audit.Report, error) {
	pub, err := audit.ReadPublicKeyFile(dataDir)
	if err != nil {
		return audit.Report{}, err
	}
	rep, err := audit.Verify(filepath.Join(dataDir, audit.DirName), pub)
	if err != nil {
		return rep, fmt.Errorf("audit.Verify: %w (%d records verified before it)", err, rep.Records)
	}
	return rep, nil
}

// missing checks the wanted records against the scan and returns a
// description of each that is absent or does not match.
func (x *auditIndex) missing(wants []auditWant) []string {
	var bad []string
	for _, w := range wants {
		if w.reqID == "" {
			bad = append(bad, fmt.Sprintf("an acknowledged %s answer had no X-Request-Id", w.ops[0]))
			continue
		}
		r, ok := x.records[w.reqID]
		var why string
		switch {
		case !ok:
			why = "no record"
		case !slices.Contains(w.ops, r.Op):
			why = fmt.Sprintf("record seq %d has op %q", r.Seq, r.Op)
		case r.Result != audit.ResultOK:
			why = fmt.Sprintf("record seq %d has result %q", r.Seq, r.Result)
		case w.kid != "" && r.Kid != w.kid:
			why = fmt.Sprintf("record seq %d has kid %q, the answer said %q", r.Seq, r.Kid, w.kid)
		case w.inputB3 != "" && r.InputB3 != w.inputB3:
			why = fmt.Sprintf("record seq %d has input_b3 %s, want the BLAKE3 of the input, %s", r.Seq, r.InputB3, w.inputB3)
		}
		if why != "" {
			bad = append(bad, fmt.Sprintf("acknowledged %s (request %s, kid %q): %s", w.ops[0], w.reqID, w.kid, why))
		}
	}
	return bad
}
