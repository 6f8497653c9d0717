package keystore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ron-kms/ron-kms/internal/storage"
)

// The version state machine (SPEC §4). Every state change of a version goes
// through transition, which follows exactly the edges of the table below,
// in the spirit of tink's keyset manager: the current version is always
// enabled and can be neither disabled nor destroyed, and a destroyed
// version never comes back.
//
//	enabled ──disable──▶ disabled ──enable──▶ enabled
//	enabled, disabled ──destroy──▶ destroy_scheduled ──erase (scheduler)──▶ destroyed
//	destroy_scheduled ──cancel-destroy──▶ disabled
//
// Only enabled versions at or above the key's min_verify_version verify,
// unwrap and decrypt; only the current version signs, wraps and encrypts.

// Action is an edge of the version state machine.
type Action string

// Actions. ActionErase is taken only by the scheduler, when the waiting
// period of a scheduled destruction has passed.
const (
	ActionDisable       Action = "disable"
	ActionEnable        Action = "enable"
	ActionDestroy       Action = "destroy"
	ActionCancelDestroy Action = "cancel-destroy"
	ActionErase         Action = "erase"
)

// edges is the whole state machine: from state, action → to state. An
// action missing from a state's row is an illegal transition.
var edges = map[State]map[Action]State{
	Enabled:          {ActionDisable: Disabled, ActionDestroy: DestroyScheduled},
	Disabled:         {ActionEnable: Enabled, ActionDestroy: DestroyScheduled},
	DestroyScheduled: {ActionCancelDestroy: Disabled, ActionErase: Destroyed},
	Destroyed:        {},
}

// notForCurrent are the actions the current version refuses whatever its
// state: it must stay enabled, because it is the one that signs and wraps.
var notForCurrent = map[Action]bool{ActionDisable: true, ActionDestroy: true}

// Defaults and limits of the key configuration.
const (
	DefaultDestroyWaitDays = 7
	MaxDestroyWaitDays     = 365
	MaxAutoRotateDays      = 3650
)

const day = 24 * time.Hour

// DestroyWaiting returns the key's waiting period between a destroy request
// and the erasure, in days (DefaultDestroyWaitDays unless configured).
func (k *Key) DestroyWaiting() uint32 {
	if k.DestroyWaitDays == 0 {
		return DefaultDestroyWaitDays
	}
	return k.DestroyWaitDays
}

// transition returns the state version n of k moves to under action, or an
// error wrapping ErrIllegalTransition (or ErrNotFound) that names the state
// and the edge.
func transition(k *Key, n uint32, action Action) (State, error) {
	v, ok := k.Version(n)
	if !ok {
		return "", fmt.Errorf("%w: %s has no version %d", ErrNotFound, k.Name, n)
	}
	if n == k.Current && notForCurrent[action] {
		return "", fmt.Errorf("%w: %s is the current version; it cannot %s (rotate first)", ErrIllegalTransition, k.KID(n), action)
	}
	to, ok := edges[v.State][action]
	if !ok {
		return "", fmt.Errorf("%w: %s is %s, and %s has no %s edge (allowed: %s)",
			ErrIllegalTransition, k.KID(n), v.State, v.State, action, allowedFrom(v.State))
	}
	return to, nil
}

// allowedFrom lists the operator actions a state allows, for messages.
func allowedFrom(s State) string {
	var out []string
	for a := range edges[s] {
		if a != ActionErase {
			out = append(out, string(a))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// VersionUnusableError says why a version may not be used. It wraps
// ErrVersionUnusable.
type VersionUnusableError struct {
	KID       string
	Op        string // sign, verify, unwrap, decrypt
	State     State
	MinVerify uint32 // non-zero when the version is below the key's min_verify_version
}

func (e *VersionUnusableError) Error() string {
	if e.MinVerify != 0 {
		return fmt.Sprintf("keystore: %s is below the key's min_verify_version %d; it cannot %s", e.KID, e.MinVerify, e.Op)
	}
	return fmt.Sprintf("keystore: %s is %s; it cannot %s", e.KID, e.State, e.Op)
}

func (e *VersionUnusableError) Unwrap() error { return ErrVersionUnusable }

// Reason is a stable, machine-readable cause: the version's state
// (disabled, destroy_scheduled, destroyed) or below_min_verify_version.
func (e *VersionUnusableError) Reason() string {
	if e.MinVerify != 0 {
		return "below_min_verify_version"
	}
	return string(e.State)
}

// usable checks that version n of k may be used for op: it exists, is
// enabled, and is not below the key's min_verify_version.
func usable(k *Key, n uint32, op string) error {
	v, ok := k.Version(n)
	if !ok {
		return fmt.Errorf("%w: %s has no version %d", ErrNotFound, k.Name, n)
	}
	if v.State != Enabled {
		return &VersionUnusableError{KID: k.KID(n), Op: op, State: v.State}
	}
	if n < k.MinVerify {
		return &VersionUnusableError{KID: k.KID(n), Op: op, State: v.State, MinVerify: k.MinVerify}
	}
	return nil
}

// update re-reads the key and applies change until its compare-and-swap
// holds, at most maxCASAttempts times: a change that lost a race with
// another write of the key (a rotation, another admin change, on any node)
// is decided again on the key as it now is, which is safe because change is
// a function of the key alone. change returns the new key and the other
// mutations of the same atomic Apply; it may be called several times. While
// the store is unavailable, update fails at once with ErrUnavailable.
func (ks *Keystore) update(ctx context.Context, name string, change func(k *Key) (*Key, []storage.Mutation, error)) (*Key, error) {
	if err := ks.requireHealthy("change a key"); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		k, err := ks.fetchForWrite(ctx, name)
		if err != nil {
			return nil, err
		}
		nk, muts, err := change(k)
		if err != nil {
			return nil, err
		}
		if nk == nil {
			return k, nil // nothing to change
		}
		kw, err := keyWrite(k, nk)
		if err != nil {
			return nil, err
		}
		muts = append(kw, muts...)
		rev, err := ks.store.Apply(ctx, muts...)
		if err == nil {
			nk.revision = rev
			ks.cache.put(nk, nil)
			return nk, nil
		}
		if !errors.Is(err, storage.ErrConflict) {
			return nil, storeErr(err)
		}
		if attempt == maxCASAttempts {
			return nil, fmt.Errorf("%w: %s changed concurrently %d times in a row; retry", ErrConflict, name, maxCASAttempts)
		}
		if !casBackoff(ctx, attempt+1) {
			return nil, ctx.Err()
		}
	}
}

// Transition moves version n of the key along one edge of the state
// machine (Disable, Enable, Destroy, CancelDestroy) and returns the key as
// stored. Destroy schedules the erasure DestroyWaiting days from now, in the
// same atomic write as the state change; CancelDestroy removes it and
// leaves the version disabled. An edge the table does not have, or disable
// or destroy of the current version, is ErrIllegalTransition; an unknown
// version is ErrNotFound. ActionErase is the scheduler's and is refused.
func (ks *Keystore) Transition(ctx context.Context, name string, n uint32, action Action) (*Key, error) {
	if action == ActionErase {
		return nil, fmt.Errorf("%w: erase is done by the scheduler after the waiting period", ErrIllegalTransition)
	}
	return ks.update(ctx, name, func(k *Key) (*Key, []storage.Mutation, error) {
		to, err := transition(k, n, action)
		if err != nil {
			return nil, nil, err
		}
		nk := k.clone()
		v := &nk.Versions[n-1]
		var muts []storage.Mutation
		switch action {
		case ActionDestroy:
			v.DestroyAt = ks.now().UTC().Truncate(time.Second).Add(time.Duration(k.DestroyWaiting()) * day)
			muts = append(muts, schedPut(destroyTask(name, n, v.DestroyAt)))
		case ActionCancelDestroy:
			muts = append(muts, schedDelete(destroyTask(name, n, v.DestroyAt)))
			v.DestroyAt = time.Time{}
		}
		v.State = to
		return nk, muts, nil
	})
}

// KeyConfig is a change of a key's configuration; nil fields are left as
// they are.
type KeyConfig struct {
	// MinVerifyVersion: versions below it neither verify, unwrap nor
	// decrypt. 1 to the current version; it may be moved back down.
	MinVerifyVersion *uint32
	// AutoRotateDays: 0 turns automatic rotation off; otherwise the
	// scheduler rotates the key this many days after the current version
	// was made (1 to MaxAutoRotateDays).
	AutoRotateDays *uint32
	// DestroyWaitingDays: the waiting period of destructions requested
	// from now on (1 to MaxDestroyWaitDays); those already scheduled keep
	// their date.
	DestroyWaitingDays *uint32
}

// Configure changes a key's configuration and returns the key as stored.
// A value out of range is ErrInvalidArgument. A change of AutoRotateDays
// moves the key's rotation entry in the scheduler's due-index in the same
// atomic write.
func (ks *Keystore) Configure(ctx context.Context, name string, c KeyConfig) (*Key, error) {
	if c.MinVerifyVersion == nil && c.AutoRotateDays == nil && c.DestroyWaitingDays == nil {
		return nil, fmt.Errorf("%w: nothing to configure: give min_verify_version, auto_rotate_days or destroy_waiting_days", ErrInvalidArgument)
	}
	if d := c.AutoRotateDays; d != nil && *d > MaxAutoRotateDays {
		return nil, fmt.Errorf("%w: auto_rotate_days must be 0 (off) or 1 to %d", ErrInvalidArgument, MaxAutoRotateDays)
	}
	if d := c.DestroyWaitingDays; d != nil && (*d < 1 || *d > MaxDestroyWaitDays) {
		return nil, fmt.Errorf("%w: destroy_waiting_days must be 1 to %d", ErrInvalidArgument, MaxDestroyWaitDays)
	}
	return ks.update(ctx, name, func(k *Key) (*Key, []storage.Mutation, error) {
		if m := c.MinVerifyVersion; m != nil && (*m < 1 || *m > k.Current) {
			return nil, nil, fmt.Errorf("%w: min_verify_version must be 1 to the current version %d", ErrInvalidArgument, k.Current)
		}
		nk := k.clone()
		if c.MinVerifyVersion != nil {
			nk.MinVerify = *c.MinVerifyVersion
		}
		if c.AutoRotateDays != nil {
			if *c.AutoRotateDays != 0 {
				if err := refuseVerifyOnly(k, "rotate automatically"); err != nil {
					return nil, nil, err
				}
			}
			nk.AutoRotateDays = *c.AutoRotateDays
		}
		if c.DestroyWaitingDays != nil {
			nk.DestroyWaitDays = *c.DestroyWaitingDays
		}
		if nk.MinVerify == k.MinVerify && nk.AutoRotateDays == k.AutoRotateDays && nk.DestroyWaiting() == k.DestroyWaiting() {
			return nil, nil, nil // no change, no write
		}
		var muts []storage.Mutation
		if nk.AutoRotateDays != k.AutoRotateDays {
			old, oldOK := rotateTask(k)
			neu, newOK := rotateTask(nk)
			if oldOK {
				muts = append(muts, schedDelete(old))
			}
			if newOK {
				muts = append(muts, schedPut(neu))
			}
		}
		return nk, muts, nil
	})
}
