package approvals

import (
	"context"
	"time"
)

// The named operations a person's decision (other than a vote, see
// Decide) makes on a gate. Each is one update: the gate write and every
// consequence of the change in one MULTI.

// Cancel moves a pending, approved, triggering or trigger_failed gate to
// cancelled, recording who and why. Other states give a *TransitionError
// (with the stored gate).
func (s *Store) Cancel(ctx context.Context, id string, by Person, reason string) (*Gate, error) {
	return s.update(ctx, "cancel gate", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		from := g.State
		if err := g.Transition(StateCancelled, now); err != nil {
			return nil, err
		}
		g.DecidedBy = &by
		g.Reason = reason
		return []auditNote{{event: "cancelled", actor: &by, reason: reason, from: from, to: StateCancelled}}, nil
	})
}

// CancelPending cancels a gate only while it is pending (the API's cancel:
// a gate approved a moment after the caller looked stays approved). A gate
// in any other state is returned with ErrNotPending.
func (s *Store) CancelPending(ctx context.Context, id string, by Person, reason string) (*Gate, error) {
	return s.update(ctx, "cancel pending gate", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		if g.State != StatePending {
			return nil, ErrNotPending
		}
		if err := g.Transition(StateCancelled, now); err != nil {
			return nil, err
		}
		g.DecidedBy = &by
		g.Reason = reason
		return []auditNote{{event: "cancelled", actor: &by, reason: reason, from: StatePending, to: StateCancelled}}, nil
	})
}

// RunCancelRequested records that who asked the provider to stop the
// gate's run. The gate stays running until polling sees the run end (some
// providers stop only at the next step that allows it), and then names who
// cancelled it.
func (s *Store) RunCancelRequested(ctx context.Context, id string, who Person, reason string) (*Gate, error) {
	return s.update(ctx, "record cancel request", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		if g.State != StateRunning {
			return nil, &TransitionError{From: g.State, To: StateCancelled}
		}
		g.DecidedBy = &who
		g.Reason = reason
		if g.Run != nil {
			g.Run.Detail = "cancellation requested by " + who.Display()
		}
		return []auditNote{{event: "cancel_requested", actor: &who, reason: reason}}, nil
	})
}

// Retry sends a gate whose trigger failed back to the trigger queue, on
// behalf of who (see MayManage). Other states give a *TransitionError.
func (s *Store) Retry(ctx context.Context, id string, who Person) (*Gate, error) {
	return s.update(ctx, "retry trigger", id, func(g *Gate, now time.Time) ([]auditNote, error) {
		from := g.State
		if from != StateTriggerFailed {
			return nil, &TransitionError{From: from, To: StateApproved}
		}
		if err := g.Transition(StateApproved, now); err != nil {
			return nil, err
		}
		g.DecidedBy = &who
		g.Error = ""
		return []auditNote{{event: "retry", actor: &who, from: from, to: StateApproved}}, nil
	})
}
