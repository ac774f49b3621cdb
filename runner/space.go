package runner

import (
	"context"

	"github.com/stintdev/stint/storage"
)

// noteFullPool adds to a failed job's error that its storage pool is full,
// and how big it is: the job's own output says no more than "No space left
// on device", and the pool, not the job, may be what is too small.
func (r *Runner) noteFullPool(ctx context.Context, inst *instance, res *Result) {
	if res.Outcome != OutcomeFailed && res.Outcome != OutcomeError {
		return
	}
	sp, ok := r.Storage.(storage.Spacer)
	if !ok || inst.vol.ID == "" {
		return
	}
	s, err := sp.Space(context.WithoutCancel(ctx), inst.vol.ID)
	if err != nil || !s.Full() {
		return
	}
	res.Error = joinMsg(res.Error, s.FullMessage())
}
