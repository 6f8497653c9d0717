package loadgen

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"runtime"

	"github.com/ron-kms/ron-kms/internal/alg"
	"github.com/ron-kms/ron-kms/internal/sig"
	"github.com/ron-kms/ron-kms/internal/symm"
	"github.com/ron-kms/ron-kms/internal/wrap"
)

// RunRaw measures cfg.Op (or each operation of cfg.Mix) with its algorithm
// in-process, with no service: the baseline that service figures are a
// fraction of. Ed25519 signing and verification use crypto/ed25519
// directly; other signature algorithms, batch verification, wrap and unwrap
// use the project's internal/sig and internal/wrap schemes, encrypt
// internal/symm. Concurrency defaults to runtime.GOMAXPROCS; Rate paces the
// operations as it paces requests. Keys (Keys of each operation) are
// generated in memory and never leave the process; KIDs are refused. A
// batched operation performs Batch operations per "request".
func RunRaw(ctx context.Context, cfg Config, progress Progress) (Result, error) {
	cfg, ops, err := cfg.normalize(true, runtime.GOMAXPROCS(0))
	if err != nil {
		return Result{}, err
	}
	calls := make([]call, len(ops))
	keys := 0
	for i := range ops {
		if calls[i], err = ops[i].spec.raw(ops[i].cfg); err != nil {
			return Result{}, err
		}
		ops[i].keys = ops[i].cfg.Keys
		keys += ops[i].keys
	}
	d := drive(ctx, workload(cfg, ops, calls, nil), progress)
	return cfg.result("raw", "", ops, keys, d), nil
}

// rawName is the key name bound into raw envelopes and ciphertexts.
func rawName(a string) string {
	return "bench/load/" + a + "/00000000-0000-4000-8000-000000000000"
}

// rawMessage is what the service would sign: the 32 bytes of the payload_b3
// digest, or a random message of PayloadBytes.
func rawMessage(cfg Config) []byte {
	m := make([]byte, 32)
	if cfg.PayloadBytes > 0 {
		m = make([]byte, cfg.PayloadBytes)
	}
	rand.Read(m)
	return m
}

// rawSigKey is one in-process signing key.
type rawSigKey struct {
	sign   func(msg []byte) ([]byte, error)
	verify func(msg, s []byte) error
	pub    sig.PublicKey // for sig.VerifyBatch
}

// rawSigOverrides replace the internal/sig implementation of an algorithm
// with the standard library's, the reference raw speed.
var rawSigOverrides = map[string]func(seed []byte) rawSigKey{
	alg.Ed25519: func(seed []byte) rawSigKey {
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		return rawSigKey{
			sign: func(msg []byte) ([]byte, error) { return ed25519.Sign(priv, msg), nil },
			verify: func(msg, s []byte) error {
				if !ed25519.Verify(pub, msg, s) {
					return sig.ErrInvalidSignature
				}
				return nil
			},
		}
	},
}

func rawSigKeys(cfg Config) ([]rawSigKey, error) {
	s, err := sig.For(cfg.Alg)
	if err != nil {
		return nil, err
	}
	keys := make([]rawSigKey, cfg.Keys)
	for i := range keys {
		seed := s.GenerateSeed()
		priv, err := s.NewPrivateKey(seed)
		if err != nil {
			return nil, err
		}
		keys[i] = rawSigKey{
			sign:   func(msg []byte) ([]byte, error) { return priv.Sign(msg, nil) },
			verify: func(msg, sg []byte) error { return priv.Public().Verify(msg, sg, nil) },
		}
		if o, ok := rawSigOverrides[cfg.Alg]; ok {
			keys[i] = o(seed)
		}
		keys[i].pub = priv.Public()
		clear(seed)
	}
	return keys, nil
}

// rawOutcome is the outcome of items operations that all succeeded, or of
// the first failure.
func rawOutcome(items int, err error) outcome {
	if err != nil {
		return outcome{codes: []string{"raw"}}
	}
	return outcome{ok: true, items: items}
}

func rawSign(cfg Config) (call, error) {
	keys, err := rawSigKeys(cfg)
	if err != nil {
		return nil, err
	}
	msg := rawMessage(cfg)
	return func(_ context.Context, w *worker) outcome {
		for j := range cfg.Batch {
			if _, err := keys[w.slot(j, cfg.Batch, len(keys))].sign(msg); err != nil {
				return rawOutcome(0, err)
			}
		}
		return rawOutcome(cfg.Batch, nil)
	}, nil
}

// rawSigned is a message signed by every key: sigs[i] by keys[i].
func rawSigned(cfg Config) ([]rawSigKey, []byte, [][]byte, error) {
	keys, err := rawSigKeys(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	msg := rawMessage(cfg)
	sigs := make([][]byte, len(keys))
	for i, k := range keys {
		if sigs[i], err = k.sign(msg); err != nil {
			return nil, nil, nil, err
		}
	}
	return keys, msg, sigs, nil
}

func rawVerify(cfg Config) (call, error) {
	keys, msg, sigs, err := rawSigned(cfg)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, w *worker) outcome {
		i := w.index(len(keys))
		if err := keys[i].verify(msg, sigs[i]); err != nil {
			return outcome{codes: []string{codeVerifyFailed}}
		}
		return rawOutcome(1, nil)
	}, nil
}

func rawVerifyBatch(cfg Config) (call, error) {
	keys, msg, sigs, err := rawSigned(cfg)
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, w *worker) outcome {
		items := make([]sig.BatchItem, cfg.Batch)
		for j := range items {
			i := w.slot(j, cfg.Batch, len(keys))
			items[j] = sig.BatchItem{Key: keys[i].pub, Message: msg, Signature: sigs[i]}
		}
		_, errs := sig.VerifyBatch(items)
		o := outcome{ok: true}
		for _, e := range errs {
			if e != nil {
				o.codes = append(o.codes, codeVerifyFailed)
			} else {
				o.items++
			}
		}
		return o
	}, nil
}

func rawKEMKeys(cfg Config) ([]wrap.PrivateKey, error) {
	s, err := wrap.For(cfg.Alg)
	if err != nil {
		return nil, err
	}
	keys := make([]wrap.PrivateKey, cfg.Keys)
	for i := range keys {
		seed := s.GenerateSeed()
		if keys[i], err = s.NewPrivateKey(seed); err != nil {
			return nil, err
		}
		clear(seed)
	}
	return keys, nil
}

func rawData(cfg Config) []byte {
	b := make([]byte, cfg.PayloadBytes)
	rand.Read(b)
	return b
}

func rawWrap(cfg Config) (call, error) {
	keys, err := rawKEMKeys(cfg)
	if err != nil {
		return nil, err
	}
	name, data := rawName(cfg.Alg), rawData(cfg)
	return func(_ context.Context, w *worker) outcome {
		_, err := wrap.Wrap(keys[w.index(len(keys))].Public(), name, 1, nil, data)
		return rawOutcome(1, err)
	}, nil
}

func rawUnwrap(cfg Config) (call, error) {
	keys, err := rawKEMKeys(cfg)
	if err != nil {
		return nil, err
	}
	name, data := rawName(cfg.Alg), rawData(cfg)
	envs := make([][]byte, len(keys))
	for i, k := range keys {
		if envs[i], err = wrap.Wrap(k.Public(), name, 1, nil, data); err != nil {
			return nil, fmt.Errorf("loadgen: raw wrap fixture: %w", err)
		}
	}
	return func(_ context.Context, w *worker) outcome {
		i := w.index(len(keys))
		// Parse each time, as the service does with every request.
		env, err := wrap.Parse(envs[i])
		if err == nil {
			_, err = wrap.Unwrap(keys[i], env, nil)
		}
		return rawOutcome(1, err)
	}, nil
}

func rawEncrypt(cfg Config) (call, error) {
	keys := make([]*symm.Key, cfg.Keys)
	for i := range keys {
		kb := make([]byte, symm.KeySize)
		rand.Read(kb)
		k, err := symm.NewKey(kb)
		clear(kb)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	name, data := rawName(cfg.Alg), rawData(cfg)
	return func(_ context.Context, w *worker) outcome {
		_, err := keys[w.index(len(keys))].Encrypt(name, 1, data, nil)
		return rawOutcome(1, err)
	}, nil
}
