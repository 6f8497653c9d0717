package storecopy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"iter"
	"maps"
	"strings"
)

// Summary counts a set of store items and digests them.
//
// SHA256 is the SHA-256, in lower-case hex, of the items in ascending key
// order, each as
//
//	len(key) as 8 bytes big-endian ‖ key ‖ len(value) as 8 bytes big-endian ‖ value
//
// so two sets have the same digest exactly when they hold the same keys
// with the same values (revisions are not covered: each store numbers its
// own writes). The digest of no items is that of the empty string.
type Summary struct {
	// Revision is the store revision the items were read at.
	Revision int64 `json:"revision"`
	// Items is the number of items; Bytes the sum of their keys' and
	// values' lengths.
	Items int64 `json:"items"`
	Bytes int64 `json:"bytes"`
	// Keys counts the key records (k/…), Versions the sealed seeds stored
	// apart from them (s/…), in the keystore's layout: only key records
	// of version 1 have those (a version 2 record holds its seeds, and a
	// copy does not read records).
	Keys     int64 `json:"keys"`
	Versions int64 `json:"versions"`
	// ByPrefix counts the items by the part of their key before the first
	// "/" (k, s, op, meta, sched, tokens, …).
	ByPrefix map[string]int64 `json:"by_prefix"`
	SHA256   string           `json:"sha256"`
}

// Same reports whether s and o describe the same items (everything but the
// revision is equal).
func (s Summary) Same(o Summary) bool {
	return s.Items == o.Items && s.Bytes == o.Bytes && s.Keys == o.Keys && s.Versions == o.Versions &&
		s.SHA256 == o.SHA256 && maps.Equal(s.ByPrefix, o.ByPrefix)
}

// summer builds a Summary from items added in key order.
type summer struct {
	h              hash.Hash
	rev            int64
	items, bytes   int64
	keys, versions int64
	byPrefix       map[string]int64
}

func (s *summer) add(k string, v []byte) {
	if s.h == nil {
		s.h = sha256.New()
		s.byPrefix = make(map[string]int64)
	}
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(k)))
	s.h.Write(n[:])
	s.h.Write([]byte(k))
	binary.BigEndian.PutUint64(n[:], uint64(len(v)))
	s.h.Write(n[:])
	s.h.Write(v)
	s.items++
	s.bytes += int64(len(k) + len(v))
	top, _, _ := strings.Cut(k, "/")
	s.byPrefix[top]++
	switch top {
	case "k":
		s.keys++
	case "s":
		s.versions++
	}
}

func (s *summer) summary() Summary {
	h := s.h
	if h == nil {
		h = sha256.New()
	}
	bp := s.byPrefix
	if bp == nil {
		bp = map[string]int64{}
	}
	return Summary{Revision: s.rev, Items: s.items, Bytes: s.bytes, Keys: s.keys, Versions: s.versions,
		ByPrefix: bp, SHA256: hex.EncodeToString(h.Sum(nil))}
}

// Digest returns the Summary of items given in ascending key order, for
// callers that check a copy independently (tests, audits).
func Digest(items iter.Seq2[string, []byte]) Summary {
	var s summer
	for k, v := range items {
		s.add(k, v)
	}
	return s.summary()
}
