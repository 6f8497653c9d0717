package loadgen

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/ron-kms/ron-kms/api"
)

// Key spreads: how a worker picks the key of its next request (or of each
// item of a batch).
const (
	// SpreadRoundRobin walks the keys in order, each worker from its own
	// starting point: the default without a kids file.
	SpreadRoundRobin = "round-robin"
	// SpreadRandom picks uniformly at random from a generator seeded with
	// the worker's number, so runs are repeatable: the default with a kids
	// file.
	SpreadRandom = "random"
)

// maxKIDsFile bounds what ReadKIDs reads: 256 MiB, over four million kids
// as keys seed --kids-out writes them with its default tenant and purpose.
const maxKIDsFile = 256 << 20

// ErrKIDs is wrapped by every error of ReadKIDs about what a kids file
// holds: a line that is not a key id or name (the error also wraps
// api.ErrBadKID), no kid at all, more than 256 MiB.
var ErrKIDs = errors.New("loadgen: invalid kids file")

// ReadKIDs reads a kids file: one key id (tenant/purpose/alg/uuid#vN) or
// key name (without #vN: the current version) a line. Blank lines and lines
// starting with "#" are skipped; any other line must parse with
// api.ParseKeyRef, or ReadKIDs fails naming its line. It reads at most
// 256 MiB, and fails on a larger file without reading further. The kids are
// substrings of one copy of the input: a million kids cost no allocation
// each. Errors about the content are ErrKIDs; a read error is returned
// wrapped.
func ReadKIDs(r io.Reader) ([]string, error) { return readKIDs(r, maxKIDsFile) }

// readKIDs is ReadKIDs reading at most limit bytes.
func readKIDs(r io.Reader, limit int64) ([]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("loadgen: reading kids: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrKIDs, limit)
	}
	var kids []string
	n := 0
	for line := range strings.Lines(string(b)) {
		n++
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if _, err := api.ParseKeyRef(line); err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrKIDs, n, err)
		}
		kids = append(kids, line)
	}
	if len(kids) == 0 {
		return nil, fmt.Errorf("%w: no kids in it", ErrKIDs)
	}
	return kids, nil
}

// kidAlg returns the algorithm field of a kid, after checking cheaply that
// the kid can be spliced into a JSON string as it is: four '/'-separated
// fields of a-z, 0-9, '_' and '-', a known algorithm, an optional #vN. The
// server checks the rest.
func kidAlg(kid string) (string, error) {
	if len(kid) > 256 {
		return "", fmt.Errorf("loadgen: kid %.64q… is too long", kid)
	}
	slashes, alg, start, end := 0, "", 0, len(kid)
	for i := 0; i < end; i++ {
		switch c := kid[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '-':
		case c == '/':
			if slashes == 2 {
				alg = kid[start:i]
			}
			slashes++
			start = i + 1
		case c == '#' && slashes == 3:
			v := kid[i+1:]
			if len(v) < 2 || v[0] != 'v' || strings.Trim(v[1:], "0123456789") != "" {
				return "", fmt.Errorf("loadgen: kid %q: want #vN after the uuid", kid)
			}
			end = i
		default:
			return "", fmt.Errorf("loadgen: kid %q: unexpected %q", kid, c)
		}
	}
	if slashes != 3 || !api.KnownAlg(alg) {
		return "", fmt.Errorf("loadgen: kid %q: want tenant/purpose/alg/uuid[#vN] with a known alg", kid)
	}
	return alg, nil
}

// groupKIDs checks kids with kidAlg and groups them by algorithm, each
// group in the order of kids.
func groupKIDs(kids []string) (map[string][]string, error) {
	counts := map[string]int{}
	algs := make([]string, len(kids))
	for i, k := range kids {
		a, err := kidAlg(k)
		if err != nil {
			return nil, err
		}
		algs[i] = a
		counts[a]++
	}
	g := make(map[string][]string, len(counts))
	for a, n := range counts {
		g[a] = make([]string, 0, n)
	}
	for i, k := range kids {
		g[algs[i]] = append(g[algs[i]], k)
	}
	return g, nil
}

// describeKIDs says what a kids file holds, for an error message.
func describeKIDs(g map[string][]string) string {
	var parts []string
	for _, a := range slices.Sorted(maps.Keys(g)) {
		parts = append(parts, fmt.Sprintf("%d %s", len(g[a]), a))
	}
	return strings.Join(parts, ", ")
}

// sample returns at most n kids of pool, evenly spaced: the keys that get
// per-key fixtures when a kids file is larger than --keys.
func sample(pool []string, n int) []string {
	if len(pool) <= n {
		return slices.Clone(pool)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = pool[i*len(pool)/n]
	}
	return out
}
