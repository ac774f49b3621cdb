package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/stintdev/stint/runner/state"
)

// CommitCaches ends a job that long-lived container name of set stood in
// for across processes (the GitLab driver: `prepare` makes the container,
// `cleanup` ends it): it stops the container, so that nothing writes to its
// copies any more, and commits its own copy of each cache mount whose
// Commit policy says so after a job that passed (or not), as a job's end
// does (docs/storage.md). Its record is held meanwhile. A spec file's
// container can't name a policy (spec refuses it), so its caches commit
// on_success here; destroying the container without calling this commits
// nothing. A container that is not there (a prepare that failed before
// making it) has nothing to commit: no error.
func (b *LongLived) CommitCaches(ctx context.Context, set, name string, passed bool) error {
	h, err := b.claim(set, name)
	if errors.Is(err, state.ErrNotFound) {
		return nil
	} else if err != nil {
		return err
	}
	defer h.Release()
	c, err := b.readSpec(h.Name())
	if err != nil {
		return fmt.Errorf("commit caches of container %s: %w", h.Name(), err)
	}
	if err := b.Runner.Runtime.Stop(ctx, h.Name()); err != nil {
		return fmt.Errorf("commit caches of container %s: %w", h.Name(), err)
	}
	if err := h.Update(func(r *state.Record) { r.Phase = state.PhaseStopped }); err != nil {
		return err
	}
	outcome := OutcomeFailed
	if passed {
		outcome = OutcomePassed
	}
	req := Request{Container: h.Name(), Mounts: c.Mounts, Privileged: c.Privileged}
	if err := b.Runner.commitCaches(ctx, req, outcome); err != nil {
		return fmt.Errorf("container %s: %w", h.Name(), err)
	}
	return nil
}
