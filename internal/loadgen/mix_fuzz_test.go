package loadgen

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// documentedMixes returns the --mix values of the README and of the
// command-line transcripts, as users are shown to write them.
func documentedMixes(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("../../cmd/ron-kms/testdata/script/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../../README.md", "../cli/bench.go")
	re := regexp.MustCompile("--mix[ =]([^ `'\"\n]+)")
	var mixes []string
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			mixes = append(mixes, m[1])
		}
	}
	if len(mixes) == 0 {
		t.Fatalf("no --mix found in %v", files)
	}
	return mixes
}

// FuzzParseMix: a mix that parses names known operations, each once, with
// weights of 1 to maxWeight; its FormatMix form parses back to the same
// mix and formats to itself; the cycle a worker walks holds each operation
// in proportion to its weight and is at most len(Ops()) × maxWeight long.
// A mix that does not parse is ErrMix and no mix.
func FuzzParseMix(f *testing.F) {
	for _, s := range documentedMixes(f) {
		f.Add(s)
	}
	all := make([]string, 0, len(opTable))
	for _, op := range Ops() {
		all = append(all, op+"=1000")
	}
	for _, s := range []string{
		"sign=70, verify=20,wrap=10", "sign=7,verify=2,wrap=1", " sign=1 ", "\tsign=1\n",
		"sign=+5", "sign=007", "sign=1000", "sign=1001", "sign=99999999999999999999", "sign=0x10",
		strings.Join(all, ","), strings.Join(all, ",") + ",sign=1",
		"", ",", "sign", "sign=", "=1", "sign=0", "sign=-1", "sign=1.5", "frob=1",
		"sign=1,sign=2", "sign=1,,verify=1", "sign =1", "sign= 1", "SIGN=1", "sign=1=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mix, err := ParseMix(s)
		if err != nil {
			if !errors.Is(err, ErrMix) || mix != nil {
				t.Fatalf("ParseMix(%q) = %v, %v; want nil, ErrMix", s, mix, err)
			}
			return
		}
		if len(mix) == 0 || len(mix) > len(opTable) {
			t.Fatalf("ParseMix(%q) = %v", s, mix)
		}
		seen := map[string]bool{}
		weights := make([]int, len(mix))
		for i, m := range mix {
			if opTable[m.Op] == nil || seen[m.Op] || m.Weight < 1 || m.Weight > maxWeight {
				t.Fatalf("ParseMix(%q) = %v: entry %v", s, mix, m)
			}
			seen[m.Op] = true
			weights[i] = m.Weight
		}
		canon := FormatMix(mix)
		again, err := ParseMix(canon)
		if err != nil || !slices.Equal(again, mix) {
			t.Fatalf("ParseMix(%q) = %v, whose form %q parses to %v, %v", s, mix, canon, again, err)
		}
		if FormatMix(again) != canon {
			t.Fatalf("FormatMix not stable for %q", s)
		}
		seq := cycle(weights)
		if len(seq) == 0 || len(seq) > len(opTable)*maxWeight {
			t.Fatalf("cycle of %v is %d long", weights, len(seq))
		}
		count := make([]int, len(weights))
		for _, i := range seq {
			count[i]++
		}
		// count[i]/weights[i] is the same for every i: count[i]·w[0] = count[0]·w[i].
		for i := range weights {
			if count[i] == 0 || count[i]*weights[0] != count[0]*weights[i] {
				t.Fatalf("cycle of %v holds %v", weights, count)
			}
		}
	})
}
