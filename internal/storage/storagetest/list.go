package storagetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// listKeys calls List and returns the keys, checking that every item has a
// value and a positive revision.
func listKeys(t *testing.T, s storage.Store, prefix, startAfter string, limit int) []string {
	t.Helper()
	items, err := s.List(t.Context(), prefix, startAfter, limit)
	if err != nil {
		t.Fatalf("List(%q, %q, %d): %v", prefix, startAfter, limit, err)
	}
	keys := make([]string, 0, len(items))
	for _, it := range items {
		if it.Value == nil || it.Revision <= 0 {
			t.Fatalf("List(%q, %q, %d) returned item %+v", prefix, startAfter, limit, it)
		}
		keys = append(keys, it.Key)
	}
	return keys
}

func checkKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// listFixture stores keys that probe prefix boundaries and byte order:
// "a/" must not see "a0" or "a", and "\xff" sorts after every ASCII key.
var listFixture = []string{"a", "a/", "a/1", "a/2", "a/10", "a/\xff", "a0", "b/1", "\xff"}

func testList(t *testing.T, s storage.Store, c config) {
	muts := make([]storage.Mutation, len(listFixture))
	for i, k := range listFixture {
		muts[i] = put(k, "v:"+k, storage.MustNotExist)
	}
	rev := mustApply(t, s, muts...)

	all := slices.Clone(listFixture)
	slices.Sort(all)
	checkKeys(t, `List("")`, listKeys(t, s, "", "", 0), all)
	checkKeys(t, `List("a/")`, listKeys(t, s, "a/", "", 0), []string{"a/", "a/1", "a/10", "a/2", "a/\xff"})
	checkKeys(t, `List("a/1")`, listKeys(t, s, "a/1", "", 0), []string{"a/1", "a/10"})
	checkKeys(t, `List("b/")`, listKeys(t, s, "b/", "", 0), []string{"b/1"})
	checkKeys(t, `List("c")`, listKeys(t, s, "c", "", 0), nil)
	checkKeys(t, `List("\xff")`, listKeys(t, s, "\xff", "", 0), []string{"\xff"})

	// Values and revisions come back with the keys.
	items, err := s.List(t.Context(), "b/", "", 0)
	if err != nil || len(items) != 1 || string(items[0].Value) != "v:b/1" || items[0].Revision != rev {
		t.Fatalf("List(b/) = %+v, %v", items, err)
	}

	// Deleted keys disappear from List.
	mustApply(t, s, del("a/10", storage.AnyRevision))
	checkKeys(t, `List("a/1") after delete`, listKeys(t, s, "a/1", "", 0), []string{"a/1"})
}

func testListPaging(t *testing.T, s storage.Store, c config) {
	muts := make([]storage.Mutation, len(listFixture))
	for i, k := range listFixture {
		muts[i] = put(k, "v", storage.MustNotExist)
	}
	mustApply(t, s, muts...)
	want := []string{"a/", "a/1", "a/10", "a/2", "a/\xff"}

	checkKeys(t, "limit 2", listKeys(t, s, "a/", "", 2), want[:2])
	checkKeys(t, "limit -1", listKeys(t, s, "a/", "", -1), want)
	checkKeys(t, "limit 100", listKeys(t, s, "a/", "", 100), want)
	checkKeys(t, "after a/1", listKeys(t, s, "a/", "a/1", 0), want[2:])
	checkKeys(t, "after a/11 (absent)", listKeys(t, s, "a/", "a/11", 0), want[3:])
	checkKeys(t, "after a (before prefix)", listKeys(t, s, "a/", "a", 0), want)
	checkKeys(t, "after a/ (the prefix itself)", listKeys(t, s, "a/", "a/", 0), want[1:])
	checkKeys(t, "after last", listKeys(t, s, "a/", "a/\xff", 0), nil)
	checkKeys(t, "after b (past prefix)", listKeys(t, s, "a/", "b", 0), nil)

	for _, size := range []int{1, 2, 3, 10} {
		var got []string
		after := ""
		for range len(want) + 2 {
			page := listKeys(t, s, "a/", after, size)
			if len(page) > size {
				t.Fatalf("page of %d items with limit %d", len(page), size)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1]
		}
		checkKeys(t, fmt.Sprintf("paged by %d", size), got, want)
	}
}
