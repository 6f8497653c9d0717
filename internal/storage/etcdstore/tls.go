package etcdstore

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSFiles names the PEM files of the client's TLS to etcd
// (serve --etcd-cacert, --etcd-cert, --etcd-key). CACert alone verifies the
// members against that CA; Cert and Key, given together, add a client
// certificate. The key file is secret; it is read once, at Open.
type TLSFiles struct {
	CACert, Cert, Key string
}

// Config builds the tls.Config: TLS 1.2 at least (etcd's own minimum), the
// CA pool from CACert (else the system pool), and the client certificate.
func (f *TLSFiles) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.CACert != "" {
		pem, err := os.ReadFile(f.CACert)
		if err != nil {
			return nil, fmt.Errorf("etcdstore: --etcd-cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcdstore: --etcd-cacert %s holds no PEM certificate", f.CACert)
		}
		cfg.RootCAs = pool
	}
	switch {
	case f.Cert != "" && f.Key != "":
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("etcdstore: --etcd-cert/--etcd-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case f.Cert != "" || f.Key != "":
		return nil, fmt.Errorf("etcdstore: --etcd-cert and --etcd-key go together")
	}
	return cfg, nil
}
