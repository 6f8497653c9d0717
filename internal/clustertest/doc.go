// Package clustertest holds the multi-node tests of ron-kms: three real
// ron-kms processes (the binary built from this module) on a real
// three-member etcd cluster on loopback (internal/etcdtest). They check what
// a cluster promises its users: concurrent rotations from every node give
// contiguous versions, a history of operations from all nodes is
// linearizable (checked with porcupine) while an etcd member is killed and
// restarted, losing one member costs no request, losing quorum fails writes
// closed and keeps verify open, a node killed mid-rotation loses nothing and
// its audit chain verifies, and a rotation on one node reaches the others
// within a measured delay.
//
// The package has no code outside its tests.
package clustertest
