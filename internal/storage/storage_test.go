package storage_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/internal/storage"
)

func TestCheckKey(t *testing.T) {
	valid := []string{"k", "tenants/acme/keys/k1", "\xff\x01", strings.Repeat("k", storage.MaxKeyLen)}
	for _, k := range valid {
		if err := storage.CheckKey(k); err != nil {
			t.Errorf("CheckKey(%q) = %v", k, err)
		}
	}
	invalid := []string{"", "\x00", "a\x00b", strings.Repeat("k", storage.MaxKeyLen+1)}
	for _, k := range invalid {
		err := storage.CheckKey(k)
		if !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("CheckKey(%.20q) = %v, want ErrInvalid", k, err)
			continue
		}
		if k != "" && strings.Contains(err.Error(), k) {
			t.Errorf("CheckKey error %q repeats the key", err)
		}
	}
}

func TestCheckMutations(t *testing.T) {
	m := func(key string, expect int64) storage.Mutation {
		return storage.Mutation{Key: key, Value: []byte("v"), Expect: expect}
	}
	ok := [][]storage.Mutation{
		{m("a", storage.MustNotExist)},
		{m("a", storage.AnyRevision), m("b", 7), {Key: "c", Expect: 3}},
	}
	for _, muts := range ok {
		if err := storage.CheckMutations(muts); err != nil {
			t.Errorf("CheckMutations(%v) = %v", muts, err)
		}
	}
	bad := [][]storage.Mutation{
		nil,
		{},
		{m("", 0)},
		{m("a", 0), m("a\x00", 0)},
		{m("a", 0), m("a", 1)},
		{m("a", -2)},
	}
	for _, muts := range bad {
		if err := storage.CheckMutations(muts); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("CheckMutations(%v) = %v, want ErrInvalid", muts, err)
		}
	}
}

func TestCheckExpect(t *testing.T) {
	tests := []struct {
		expect, current int64
		ok              bool
	}{
		{storage.AnyRevision, 0, true},
		{storage.AnyRevision, 9, true},
		{storage.MustNotExist, 0, true},
		{storage.MustNotExist, 9, false},
		{9, 9, true},
		{8, 9, false},
		{10, 9, false},
		{9, 0, false},
	}
	for _, tt := range tests {
		err := storage.CheckExpect("k", tt.expect, tt.current)
		if tt.ok != (err == nil) {
			t.Errorf("CheckExpect(%d, %d) = %v, want ok=%v", tt.expect, tt.current, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, storage.ErrConflict) || !strings.Contains(err.Error(), `"k"`)) {
			t.Errorf("CheckExpect error %q does not wrap ErrConflict with the key", err)
		}
	}
}
