package runner

import (
	"context"
	"time"
)

// teardownTimeout bounds a teardown: it runs with a context of its own, as
// an aborted job's context is already cancelled.
const teardownTimeout = 2 * time.Minute

// session provisions req's container (launch), runs fn on it, and then
// tears it down, on every path: fn's failure, a failed launch once the
// record exists, a cancelled ctx, a panic. It is the one teardown of every
// kind of ephemeral container (jobs, execs, recipe builds).
//
// fn is called in every case, with launch's error if launch failed (then
// inst may hold no container yet); when it returns keep, the container is
// stopped and kept for inspection instead. done, when set, hears how the
// teardown went (kept, its error, when it began), after fn.
func (r *Runner) session(ctx context.Context, req Request, fn func(inst *instance, launchErr error) (keep bool),
	done func(kept bool, teardownErr error, began time.Time)) {
	inst, err := r.launch(ctx, req)
	keep := false
	if inst.h != nil {
		defer func() {
			inst.reading.Wait()
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
			defer cancel()
			t := time.Now()
			var terr error
			if keep {
				// Best effort: without it, `stint shell` enters the kept
				// job with a default environment instead of the job's.
				_ = r.rememberShell(inst)
				terr = r.keep(tctx, inst.h)
			} else {
				terr = r.teardown(tctx, inst.h)
			}
			if done != nil {
				done(keep && terr == nil, terr, t)
			}
		}()
	}
	keep = fn(inst, err)
}
