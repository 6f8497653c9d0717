package seal

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Cheap parameters: the defaults take 64 MiB and are slow under -race.
func lightParams(t *testing.T) PassphraseParams {
	t.Helper()
	p, err := NewPassphraseParams(1, 64, 1)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDeriveKEK(t *testing.T) {
	p := lightParams(t)
	pass := []byte("correct horse battery staple")
	k1, err := p.DeriveKEK(pass)
	if err != nil {
		t.Fatal(err)
	}
	if len(k1) != KEKSize {
		t.Fatalf("KEK is %d bytes", len(k1))
	}
	k2, err := p.DeriveKEK(bytes.Clone(pass))
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("not deterministic (err %v)", err)
	}
	q := p
	q.Salt = bytes.Clone(p.Salt)
	q.Salt[0] ^= 1
	mustDiffer := func(what string, p PassphraseParams, pass []byte) {
		t.Helper()
		k, err := p.DeriveKEK(pass)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(k, k1) {
			t.Errorf("different %s gives the same KEK", what)
		}
	}
	mustDiffer("salt", q, pass)
	mustDiffer("fresh salt", lightParams(t), pass)
	mustDiffer("passphrase", p, []byte("correct horse battery stapler"))
	q = p
	q.Time = 2
	mustDiffer("time", q, pass)
	q = p
	q.MemoryKiB = 128
	mustDiffer("memory", q, pass)
	q = p
	q.Threads = 2
	mustDiffer("threads", q, pass)
}

func TestDeriveKEKPinned(t *testing.T) {
	// A regression pin, not a correctness vector (x/crypto/argon2 is tested
	// against RFC 9106): it fixes the KDF call (Argon2id, argument order,
	// output length), since a change would make every passphrase-sealed
	// record unopenable.
	p := PassphraseParams{Salt: []byte("0123456789abcdef"), Time: 1, MemoryKiB: 64, Threads: 1}
	k, err := p.DeriveKEK([]byte("password"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "73cba7a192f57cc8935bd573b08cc8e1788b2237989a1b24d9d088520db54696"
	if got := hex.EncodeToString(k); got != want {
		t.Fatalf("DeriveKEK = %s, want %s", got, want)
	}
}

func TestDeriveKEKRejects(t *testing.T) {
	p := lightParams(t)
	for _, pass := range [][]byte{nil, {}} {
		if k, err := p.DeriveKEK(pass); !errors.Is(err, ErrEmptyPassphrase) || k != nil {
			t.Errorf("empty passphrase: %v", err)
		}
	}
	bad := map[string]PassphraseParams{
		"zero":       {},
		"short salt": {Salt: make([]byte, SaltSize-1), Time: 1, MemoryKiB: 64, Threads: 1},
		"long salt":  {Salt: make([]byte, SaltSize+1), Time: 1, MemoryKiB: 64, Threads: 1},
		"time 0":     {Salt: p.Salt, Time: 0, MemoryKiB: 64, Threads: 1},
		"time big":   {Salt: p.Salt, Time: MaxArgon2Time + 1, MemoryKiB: 64, Threads: 1},
		"threads 0":  {Salt: p.Salt, Time: 1, MemoryKiB: 64, Threads: 0},
		"memory low": {Salt: p.Salt, Time: 1, MemoryKiB: 15, Threads: 2},
		"memory big": {Salt: p.Salt, Time: 1, MemoryKiB: MaxArgon2MemoryKiB + 1, Threads: 1},
	}
	for name, q := range bad {
		if _, err := q.DeriveKEK([]byte("pass")); !errors.Is(err, ErrParams) {
			t.Errorf("%s: %v, want ErrParams", name, err)
		}
		if _, err := NewPassphraseParams(q.Time, q.MemoryKiB, q.Threads); err == nil && len(q.Salt) == SaltSize {
			t.Errorf("NewPassphraseParams accepted %s", name)
		}
	}
}

func TestDefaultPassphraseParams(t *testing.T) {
	p := DefaultPassphraseParams()
	if p.Time != 3 || p.MemoryKiB != 64*1024 || p.Threads != 2 || len(p.Salt) != SaltSize {
		t.Fatalf("defaults %+v", p)
	}
	if bytes.Equal(p.Salt, DefaultPassphraseParams().Salt) {
		t.Fatal("salt is not random")
	}
}

func TestPassphraseParamsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kek.params")
	fresh := lightParams(t)
	p, created, err := LoadOrCreatePassphraseParamsWith(path, fresh)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Fatalf("params file mode %v, want 0600", fi.Mode())
	}
	q, created, err := LoadOrCreatePassphraseParams(path)
	if err != nil || created {
		t.Fatalf("reload: created=%v err=%v", created, err)
	}
	if !bytes.Equal(q.Salt, p.Salt) || q.Time != p.Time || q.MemoryKiB != p.MemoryKiB || q.Threads != p.Threads {
		t.Fatalf("reloaded %+v, want %+v", q, p)
	}
	k1, err := p.DeriveKEK([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := q.DeriveKEK([]byte("pw"))
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatal("reloaded params derive a different KEK")
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Equal(raw, p.Marshal()) {
		t.Fatalf("file holds %q", raw)
	}

	// Invalid fresh parameters are refused and nothing is written.
	path2 := filepath.Join(dir, "other.params")
	if _, _, err := LoadOrCreatePassphraseParamsWith(path2, PassphraseParams{}); !errors.Is(err, ErrParams) {
		t.Fatalf("invalid fresh params: %v", err)
	}
	if _, err := os.Stat(path2); err == nil {
		t.Fatal("invalid params were written")
	}

	// A corrupt file is reported, not replaced.
	if err := os.WriteFile(path, []byte(`{"kdf":"scrypt"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreatePassphraseParams(path); !errors.Is(err, ErrParams) {
		t.Fatalf("corrupt file: %v", err)
	}
	if err := os.WriteFile(path, bytes.Repeat([]byte(" "), maxParamsFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreatePassphraseParams(path); !errors.Is(err, ErrParams) {
		t.Fatalf("oversized file: %v", err)
	}
}

func TestParsePassphraseParamsStrict(t *testing.T) {
	const salt = `"AAECAwQFBgcICQoLDA0ODw=="` // 16 bytes
	good := `{"kdf":"argon2id","salt_b64":` + salt + `,"time":3,"memory_kib":65536,"threads":2}`
	p, err := ParsePassphraseParams([]byte(good))
	if err != nil {
		t.Fatalf("good params: %v", err)
	}
	if p.Time != 3 || p.MemoryKiB != 65536 || p.Threads != 2 || !bytes.Equal(p.Salt, []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}) {
		t.Fatalf("parsed %+v", p)
	}
	if got := string(p.Marshal()); got != good+"\n" {
		t.Fatalf("Marshal = %s", got)
	}
	// Whitespace and field order are free.
	for _, ok := range []string{
		good + "\n",
		"  " + good + " \n\t",
		`{"threads":2,"memory_kib":65536,"time":3,"salt_b64":` + salt + `,"kdf":"argon2id"}`,
		"{\n  \"kdf\": \"argon2id\",\n  \"salt_b64\": " + salt + ",\n  \"time\": 3,\n  \"memory_kib\": 65536,\n  \"threads\": 2\n}\n",
	} {
		if _, err := ParsePassphraseParams([]byte(ok)); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	r := func(old, new string) string { return strings.Replace(good, old, new, 1) }
	bad := map[string]string{
		"empty":            ``,
		"null":             `null`,
		"array":            `[` + good + `]`,
		"not json":         `kdf=argon2id`,
		"truncated":        good[:len(good)-1],
		"trailing object":  good + `{}`,
		"trailing garbage": good + `x`,
		"two objects":      good + good,
		"unknown field":    r(`"threads":2`, `"threads":2,"pepper":"x"`),
		"duplicate field":  r(`"time":3`, `"time":3,"time":3`),
		"duplicate kdf":    r(`"kdf":"argon2id"`, `"kdf":"argon2id","kdf":"argon2id"`),
		"key case":         r(`"kdf"`, `"KDF"`),
		"key case 2":       r(`"memory_kib"`, `"Memory_KiB"`),
		"missing kdf":      r(`"kdf":"argon2id",`, ``),
		"missing salt":     r(`"salt_b64":`+salt+`,`, ``),
		"missing time":     r(`"time":3,`, ``),
		"missing memory":   r(`"memory_kib":65536,`, ``),
		"missing threads":  r(`,"threads":2`, ``),
		"kdf argon2i":      r(`argon2id`, `argon2i`),
		"kdf case":         r(`argon2id`, `Argon2id`),
		"kdf number":       r(`"argon2id"`, `1`),
		"kdf null":         r(`"argon2id"`, `null`),
		"salt short":       r(salt, `"AAECAwQFBgcICQoLDA0O"`),
		"salt long":        r(salt, `"AAECAwQFBgcICQoLDA0ODxA="`),
		"salt unpadded":    r(salt, `"AAECAwQFBgcICQoLDA0ODw"`),
		"salt url":         r(salt, `"AAECAwQFBgcICQoLDA0O_w=="`),
		"salt newline":     r(salt, `"AAECAwQFBgcICQoL\nDA0ODw=="`),
		"salt bad padbits": r(salt, `"AAECAwQFBgcICQoLDA0ODx=="`),
		"salt number":      r(salt, `16`),
		"salt object":      r(salt, `{}`),
		"time 0":           r(`"time":3`, `"time":0`),
		"time negative":    r(`"time":3`, `"time":-3`),
		"time float":       r(`"time":3`, `"time":3.0`),
		"time exponent":    r(`"time":3`, `"time":3e0`),
		"time string":      r(`"time":3`, `"time":"3"`),
		"time huge":        r(`"time":3`, `"time":4294967296`),
		"time over max":    r(`"time":3`, `"time":65`),
		"time array":       r(`"time":3`, `"time":[3]`),
		"memory too low":   r(`"memory_kib":65536`, `"memory_kib":15`),
		"memory too high":  r(`"memory_kib":65536`, `"memory_kib":4194305`),
		"threads 0":        r(`"threads":2`, `"threads":0`),
		"threads 256":      r(`"threads":2`, `"threads":256`),
		"threads bool":     r(`"threads":2`, `"threads":true`),
		"leading zero":     r(`"threads":2`, `"threads":02`),
	}
	for name, in := range bad {
		if p, err := ParsePassphraseParams([]byte(in)); !errors.Is(err, ErrParams) {
			t.Errorf("%s: accepted %q as %+v (err %v)", name, in, p, err)
		}
	}
}

func TestPassphraseFromEnv(t *testing.T) {
	const name = "RON_KMS_TEST_PASSPHRASE"
	const value = "hunter2-very-secret"
	t.Setenv(name, value)
	got, err := PassphraseFromEnv(name)
	if err != nil || string(got) != value {
		t.Fatalf("PassphraseFromEnv = %q, %v", got, err)
	}
	t.Setenv(name, "")
	_, err = PassphraseFromEnv(name)
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("empty variable: %v", err)
	}
	os.Unsetenv(name)
	_, err = PassphraseFromEnv(name)
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("unset variable: %v", err)
	}
	if _, err := PassphraseFromEnv(""); err == nil {
		t.Fatal("empty name accepted")
	}
	// The value never appears in errors, even for neighbouring variables.
	t.Setenv(name+"_OTHER", value)
	if _, err := PassphraseFromEnv(name); err == nil || strings.Contains(err.Error(), value) {
		t.Fatalf("error %v", err)
	}
}
