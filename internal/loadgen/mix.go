package loadgen

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// OpWeight is one operation of a mix and its share of the requests.
type OpWeight struct {
	Op     string `json:"op"`
	Weight int    `json:"weight"`
}

// maxWeight bounds one weight of a mix, and so the length of the cycle
// every worker walks (at most len(Ops()) × maxWeight entries).
const maxWeight = 1000

// ErrMix is wrapped by every error about a mix, from ParseMix or from a
// Config whose Mix is not one.
var ErrMix = errors.New("loadgen: invalid mix")

// ParseMix parses a mix such as "sign=70,verify=20,wrap=10": operations of
// Ops(), each at most once, with positive integer weights of at most 1000.
// Weights are relative: "sign=7,verify=2,wrap=1" is the same mix. Space
// around an entry is allowed; FormatMix writes the canonical form. Anything
// else is ErrMix, and no mix.
func ParseMix(s string) ([]OpWeight, error) {
	var mix []OpWeight
	for part := range strings.SplitSeq(s, ",") {
		op, w, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%w: entry %q: want op=weight", ErrMix, part)
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 || n > maxWeight {
			return nil, fmt.Errorf("%w: entry %q: the weight must be an integer from 1 to %d", ErrMix, part, maxWeight)
		}
		mix = append(mix, OpWeight{Op: op, Weight: n})
	}
	if err := checkMix(mix); err != nil {
		return nil, err
	}
	return mix, nil
}

// FormatMix is the inverse of ParseMix.
func FormatMix(mix []OpWeight) string {
	parts := make([]string, len(mix))
	for i, m := range mix {
		parts[i] = m.Op + "=" + strconv.Itoa(m.Weight)
	}
	return strings.Join(parts, ",")
}

func checkMix(mix []OpWeight) error {
	seen := map[string]bool{}
	for _, m := range mix {
		if _, ok := opTable[m.Op]; !ok {
			return fmt.Errorf("%w: unknown op %q (want one of %v)", ErrMix, m.Op, Ops())
		}
		if seen[m.Op] {
			return fmt.Errorf("%w: %s appears twice", ErrMix, m.Op)
		}
		seen[m.Op] = true
		if m.Weight < 1 || m.Weight > maxWeight {
			return fmt.Errorf("%w: weight %d of %s is outside 1..%d", ErrMix, m.Weight, m.Op, maxWeight)
		}
	}
	return nil
}

// cycle returns the sequence of operation indices that every worker walks
// (each from its own starting point): index i appears weights[i]/g times,
// g the weights' greatest common divisor, spread out by smooth weighted
// round robin (as nginx balances upstreams), so that a 70/20/10 mix
// interleaves rather than running seven signs in a row.
func cycle(weights []int) []int {
	g := 0
	for _, w := range weights {
		g = gcd(g, w)
	}
	total := 0
	ws := make([]int, len(weights))
	for i, w := range weights {
		ws[i] = w / g
		total += ws[i]
	}
	cur := make([]int, len(ws))
	seq := make([]int, 0, total)
	for range total {
		best := 0
		for i, w := range ws {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, best)
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
