package etcdstore_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/etcdtest"
	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+".pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue writes a certificate for 127.0.0.1 with usage u and its key, and
// returns the two file names.
func (ca *testCA) issue(t *testing.T, dir, name string, u x509.ExtKeyUsage) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{u},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", kder)
	return certFile, keyFile
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestTLS runs the store against a member that serves clients over TLS
// only and requires a client certificate (serve --etcd-cacert, --etcd-cert,
// --etcd-key): with the CA and a client certificate it works; without the
// client certificate, or trusting another CA, the store cannot connect
// (ErrUnavailable, at Open or at the first call) and nothing is written.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	serverCert, serverKey := ca.issue(t, dir, "member", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)
	files := &etcdstore.TLSFiles{CACert: ca.file, Cert: clientCert, Key: clientKey}
	clientTLS, err := files.Config()
	if err != nil {
		t.Fatal(err)
	}
	root, err := etcdtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := etcdtest.Binary(root)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := etcdtest.Start(etcdtest.Config{Members: 1, Dir: t.TempDir(), Binary: bin,
		TLS: &etcdtest.TLS{CertFile: serverCert, KeyFile: serverKey, ClientCAFile: ca.file, Client: clientTLS}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	openWith := func(f *etcdstore.TLSFiles) *etcdstore.Store {
		t.Helper()
		s, err := etcdstore.Open(etcdstore.Options{Endpoints: cl.Endpoints(), Prefix: "tls/", TLS: f, DialTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	ctx := t.Context()
	good := openWith(files)
	if _, err := good.Apply(ctx, storage.Mutation{Key: "k", Value: []byte("v"), Expect: storage.MustNotExist}); err != nil {
		t.Fatalf("with the CA and a client certificate: %v", err)
	}

	other := newTestCA(t, dir, "other-ca")
	for name, f := range map[string]*etcdstore.TLSFiles{
		"no client certificate": {CACert: ca.file},
		"another CA":            {CACert: other.file, Cert: clientCert, Key: clientKey},
	} {
		// The client dials at Open (for DialTimeout), so the refusal
		// shows there or on the first call.
		s, err := etcdstore.Open(etcdstore.Options{Endpoints: cl.Endpoints(), Prefix: "tls/", TLS: f, DialTimeout: 2 * time.Second})
		if err == nil {
			_, err = s.Apply(ctx, storage.Mutation{Key: "other", Value: []byte("v"), Expect: storage.MustNotExist})
			s.Close()
		}
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s: %v, want ErrUnavailable", name, err)
		}
	}
	items, err := good.List(ctx, "", "", 0)
	if err != nil || len(items) != 1 {
		t.Fatalf("the prefix holds %d items (%v), want the one written with the right certificates", len(items), err)
	}
}
