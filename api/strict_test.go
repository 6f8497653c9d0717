package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCheckMembersLinear: the repeated-name check costs O(n) for an object
// of n members, not O(n²) (20,000 labels took 2 s of comparisons). The
// measure is relative to json.Unmarshal of the same body, which is linear:
// the walk is a fraction of it, the quadratic check a hundred times it.
func TestCheckMembersLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"labels":{`)
	for i := range 20000 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"label-%d":"v"`, i)
	}
	b.WriteString(`}}`)
	body := []byte(b.String())
	best := func(f func()) time.Duration {
		least := time.Duration(1 << 62)
		for range 3 {
			start := time.Now()
			f()
			least = min(least, time.Since(start))
		}
		return least
	}
	var req CreateKeyRequest
	decodeTime := best(func() {
		req = CreateKeyRequest{}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatal(err)
		}
	})
	checkTime := best(func() {
		if err := CheckMembers(body, &req); err != nil {
			t.Fatal(err)
		}
	})
	if checkTime > 5*decodeTime {
		t.Errorf("CheckMembers took %v over 20,000 members, json.Unmarshal %v: not linear", checkTime, decodeTime)
	}
	// And it still finds a repeat among many.
	repeated := append(body[:len(body)-2:len(body)-2], `,"label-7":"w"}}`...)
	if err := CheckMembers(repeated, &req); err == nil {
		t.Error("a name repeated after 20,000 members is not found")
	}
}
