package sig

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"testing"
)

// supercopItems returns n valid batch items from SUPERCOP's sign.input,
// starting at line first+1.
func supercopItems(tb testing.TB, first, n int) []BatchItem {
	tb.Helper()
	s := ed25519For(tb)
	vs := supercopVectors(tb)
	items := make([]BatchItem, n)
	for i := range items {
		v := vs[(first+i)%len(vs)]
		k, err := s.NewPublicKey(v.pub)
		if err != nil {
			tb.Fatal(err)
		}
		items[i] = BatchItem{Key: k, Message: v.message, Signature: v.sig}
	}
	return items
}

// spoil makes item invalid in one of several ways, chosen by how.
func spoil(tb testing.TB, item *BatchItem, how int, other BatchItem) {
	tb.Helper()
	switch how % 4 {
	case 0: // a flipped bit of S
		item.Signature = bytes.Clone(item.Signature)
		item.Signature[40] ^= 0x04
	case 1: // a flipped bit of R
		item.Signature = bytes.Clone(item.Signature)
		item.Signature[3] ^= 0x80
	case 2: // another message
		item.Message = append(bytes.Clone(item.Message), 'x')
	case 3: // another key
		item.Key = other.Key
	}
}

func TestVerifyBatchBisection(t *testing.T) {
	const n = 64
	sets := [][]int{
		{},
		{0}, {1}, {31}, {32}, {63},
		{0, 63}, {31, 32}, {5, 40}, {62, 63},
		{3, 17, 18, 50},
	}
	var allButOne []int
	for i := range n {
		if i != 9 {
			allButOne = append(allButOne, i)
		}
	}
	var all []int
	for i := range n {
		all = append(all, i)
	}
	sets = append(sets, allButOne, all)

	for si, bad := range sets {
		t.Run(fmt.Sprintf("%d_bad_%d", len(bad), si), func(t *testing.T) {
			items := supercopItems(t, 7*si, n)
			for k, i := range bad {
				spoil(t, &items[i], k+si, items[(i+1)%n])
			}
			ok, errs := VerifyBatch(items)
			if ok != (len(bad) == 0) {
				t.Errorf("allOK = %v with %d bad items", ok, len(bad))
			}
			if len(errs) != n {
				t.Fatalf("%d errs for %d items", len(errs), n)
			}
			for i, err := range errs {
				wantBad := slices.Contains(bad, i)
				if wantBad && !errors.Is(err, ErrInvalidSignature) {
					t.Errorf("item %d: %v, want ErrInvalidSignature", i, err)
				}
				if !wantBad && err != nil {
					t.Errorf("item %d: %v, want nil", i, err)
				}
				// Batch and single agree on every item.
				if single := items[i].Key.Verify(items[i].Message, items[i].Signature, nil); (single == nil) != (err == nil) {
					t.Errorf("item %d: batch %v, single %v", i, err, single)
				}
			}
		})
	}
}

// TestBisectionCost shows the search is a bisection: one bad item among n
// costs at most 2·log2(n)+1 checks (batch equations and single verifications
// together), not n.
func TestBisectionCost(t *testing.T) {
	for _, n := range []int{2, 3, 16, 64, 1000} {
		limit := 2*bits.Len(uint(n-1)) + 1
		positions := []int{0, n / 3, n / 2, n - 1}
		if n <= 64 {
			positions = positions[:0]
			for i := range n {
				positions = append(positions, i)
			}
		}
		base := supercopItems(t, n, n)
		worst := 0
		for _, pos := range positions {
			items := slices.Clone(base)
			spoil(t, &items[pos], pos, items[(pos+1)%n])
			var st batchStats
			ok, errs := verifyBatch(items, &st)
			if ok {
				t.Fatalf("n=%d bad=%d: allOK", n, pos)
			}
			for i, err := range errs {
				if (err != nil) != (i == pos) {
					t.Fatalf("n=%d bad=%d: item %d: %v", n, pos, i, err)
				}
			}
			cost := st.equations + st.singles
			if st.singles < 1 || cost > limit {
				t.Errorf("n=%d bad=%d: %d equations + %d single checks, want ≤ %d in all", n, pos, st.equations, st.singles, limit)
			}
			worst = max(worst, cost)
		}
		t.Logf("n=%d, one bad item: at most %d checks (2·log2 n + 1 = %d)", n, worst, limit)
	}
}

func TestVerifyBatchEdges(t *testing.T) {
	if ok, errs := VerifyBatch(nil); !ok || len(errs) != 0 {
		t.Errorf("VerifyBatch(nil) = %v, %v", ok, errs)
	}

	items := supercopItems(t, 0, 3)
	items[1].Key = nil
	ok, errs := VerifyBatch(items)
	if ok || errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrInvalidSignature) {
		t.Errorf("nil key: %v, %v", ok, errs)
	}

	// Malformed signatures: every length but 64, and S ≥ ℓ.
	items = supercopItems(t, 10, 8)
	items[2].Signature = items[2].Signature[:63]
	items[3].Signature = append(bytes.Clone(items[3].Signature), 0)
	items[4].Signature = nil
	items[5].Signature = bytes.Clone(items[5].Signature)
	items[5].Signature[63] |= 0xf0
	_, errs = VerifyBatch(items)
	for i, err := range errs {
		if (err != nil) != (i >= 2 && i <= 5) {
			t.Errorf("malformed: item %d: %v", i, err)
		}
	}
}

// otherKey stands in for a public key of an algorithm without batch
// verification (ML-DSA, later): VerifyBatch must verify it on its own.
type otherKey struct {
	PublicKey
	calls *int
}

func (k otherKey) Verify(message, signature []byte, opts *Options) error {
	*k.calls++
	if bytes.Equal(message, []byte("good")) {
		return nil
	}
	return ErrInvalidSignature
}

func TestVerifyBatchOtherAlgorithms(t *testing.T) {
	var calls int
	items := supercopItems(t, 20, 4)
	items = append(items,
		BatchItem{Key: otherKey{calls: &calls}, Message: []byte("good")},
		BatchItem{Key: otherKey{calls: &calls}, Message: []byte("bad")},
	)
	var st batchStats
	ok, errs := verifyBatch(items, &st)
	if ok || calls != 2 || st != (batchStats{equations: 1}) {
		t.Errorf("allOK = %v, %d single calls, stats %+v", ok, calls, st)
	}
	for i, err := range errs {
		if (err != nil) != (i == 5) {
			t.Errorf("item %d: %v", i, err)
		}
	}
}
