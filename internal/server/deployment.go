package server

import (
	"github.com/ron-kms/ron-kms/internal/deployment"
	"github.com/ron-kms/ron-kms/internal/storage"
)

// DefaultEtcdPrefix is the etcd prefix of --etcd-prefix's default.
const DefaultEtcdPrefix = "ron-kms/"

// Sources of a deployment's key-encryption key: a passphrase deployment
// holds its Argon2id parameters under deployment.ParamsKey; any other
// takes its key from a KEK file.
const (
	KEKSourceFile       = "kek-file"   // --kek-file, the same file on every node
	KEKSourcePassphrase = "passphrase" // --kek-passphrase-env
)

// deploymentMutations are the writes that start a new deployment, in one
// transaction: the marker (deployment.MarkerKey), the KEK check value
// (deployment.KEKCheckKey, sealed under this node's key) and, when the key
// comes from a passphrase, its parameters. None may exist yet, so that two
// nodes starting at once on an empty prefix make one deployment bound to
// one key: the loser reads the winner's and joins it, or is refused.
func deploymentMutations(marker, kekCheck, params []byte) []storage.Mutation {
	muts := []storage.Mutation{
		{Key: deployment.MarkerKey, Value: marker, Expect: storage.MustNotExist},
		{Key: deployment.KEKCheckKey, Value: kekCheck, Expect: storage.MustNotExist},
	}
	if params != nil {
		muts = append(muts, storage.Mutation{Key: deployment.ParamsKey, Value: params, Expect: storage.MustNotExist})
	}
	return muts
}
