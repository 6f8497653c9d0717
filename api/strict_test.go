package api

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
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
	var req CreateKeyRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	if err := CheckMembers(body, &req); err != nil {
		t.Fatalf("20,000 distinct members: %v", err)
	}
	// And it still finds a repeat among many.
	repeated := append(body[:len(body)-2:len(body)-2], `,"label-7":"w"}}`...)
	if err := CheckMembers(repeated, &req); err == nil {
		t.Error("a name repeated after 20,000 members is not found")
	}
}

// BenchmarkCheckMembersLabels shows CheckMembers is linear in the number of
// members (its cost per member stays flat from 100 to 20,000), where the
// pairwise comparison it replaced took about 1 s for 20,000. No unit test
// times it: the machines are shared and noisy.
func BenchmarkCheckMembersLabels(b *testing.B) {
	for _, n := range []int{100, 2000, 20000} {
		var sb strings.Builder
		sb.WriteString(`{"labels":{`)
		for i := range n {
			if i > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `"label-%d":"v"`, i)
		}
		sb.WriteString(`}}`)
		body := []byte(sb.String())
		var req CreateKeyRequest
		if err := json.Unmarshal(body, &req); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				if err := CheckMembers(body, &req); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/member")
		})
	}
}
