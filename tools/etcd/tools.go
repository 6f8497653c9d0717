//go:build tools

// Package tools pins the etcd server that ron-kms's cluster tests and
// scripts/cluster-up run. The server is built from its Go module with
//
//	cd tools/etcd && go build -o BIN go.etcd.io/etcd/server/v3
//
// at the version of the etcd client in the main module's go.mod (a test in
// internal/etcdtest holds the two together). It is a module of its own so
// that the server's dependencies stay out of the main module.
package tools

import _ "go.etcd.io/etcd/server/v3"
