package server

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/keystore"
	"github.com/ron-kms/ron-kms/internal/logtest"
	"github.com/ron-kms/ron-kms/internal/seal"
)

// running is a server on a real loopback listener.
type running struct {
	srv    *Server
	url    string
	stop   context.CancelFunc
	done   chan error
	logBuf *logtest.Buffer
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	logs := &logtest.Buffer{}
	// Debug level: request lines are logged too, so that every test's log
	// is checked for what must never be in it.
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{srv: srv, stop: cancel, done: make(chan error, 1), logBuf: logs, url: "http://" + ln.Addr().String()}
	if cfg.TLSCert != "" {
		r.url = "https://" + ln.Addr().String()
	}
	go func() { r.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { r.shutdown(t) })
	return r
}

// shutdown stops serving (gracefully) and closes the server; idempotent.
func (r *running) shutdown(t *testing.T) {
	if r.srv == nil {
		return
	}
	r.stop()
	if err := <-r.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("serve: %v", err)
	}
	if err := r.srv.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	r.srv = nil
}

func testConfig(t *testing.T) Config {
	cfg := Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen = "127.0.0.1:0"
	return cfg
}

func adminClient(t *testing.T, r *running, dataDir string) *client.Client {
	t.Helper()
	tok, err := os.ReadFile(filepath.Join(dataDir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(r.url, string(tok), nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRestart: create keys, rotate, sign, stop the server, start it again on
// the same data dir: keys, versions and op_id results are all there and old
// signatures verify.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)

	created, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519", OpID: "create-1"})
	if err != nil {
		t.Fatal(err)
	}
	name := created.Key.Name
	other, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	digest := strings.Repeat("ab", 32)
	sig1, err := c.Sign(ctx, api.SignRequest{KID: name, PayloadB3: digest})
	if err != nil {
		t.Fatal(err)
	}
	rot, err := c.RotateKey(ctx, name, "rotate-1")
	if err != nil {
		t.Fatal(err)
	}
	sig2, err := c.Sign(ctx, api.SignRequest{KID: name, PayloadB3: digest})
	if err != nil {
		t.Fatal(err)
	}
	r.shutdown(t)

	r = start(t, cfg)
	c = adminClient(t, r, cfg.DataDir)
	k, err := c.GetKey(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if k.CurrentVersion != 2 || len(k.Versions) != 2 || k.KID != rot.KID {
		t.Fatalf("after restart: current %d, %d versions, kid %s", k.CurrentVersion, len(k.Versions), k.KID)
	}
	list, err := c.ListKeys(ctx, client.ListOptions{Tenant: "acme"})
	if err != nil || len(list.Keys) != 2 {
		t.Fatalf("list after restart: %v, %v", list, err)
	}
	if _, err := c.GetKey(ctx, other.Key.Name); err != nil {
		t.Fatalf("second key lost: %v", err)
	}
	replay, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "docs", Alg: "ed25519", OpID: "create-1"})
	if err != nil || replay.KID != created.KID {
		t.Fatalf("create op_id after restart: %+v %v", replay, err)
	}
	rot2, err := c.RotateKey(ctx, name, "rotate-1")
	if err != nil || *rot2 != *rot {
		t.Fatalf("rotate op_id after restart: %+v %v", rot2, err)
	}
	_, err = c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "other", Alg: "ed25519", OpID: "create-1"})
	if !errors.Is(err, client.ErrConflict) {
		t.Fatalf("op_id with another body after restart: %v", err)
	}
	for _, s := range []*api.SignResponse{sig1, sig2} {
		v, err := c.Verify(ctx, api.VerifyRequest{KID: s.KID, PayloadB3: digest, Sigs: s.Sigs})
		if err != nil || !v.OK {
			t.Fatalf("old signature %s after restart: %+v %v", s.KID, v, err)
		}
	}
	// Independent check: crypto/ed25519 with the public key GET returned.
	pub, _ := api.DecodeB64("pub", k.Versions[0].PublicKeyB64)
	sig, _ := api.DecodeB64("sig", sig1.Sigs[0].SignatureB64)
	msg, _ := api.DecodePayloadB3(digest)
	if !ed25519.Verify(pub, msg, sig) {
		t.Fatal("crypto/ed25519 rejects the v1 signature")
	}
	if s, err := c.Sign(ctx, api.SignRequest{KID: name, PayloadB3: digest}); err != nil || !strings.HasSuffix(s.KID, "#v2") {
		t.Fatalf("sign after restart: %+v %v", s, err)
	}
	if _, err := c.Sign(ctx, api.SignRequest{KID: sig1.KID, PayloadB3: digest}); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("sign with the old version: %v", err)
	}
}

func TestDataDirFiles(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	r.shutdown(t)
	for _, f := range []string{AdminTokenFile, RootKeyFile, DBFile} {
		st, err := os.Stat(filepath.Join(cfg.DataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v; group and others must have no access", f, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(cfg.DataDir); st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", st.Mode().Perm())
	}
	// A root.key readable by others stops the server from starting.
	os.Chmod(filepath.Join(cfg.DataDir, RootKeyFile), 0o644)
	_, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if !errors.Is(err, seal.ErrInsecurePermissions) {
		t.Fatalf("open with a 0644 root.key: %v", err)
	}
	// Another root.key does not open the store.
	os.Remove(filepath.Join(cfg.DataDir, RootKeyFile))
	_, err = Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if !errors.Is(err, keystore.ErrWrongKEK) {
		t.Fatalf("open with a new root.key: %v", err)
	}
}

func TestPassphraseKEK(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.PassphraseEnv = "RON_KMS_TEST_PASSPHRASE"
	t.Setenv("RON_KMS_TEST_PASSPHRASE", "correct horse battery staple")
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "t", Purpose: "p", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	r.shutdown(t)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, RootKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("passphrase mode wrote root.key: %v", err)
	}
	r = start(t, cfg)
	c = adminClient(t, r, cfg.DataDir)
	if _, err := c.Sign(ctx, api.SignRequest{KID: k.Key.Name, PayloadB3: strings.Repeat("0", 64)}); err != nil {
		t.Fatalf("sign after restart with the passphrase: %v", err)
	}
	r.shutdown(t)
	t.Setenv("RON_KMS_TEST_PASSPHRASE", "wrong")
	if _, err := Open(ctx, cfg, slog.New(slog.DiscardHandler)); !errors.Is(err, keystore.ErrWrongKEK) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	t.Setenv("RON_KMS_TEST_PASSPHRASE", "")
	if _, err := Open(ctx, cfg, slog.New(slog.DiscardHandler)); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("empty passphrase: %v", err)
	}
}

func TestAmnesia(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.Store = "memory"
	r := start(t, cfg)
	c, _ := client.New(r.url, r.srv.AmnesiaAdminToken(), nil)
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "t", Purpose: "p", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sign(ctx, api.SignRequest{KID: k.KID, PayloadB3: strings.Repeat("1", 64)}); err != nil {
		t.Fatal(err)
	}
	r.shutdown(t)
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("amnesia mode touched the disk: %v", err)
	}
}

func TestListenPolicy(t *testing.T) {
	for _, tc := range []struct {
		listen string
		tls    bool
		insec  bool
		ok     bool
	}{
		{"127.0.0.1:9446", false, false, true},
		{"localhost:9446", false, false, true},
		{"[::1]:9446", false, false, true},
		{"0.0.0.0:9446", false, false, false},
		{":9446", false, false, false},
		{"10.1.2.3:9446", false, false, false},
		{"0.0.0.0:9446", false, true, true},
		{"0.0.0.0:9446", true, false, true},
	} {
		cfg := Defaults()
		cfg.Listen, cfg.InsecurePlaintext = tc.listen, tc.insec
		if tc.tls {
			cfg.TLSCert, cfg.TLSKey = "c.pem", "k.pem"
		}
		err := cfg.Check()
		if (err == nil) != tc.ok {
			t.Errorf("listen %s tls=%v insecure=%v: %v", tc.listen, tc.tls, tc.insec, err)
		}
	}
}

func TestTLS(t *testing.T) {
	cfg := testConfig(t)
	cfg.TLSCert, cfg.TLSKey = writeSelfSigned(t)
	r := start(t, cfg)
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(cfg.TLSCert)
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get(r.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Fatalf("healthz over TLS: %d, tls %v", resp.StatusCode, resp.TLS != nil)
	}
	// Plain HTTP to the TLS port does not get an answer from the API.
	if resp, err := http.Get(strings.Replace(r.url, "https", "http", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS listener")
		}
	}
}

func writeSelfSigned(t *testing.T) (certFile, keyFile string) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ron-kms test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := x509.MarshalPKCS8PrivateKey(priv)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600)
	return certFile, keyFile
}

// TestGracefulShutdown: a request in flight when shutdown starts is
// answered; new connections are refused afterwards.
func TestGracefulShutdown(t *testing.T) {
	cfg := testConfig(t)
	r := start(t, cfg)
	tok, _ := os.ReadFile(filepath.Join(cfg.DataDir, AdminTokenFile))
	c, _ := client.New(r.url, string(tok), nil)
	k, err := c.CreateKey(context.Background(), api.CreateKeyRequest{Tenant: "t", Purpose: "p", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"kid":"` + k.Key.Name + `","payload_b3":"` + strings.Repeat("7", 64) + `"}`
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", r.url+"/v1/kms/sign", pr)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.ContentLength = int64(len(body))
	type result struct {
		status int
		err    error
	}
	res := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res <- result{err: err}
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		res <- result{status: resp.StatusCode}
	}()
	io.WriteString(pw, body[:10]) // the request is now in flight
	time.Sleep(100 * time.Millisecond)
	r.stop() // begin graceful shutdown
	time.Sleep(100 * time.Millisecond)
	io.WriteString(pw, body[10:])
	pw.Close()
	got := <-res
	if got.err != nil || got.status != 200 {
		t.Fatalf("in-flight request during shutdown: status %d, %v", got.status, got.err)
	}
	if err := <-r.done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	r.done <- nil // for the cleanup's shutdown
	if _, err := http.Get(r.url + "/healthz"); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}

// TestObservability: /metrics names the contract's metrics, /version and
// /readyz answer, and the logs carry request ids but no token, key or
// payload.
func TestObservability(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "t", Purpose: "p", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	digest := strings.Repeat("5e", 32)
	s, err := c.Sign(ctx, api.SignRequest{KID: k.KID, PayloadB3: digest})
	if err != nil {
		t.Fatal(err)
	}
	c.Sign(ctx, api.SignRequest{KID: k.KID, PayloadB3: "zz"}) // a failure
	anon, _ := client.New(r.url, "", nil)
	anon.Sign(ctx, api.SignRequest{KID: k.KID, PayloadB3: digest}) // a rejection
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`kms_ops_total{alg="ed25519",op="sign"} 1`,
		`kms_ops_total{alg="ed25519",op="create"} 1`,
		`kms_op_latency_seconds_bucket{alg="ed25519",op="sign"`,
		`http_requests_total{method="POST",route="POST /v1/kms/sign",status="200"} 1`,
		`http_requests_total{method="POST",route="POST /v1/kms/sign",status="400"} 1`,
		`kms_inflight_requests`,
		`kms_failures_total{kind="BadRequest",op="sign"} 1`,
		`kms_rejected_total{reason="Unauthenticated"} 1`,
	} {
		if !strings.Contains(string(m), want) && !strings.Contains(string(m), "# HELP "+want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(m), k.Key.Name[len(k.Key.Name)-36:]) {
		t.Error("/metrics carries a key uuid")
	}
	v, err := c.Version(ctx)
	if err != nil || v.GoVersion == "" || len(v.Algs) != 10 || v.Store != "bolt" || !strings.HasPrefix(v.CompositeSigs, "draft-ietf-lamps-pq-composite-sigs-") {
		t.Fatalf("/version: %+v %v", v, err)
	}
	resp, err = http.Get(r.url + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/readyz: %v %v", resp, err)
	}
	resp.Body.Close()

	logs := r.logBuf.String()
	tok, _ := os.ReadFile(filepath.Join(cfg.DataDir, AdminTokenFile))
	for what, secret := range map[string]string{
		"token": strings.TrimSpace(string(tok)), "payload": digest, "signature": s.Sigs[0].SignatureB64,
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains the %s", what)
		}
	}
	if !strings.Contains(logs, `"route":"POST /v1/kms/sign"`) || !strings.Contains(logs, `"request_id"`) {
		t.Errorf("the log lacks request lines:\n%s", logs)
	}
}

// TestClientSigner: the client's crypto.Signer signs through the server and
// the result verifies with crypto/ed25519 against Public().
func TestClientSigner(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	r := start(t, cfg)
	c := adminClient(t, r, cfg.DataDir)
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "t", Purpose: "p", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.NewSigner(ctx, c, k.Key.Name)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("a message signed through crypto.Signer")
	sig, err := s.Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(s.Public().(ed25519.PublicKey), msg, sig) {
		t.Fatal("signature from the Signer does not verify")
	}
	if _, err := s.Sign(nil, msg, crypto.SHA256); err == nil {
		t.Fatal("pre-hashed signing accepted for ed25519")
	}
	if _, err := client.NewSigner(ctx, c, "t/p/ed25519/0190b8a4-4f7c-7b7e-8a1d-1234567890ab"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("signer for an unknown key: %v", err)
	}
}
