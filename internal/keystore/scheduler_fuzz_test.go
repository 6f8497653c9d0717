package keystore

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage"
	"github.com/ron-kms/ron-kms/internal/storage/memstore"
)

// FuzzParseTask: a due-index key that parses is a rotate or destroy task
// of a four-part key name, due at a whole UTC second, whose path is that
// key again (RunDue deletes an entry by its task's path, so a key that
// parsed to another path could never be removed); a key that does not
// parse gives the zero task. Seeds are the entries a keystore wrote.
func FuzzParseTask(f *testing.F) {
	for _, it := range storedFixture(f, schedPrefix) {
		if _, ok := parseTask(it.Key); !ok {
			f.Fatalf("an entry the keystore wrote does not parse: %q", it.Key)
		}
		f.Add(it.Key)
		ts, rest, _ := strings.Cut(strings.TrimPrefix(it.Key, schedPrefix), "/")
		for _, near := range []string{
			schedPrefix + "+" + ts[1:] + "/" + rest, // a sign in the due time
			schedPrefix + "-" + ts[1:] + "/" + rest,
			schedPrefix + "0" + ts + "/" + rest, // 13 digits
			schedPrefix + ts[1:] + "/" + rest,   // 11
			strings.Replace(it.Key, "/rotate/", "/destroy/", 1),
			strings.Replace(it.Key, "/destroy/", "/rotate/", 1),
			strings.Replace(it.Key, "/rotate/", "/erase/", 1),
			strings.Replace(it.Key, "/000000000", "/", 1), // unpadded version
			strings.Replace(it.Key, "/000000000", "/+", 1),
			it.Key + "/0000000001",
			it.Key[:strings.LastIndexByte(it.Key, '/')],
			it.Key + "/",
			"s" + it.Key,
		} {
			f.Add(near)
		}
	}
	f.Add(destroyTask("a/b/c/d", 1<<32-1, time.Unix(999999999999, 0)).path())
	f.Add(destroyTask("a/b/c/d", 0, time.Unix(0, 0)).path())
	f.Add(destroyTask("a/b/c/d", 1, time.Unix(1e12, 0)).path()) // beyond 12 digits
	f.Add(task{due: time.Unix(-1, 0), kind: taskRotate, name: "a/b/c/d"}.path())
	f.Add("sched/000000000000/rotate////")
	f.Add("sched/")
	f.Add("")
	f.Fuzz(func(t *testing.T, key string) {
		tk, ok := parseTask(key)
		if !ok {
			if tk != (task{}) {
				t.Fatalf("parseTask(%q) = %+v with false", key, tk)
			}
			return
		}
		if p := tk.path(); p != key {
			t.Fatalf("parseTask(%q) = %+v, whose path is %q", key, tk, p)
		}
		if tk.due.Location() != time.UTC || tk.due.Nanosecond() != 0 || tk.due.Unix() < 0 {
			t.Fatalf("parseTask(%q): due %v", key, tk.due)
		}
		if strings.Count(tk.name, "/") != 3 {
			t.Fatalf("parseTask(%q): key name %q", key, tk.name)
		}
		switch tk.kind {
		case taskRotate:
			if tk.version != 0 {
				t.Fatalf("parseTask(%q): rotation of version %d", key, tk.version)
			}
		case taskDestroy:
			if tk.version == 0 {
				t.Fatalf("parseTask(%q): destruction of version 0", key)
			}
		default:
			t.Fatalf("parseTask(%q): kind %q", key, tk.kind)
		}
	})
}

// TestSchedulerReportsMisspelledEntries: a due-index entry spelled other
// than path writes it (a sign in the due time, an unpadded version) is
// reported as malformed on every tick and left in place, rather than read
// as a task whose deletion, aimed at another key, can never succeed.
func TestSchedulerReportsMisspelledEntries(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	clock := &fakeClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	ks := openClocked(t, st, newKEK(t), clock)
	defer ks.Close()
	k := create(t, ks, "")
	if _, err := ks.Rotate(ctx, k.Name, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.Transition(ctx, k.Name, 1, ActionDestroy); err != nil {
		t.Fatal(err)
	}
	entry := schedKeys(t, st)
	if len(entry) != 1 {
		t.Fatalf("due-index: %v", entry)
	}
	ts, rest, _ := strings.Cut(strings.TrimPrefix(entry[0], schedPrefix), "/")
	misspelled := []string{
		schedPrefix + "+" + ts[1:] + "/" + rest,
		strings.TrimSuffix(entry[0], "0000000001") + "1",
	}
	for _, key := range misspelled {
		if _, err := st.Apply(ctx, storage.Mutation{Key: key, Value: []byte{}, Expect: storage.MustNotExist}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(30 * day)
	for tick := range 2 {
		rep, err := ks.RunDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tick == 0 && (len(rep.Destroyed) != 1 || rep.Destroyed[0] != k.KID(1)) {
			t.Fatalf("tick %d destroyed %v, want %s", tick, rep.Destroyed, k.KID(1))
		}
		if len(rep.Errors) != len(misspelled) {
			t.Fatalf("tick %d reported %v, want the %d misspelled entries", tick, rep.Errors, len(misspelled))
		}
		for i, err := range rep.Errors {
			if !strings.Contains(err.Error(), "malformed index entry") {
				t.Errorf("tick %d, error %d: %v", tick, i, err)
			}
		}
	}
	if got := schedKeys(t, st); !slices.Equal(got, slices.Sorted(slices.Values(misspelled))) {
		t.Fatalf("due-index after the ticks: %v, want the misspelled entries left in place", got)
	}
}
