package keystore

// This file wrote testdata/v1store (see its README). It is kept for the
// record and skipped unless RON_KMS_WRITE_V1_FIXTURE names the directory to
// write to; run at a commit whose key records are version 1 (JSON k/<name>
// plus sealed seeds under s/<name>/<version>) it makes the fixture again.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/seal"
	"github.com/ron-kms/ron-kms/internal/storage/boltstore"
)

// v1FixtureKEK is the key-encryption key of testdata/v1store: 32 bytes
// 0x00, 0x01, ..., 0x1f. Test material only.
func v1FixtureKEK() []byte {
	kek := make([]byte, 32)
	for i := range kek {
		kek[i] = byte(i)
	}
	return kek
}

// v1Manifest is what testdata/v1store/manifest.json says the fixture holds.
type v1Manifest struct {
	Keys       []v1Key      `json:"keys"`
	Signatures []v1Sig      `json:"signatures"`
	Wrapped    []v1Envelope `json:"wrapped"`
	OpIDs      []v1OpID     `json:"op_ids"`
}

type v1Key struct {
	Name string `json:"name"`
	// Record is the key's metadata as the old code returned it (Key's
	// JSON), with every version's public key.
	Record json.RawMessage `json:"record"`
	// Signs says whether the current version still signs.
	Signs bool `json:"signs"`
}

type v1Sig struct {
	KID     string `json:"kid"`
	Message string `json:"message"`
	Parts   []Part `json:"parts"`
	// Valid says whether it must still verify (its version is enabled).
	Valid bool `json:"valid"`
}

type v1Envelope struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"` // wrap or encrypt
	Blob      []byte `json:"blob"`
	AAD       string `json:"aad"`
	Plaintext string `json:"plaintext"`
}

type v1OpID struct {
	Tenant, Purpose, Alg, OpID string
	Name                       string
}

func TestWriteV1Fixture(t *testing.T) {
	dir := os.Getenv("RON_KMS_WRITE_V1_FIXTURE")
	if dir == "" {
		t.Skip("RON_KMS_WRITE_V1_FIXTURE not set")
	}
	ctx := context.Background()
	st, err := boltstore.Open(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealer, err := seal.NewAESGCM(v1FixtureKEK())
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ks, err := Open(ctx, Config{Store: st, Sealer: sealer, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	var m v1Manifest
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	signNow := func(name string, valid *[]int) {
		msg := "fixture message for " + name + " at " + clock.String()
		s, err := ks.Sign(ctx, Ref{Name: name}, []byte(msg), Options{})
		must(err)
		m.Signatures = append(m.Signatures, v1Sig{KID: s.KID, Message: msg, Parts: s.Parts})
		*valid = append(*valid, len(m.Signatures)-1)
	}
	mk := func(alg, opID string, labels map[string]string) *Key {
		k, err := ks.Create(ctx, CreateParams{Tenant: "acme", Purpose: "fixture", Alg: alg, Labels: labels, OpID: opID})
		must(err)
		if opID != "" {
			m.OpIDs = append(m.OpIDs, v1OpID{Tenant: "acme", Purpose: "fixture", Alg: alg, OpID: opID, Name: k.Name})
		}
		return k
	}
	var sigIdx []int
	// Ed25519: labels, op_id, three versions, v1 disabled, auto-rotation.
	ed := mk("ed25519", "op-ed25519-1", map[string]string{"team": "payments", "env": "prod"})
	signNow(ed.Name, &sigIdx)
	clock = clock.Add(time.Hour)
	_, err = ks.Rotate(ctx, ed.Name, "op-rotate-ed-1")
	must(err)
	signNow(ed.Name, &sigIdx)
	clock = clock.Add(time.Hour)
	_, err = ks.Rotate(ctx, ed.Name, "")
	must(err)
	signNow(ed.Name, &sigIdx)
	_, err = ks.Transition(ctx, ed.Name, 1, ActionDisable)
	must(err)
	days := uint32(90)
	_, err = ks.Configure(ctx, ed.Name, KeyConfig{AutoRotateDays: &days})
	must(err)

	// ML-DSA-65: v1 destroyed (erased by the scheduler), v2 current.
	ml := mk("ml-dsa-65", "", nil)
	signNow(ml.Name, &sigIdx)
	_, err = ks.Rotate(ctx, ml.Name, "")
	must(err)
	signNow(ml.Name, &sigIdx)
	_, err = ks.Transition(ctx, ml.Name, 1, ActionDestroy)
	must(err)
	clock = clock.Add(8 * day)
	_, err = ks.RunDue(ctx)
	must(err)

	// Composite: v1 destroy_scheduled (not yet erased), v2 current.
	co := mk("mldsa65-ed25519", "op-composite-1", map[string]string{"k": "v"})
	signNow(co.Name, &sigIdx)
	_, err = ks.Rotate(ctx, co.Name, "")
	must(err)
	signNow(co.Name, &sigIdx)
	_, err = ks.Transition(ctx, co.Name, 1, ActionDestroy)
	must(err)

	// The rest: one version each.
	for _, alg := range []string{"ml-dsa-44", "ml-dsa-87", "slh-dsa-sha2-128s"} {
		k := mk(alg, "", nil)
		signNow(k.Name, &sigIdx)
	}
	for _, alg := range []string{"x25519", "ml-kem-768", "mlkem768-x25519"} {
		k := mk(alg, "", nil)
		_, err = ks.Rotate(ctx, k.Name, "")
		must(err)
		w, err := ks.Wrap(ctx, Ref{Name: k.Name}, []byte("data key of "+alg), []byte("aad"))
		must(err)
		m.Wrapped = append(m.Wrapped, v1Envelope{Name: k.Name, Kind: "wrap", Blob: w.Envelope, AAD: "aad", Plaintext: "data key of " + alg})
	}
	aes := mk("aes-256-gcm", "", nil)
	e, err := ks.Encrypt(ctx, Ref{Name: aes.Name}, []byte("secret text"), []byte("ctx"))
	must(err)
	m.Wrapped = append(m.Wrapped, v1Envelope{Name: aes.Name, Kind: "encrypt", Blob: e.Ciphertext, AAD: "ctx", Plaintext: "secret text"})

	// A verify-only key imported from a public key.
	pubOf, err := ks.Get(ctx, ed.Name)
	must(err)
	vo, err := ks.Import(ctx, ImportParams{Tenant: "acme", Purpose: "imported", Alg: "ed25519", PublicKey: pubOf.Versions[0].PublicKey, OpID: "op-import-1"})
	must(err)
	_ = vo

	for _, i := range sigIdx {
		s := &m.Signatures[i]
		_, err := ks.Verify(ctx, Ref{}, []byte(s.Message), s.Parts, Options{})
		_ = err
	}
	// Record every key as the old code sees it now.
	keys, _, err := ks.List(ctx, ListParams{Prefix: "", Limit: 100})
	must(err)
	for _, k := range keys {
		b, err := json.Marshal(k)
		must(err)
		_, err = ks.Sign(ctx, Ref{Name: k.Name}, []byte("probe"), Options{})
		m.Keys = append(m.Keys, v1Key{Name: k.Name, Record: b, Signs: err == nil})
	}
	for i := range m.Signatures {
		s := &m.Signatures[i]
		name, n, err := parseKIDForFixture(s.KID)
		must(err)
		_, err = ks.Verify(ctx, Ref{Name: name, Version: n}, []byte(s.Message), s.Parts, Options{})
		s.Valid = err == nil
	}
	b, err := json.MarshalIndent(m, "", "  ")
	must(err)
	must(os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644))
	t.Logf("kek %s", hex.EncodeToString(v1FixtureKEK()))
}

// parseKIDForFixture splits name#vN.
func parseKIDForFixture(kid string) (string, uint32, error) {
	i := strings.LastIndex(kid, "#v")
	if i < 0 {
		return "", 0, fmt.Errorf("bad kid %q", kid)
	}
	n, err := strconv.ParseUint(kid[i+2:], 10, 32)
	return kid[:i], uint32(n), err
}
