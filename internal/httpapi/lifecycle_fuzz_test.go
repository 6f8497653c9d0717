package httpapi

import (
	"strconv"
	"testing"

	"github.com/ron-kms/ron-kms/api"
)

func FuzzDecodeConfigureKeyRequest(f *testing.F) {
	fuzzDecode[api.ConfigureKeyRequest](f,
		`{"min_verify_version":2}`, `{"auto_rotate_days":0}`, `{"destroy_waiting_days":365}`,
		`{"min_verify_version":1,"auto_rotate_days":90,"destroy_waiting_days":7}`,
		`{"min_verify_version":null}`, `{"min_verify_version":-1}`, `{"min_verify_version":4294967296}`,
		`{"auto_rotate_days":1.5}`, `{"MIN_VERIFY_VERSION":1}`)
}

func FuzzDecodeVersionActionRequest(f *testing.F) {
	fuzzDecode[api.VersionActionRequest](f, `{}`, ` {} `, `{"version":1}`, `{"op_id":"x"}`)
}

// FuzzVersionParam: the {n} path segment parses only as a canonical
// decimal version from 1, which re-encodes to the same text.
func FuzzVersionParam(f *testing.F) {
	for _, s := range []string{"1", "2", "10", "0", "01", "-1", "+1", "4294967295", "4294967296", "1.0", " 1", "v1", "1_0", "0x1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := versionParam(s)
		if err != nil {
			return
		}
		if v == 0 || strconv.FormatUint(uint64(v), 10) != s {
			t.Fatalf("versionParam(%q) = %d", s, v)
		}
	})
}
