package seal

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

	"golang.org/x/crypto/argon2"

	"github.com/ron-kms/ron-kms/internal/fsutil"
)

// Argon2id defaults (RFC 9106 §4 and the OWASP password storage guidance
// allow lighter settings; these spend about 64 MiB and a fraction of a second
// once per server start).
const (
	DefaultArgon2Time      = 3
	DefaultArgon2MemoryKiB = 64 * 1024
	DefaultArgon2Threads   = 2

	// SaltSize is the length of the random Argon2id salt.
	SaltSize = 16

	// MaxArgon2Time and MaxArgon2MemoryKiB bound what a params file may ask
	// for, so that an edited file cannot make start-up take forever or run
	// out of memory.
	MaxArgon2Time      = 64
	MaxArgon2MemoryKiB = 4 * 1024 * 1024 // 4 GiB

	maxParamsFileSize = 4096
	kdfArgon2id       = "argon2id"
)

var (
	// ErrParams reports invalid passphrase KDF parameters or a malformed
	// params file.
	ErrParams = errors.New("seal: invalid passphrase parameters")

	// ErrEmptyPassphrase reports an empty passphrase.
	ErrEmptyPassphrase = errors.New("seal: empty passphrase")
)

// PassphraseParams are the Argon2id (RFC 9106) parameters that turn a
// passphrase into a KEK. None of them is secret. They are stored as JSON:
//
//	{"kdf":"argon2id","salt_b64":"<16 bytes, standard padded base64>","time":3,"memory_kib":65536,"threads":2}
type PassphraseParams struct {
	Salt      []byte // SaltSize bytes
	Time      uint32 // passes, 1..MaxArgon2Time
	MemoryKiB uint32 // 8*Threads..MaxArgon2MemoryKiB
	Threads   uint8  // lanes, at least 1
}

// DefaultPassphraseParams returns the default parameters with a fresh random
// salt.
func DefaultPassphraseParams() PassphraseParams {
	p, err := NewPassphraseParams(DefaultArgon2Time, DefaultArgon2MemoryKiB, DefaultArgon2Threads)
	if err != nil {
		panic("seal: default passphrase parameters are invalid: " + err.Error())
	}
	return p
}

// NewPassphraseParams returns parameters with a fresh random salt and the
// given costs, which are checked. Tests may use it for cheap parameters.
func NewPassphraseParams(time, memoryKiB uint32, threads uint8) (PassphraseParams, error) {
	p := PassphraseParams{Salt: make([]byte, SaltSize), Time: time, MemoryKiB: memoryKiB, Threads: threads}
	rand.Read(p.Salt)
	if err := p.validate(); err != nil {
		return PassphraseParams{}, err
	}
	return p, nil
}

func (p PassphraseParams) validate() error {
	switch {
	case len(p.Salt) != SaltSize:
		return fmt.Errorf("%w: salt is %d bytes, want %d", ErrParams, len(p.Salt), SaltSize)
	case p.Time < 1 || p.Time > MaxArgon2Time:
		return fmt.Errorf("%w: time %d out of range 1..%d", ErrParams, p.Time, MaxArgon2Time)
	case p.Threads < 1:
		return fmt.Errorf("%w: threads must be at least 1", ErrParams)
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxArgon2MemoryKiB:
		return fmt.Errorf("%w: memory_kib %d out of range %d..%d", ErrParams, p.MemoryKiB, 8*uint32(p.Threads), MaxArgon2MemoryKiB)
	}
	return nil
}

// DeriveKEK derives a [KEKSize]-byte KEK from passphrase with Argon2id. The
// same passphrase and parameters always give the same KEK. The passphrase and
// the result are secret; the caller should clear both when done. An empty
// passphrase is refused with [ErrEmptyPassphrase], invalid parameters with
// [ErrParams].
func (p PassphraseParams) DeriveKEK(passphrase []byte) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	return argon2.IDKey(passphrase, p.Salt, p.Time, p.MemoryKiB, p.Threads, KEKSize), nil
}

// Marshal returns the JSON form of p, with a trailing newline.
// [ParsePassphraseParams] of the result returns p.
func (p PassphraseParams) Marshal() []byte {
	return fmt.Appendf(nil, `{"kdf":%q,"salt_b64":%q,"time":%d,"memory_kib":%d,"threads":%d}`+"\n",
		kdfArgon2id, base64.StdEncoding.EncodeToString(p.Salt), p.Time, p.MemoryKiB, p.Threads)
}

// ParsePassphraseParams strictly parses the JSON form of [PassphraseParams]:
// one object with exactly the five fields kdf ("argon2id"), salt_b64
// (canonical padded standard base64 of SaltSize bytes), time, memory_kib and
// threads (non-negative decimal integers), each once, with exact case; no
// other fields and nothing after the object. The values must pass the checks
// of [NewPassphraseParams]. Errors wrap [ErrParams].
func ParsePassphraseParams(b []byte) (PassphraseParams, error) {
	var p PassphraseParams
	fail := func(format string, args ...any) (PassphraseParams, error) {
		return PassphraseParams{}, fmt.Errorf("%w: "+format, append([]any{ErrParams}, args...)...)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fail("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fail("malformed JSON")
		}
		key, _ := tok.(string)
		if seen[key] {
			return fail("duplicate field %q", key)
		}
		seen[key] = true
		val, err := dec.Token()
		if err != nil {
			return fail("malformed JSON")
		}
		switch key {
		case "kdf":
			if s, ok := val.(string); !ok || s != kdfArgon2id {
				return fail(`kdf must be "argon2id"`)
			}
		case "salt_b64":
			s, ok := val.(string)
			if !ok {
				return fail("salt_b64 must be a string")
			}
			salt, err := base64.StdEncoding.DecodeString(s)
			if err != nil || base64.StdEncoding.EncodeToString(salt) != s {
				return fail("salt_b64 is not canonical padded base64")
			}
			p.Salt = salt
		case "time", "memory_kib", "threads":
			n, ok := val.(json.Number)
			if !ok {
				return fail("%s must be a number", key)
			}
			bits := 32
			if key == "threads" {
				bits = 8
			}
			v, err := strconv.ParseUint(string(n), 10, bits)
			if err != nil {
				return fail("%s must be an integer that fits in %d bits", key, bits)
			}
			switch key {
			case "time":
				p.Time = uint32(v)
			case "memory_kib":
				p.MemoryKiB = uint32(v)
			case "threads":
				p.Threads = uint8(v)
			}
		default:
			return fail("unknown field %q", key)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return fail("malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("data after the JSON object")
	}
	for _, k := range []string{"kdf", "salt_b64", "time", "memory_kib", "threads"} {
		if !seen[k] {
			return fail("missing field %q", k)
		}
	}
	if err := p.validate(); err != nil {
		return PassphraseParams{}, err
	}
	return p, nil
}

// LoadOrCreatePassphraseParams reads the passphrase KDF parameters from the
// file at path (by convention <data-dir>/kek.params) or, if it does not exist,
// creates it atomically with mode 0600 holding [DefaultPassphraseParams].
// created reports whether it was made by this call. The file is parsed with
// [ParsePassphraseParams]. Its contents are not secret, so its mode is not
// checked on load; changing it only makes the derived KEK wrong.
func LoadOrCreatePassphraseParams(path string) (PassphraseParams, bool, error) {
	return LoadOrCreatePassphraseParamsWith(path, DefaultPassphraseParams())
}

// LoadOrCreatePassphraseParamsWith is [LoadOrCreatePassphraseParams] writing
// fresh, instead of the defaults, if the file does not exist. Tests use it
// with cheap parameters from [NewPassphraseParams].
func LoadOrCreatePassphraseParamsWith(path string, fresh PassphraseParams) (PassphraseParams, bool, error) {
	p, err := loadPassphraseParams(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return p, false, err
	}
	if err := fresh.validate(); err != nil {
		return PassphraseParams{}, false, err
	}
	err = fsutil.CreateFileAtomic(path, fresh.Marshal())
	if errors.Is(err, fs.ErrExist) {
		p, err = loadPassphraseParams(path)
		return p, false, err
	}
	if err != nil {
		return PassphraseParams{}, false, fmt.Errorf("seal: creating passphrase params: %w", err)
	}
	return fresh, true, nil
}

func loadPassphraseParams(path string) (PassphraseParams, error) {
	f, err := os.Open(path)
	if err != nil {
		return PassphraseParams{}, fmt.Errorf("seal: passphrase params: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxParamsFileSize+1))
	if err != nil {
		return PassphraseParams{}, fmt.Errorf("seal: passphrase params: %w", err)
	}
	if len(b) > maxParamsFileSize {
		return PassphraseParams{}, fmt.Errorf("%w: %s is larger than %d bytes", ErrParams, path, maxParamsFileSize)
	}
	p, err := ParsePassphraseParams(b)
	if err != nil {
		return PassphraseParams{}, fmt.Errorf("%w (in %s)", err, path)
	}
	return p, nil
}

// PassphraseFromEnv returns the passphrase held in the environment variable
// name. Errors name the variable, never its value. The returned slice is a
// copy and secret; the environment's own copy cannot be cleared from Go, so
// callers may want to os.Unsetenv the variable after reading it.
func PassphraseFromEnv(name string) ([]byte, error) {
	if name == "" {
		return nil, errors.New("seal: passphrase environment variable name is empty")
	}
	v, ok := os.LookupEnv(name)
	if !ok {
		return nil, fmt.Errorf("seal: passphrase environment variable %s is not set", name)
	}
	if v == "" {
		return nil, fmt.Errorf("seal: passphrase environment variable %s is empty", name)
	}
	return []byte(v), nil
}
