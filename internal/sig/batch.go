package sig

import (
	"fmt"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// BatchItem is one signature to check in VerifyBatch.
type BatchItem struct {
	Key                PublicKey
	Message, Signature []byte
}

// ed25519Member is implemented by public keys whose signatures can join an
// Ed25519 batch equation. verify must apply exactly the rules of the batch
// equation (ZIP-215), so that batch and single verification agree.
type ed25519Member interface {
	addToBatch(bv *voi.BatchVerifier, message, signature []byte)
	verify(message, signature []byte) bool
}

// VerifyBatch checks every item and reports, in errs (one slot per item, in
// order), nil for a valid signature and an error otherwise: ErrInvalidSignature
// for a signature that does not verify, and an error wrapping it for an item
// without a key. allOK is true exactly when every slot is nil (also for an
// empty batch). Options cannot be given: every item is checked with the
// defaults (no context).
//
// All Ed25519 items are checked together in one randomized multiscalar
// equation (curve25519-voi, ZIP-215 rules, randomness from crypto/rand). If it
// fails, the invalid items are found by bisection: each half of a failing
// group is checked with its own equation, a group of one with a single
// verification, so k bad items among n cost O(k·log n) equations rather than
// n single verifications. The verdict for every item is the one
// PublicKey.Verify would give (the rules are the same; a batch can only
// accept an invalid signature with probability about 2⁻¹²⁸). Items of other
// algorithms are verified one by one.
//
// VerifyBatch is safe for concurrent use. It does not modify items.
func VerifyBatch(items []BatchItem) (allOK bool, errs []error) {
	return verifyBatch(items, nil)
}

// batchStats counts the work verifyBatch does, for tests.
type batchStats struct {
	equations int // batch equations (VerifyBatchOnly calls)
	singles   int // single Ed25519 verifications
}

type edItem struct {
	index              int
	key                ed25519Member
	message, signature []byte
}

func verifyBatch(items []BatchItem, stats *batchStats) (bool, []error) {
	errs := make([]error, len(items))
	var ed []edItem
	for i, it := range items {
		if it.Key == nil {
			errs[i] = fmt.Errorf("%w: batch item %d has no key", ErrInvalidSignature, i)
			continue
		}
		if m, ok := it.Key.(ed25519Member); ok {
			ed = append(ed, edItem{index: i, key: m, message: it.Message, signature: it.Signature})
			continue
		}
		errs[i] = it.Key.Verify(it.Message, it.Signature, nil)
	}
	if len(ed) > 0 {
		b := bisector{errs: errs, stats: stats}
		if !b.equation(ed) {
			b.locate(ed)
		}
	}
	for _, err := range errs {
		if err != nil {
			return false, errs
		}
	}
	return true, errs
}

// bisector finds the invalid items of a failing Ed25519 batch.
type bisector struct {
	errs  []error
	stats *batchStats
}

// equation reports whether the batch equation over items (len ≥ 1) holds.
func (b *bisector) equation(items []edItem) bool {
	if b.stats != nil {
		b.stats.equations++
	}
	bv := voi.NewBatchVerifierWithCapacity(len(items))
	for _, it := range items {
		it.key.addToBatch(bv, it.message, it.signature)
	}
	return bv.VerifyBatchOnly(nil)
}

// single verifies one item on its own and records the verdict.
func (b *bisector) single(it edItem) bool {
	if b.stats != nil {
		b.stats.singles++
	}
	if it.key.verify(it.message, it.signature) {
		return true
	}
	b.errs[it.index] = ErrInvalidSignature
	return false
}

// check reports whether every item of group is valid, recording the verdict
// when group is a single item.
func (b *bisector) check(group []edItem) bool {
	if len(group) == 1 {
		return b.single(group[0])
	}
	return b.equation(group)
}

// locate records the invalid items of group, whose equation failed (or which
// is known to hold an invalid item because its sibling passed).
func (b *bisector) locate(group []edItem) {
	if len(group) == 1 {
		b.single(group[0])
		return
	}
	left, right := group[:len(group)/2], group[len(group)/2:]
	if b.check(left) {
		// The group failed and its left half did not: the right half holds
		// the bad item, so it needs no equation of its own.
		b.locate(right)
		return
	}
	if len(left) > 1 {
		b.locate(left)
	}
	if !b.check(right) && len(right) > 1 {
		b.locate(right)
	}
}
